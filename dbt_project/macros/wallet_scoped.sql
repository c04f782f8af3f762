{#-
    The wallet-scoped incremental models (int_wallet_category_pnl, int_resolution_outcomes)
    recompute all rows of the wallets touched since their last build and append them to a
    ReplacingMergeTree(row_version, is_deleted): these macros are that shared mechanism.
-#}

{#-
    Wallets whose mart rows must be recomputed since the model's last build: those with
    fills loaded since, and those holding positions in conditions whose category, listing
    or resolution changed since (see int_market_state_log).
-#}
{% macro touched_wallets(watermark) -%}
    select wallet
    from {{ ref('int_fills_credited') }}
    where inserted_at > {{ watermark }}
    union distinct
    select wallet
    from {{ ref('int_positions_current') }}
    where token_id in (
        select token_id from {{ ref('int_token_conditions') }}
        where condition_id in (
            select condition_id from {{ ref('int_market_state_log') }} where seen_at > {{ watermark }}
        )
    )
{%- endmacro %}

{#- The `wallets` CTE (incremental builds only): wallets touched since this model's last build. -#}
{% macro touched_wallets_cte() -%}
    {%- if is_incremental() %}
wallets as (

    {{ touched_wallets('(select max(updated_at) from ' ~ this ~ ')') }}

),
    {%- endif %}
{%- endmacro %}

{#- A condition keeping only touched wallets in incremental builds (always true otherwise). -#}
{% macro in_touched_wallets() -%}
    {%- if is_incremental() -%} wallet in (select wallet from wallets) {%- else -%} true {%- endif -%}
{%- endmacro %}

{#-
    The live stored rows of the touched wallets: FINAL keeps the newest row of each key and
    drops those whose newest row is a deletion; reading in key order, it needs no sort.
-#}
{% macro prior_live_rows() -%}
    select * from {{ this }} final
    where wallet in (select wallet from wallets) and is_deleted = 0
{%- endmacro %}

{#- The model's rows (`computed`, plus `vanished` deletions when incremental), versioned. -#}
{% macro versioned_rows() -%}
    select
        *,
        now64(3, 'UTC')                                        as updated_at,
        toUInt64(toUnixTimestamp64Milli(updated_at))           as row_version
    from (
        select * from computed
        {% if is_incremental() %} union all select * from vanished {% endif %}
    )
{%- endmacro %}
