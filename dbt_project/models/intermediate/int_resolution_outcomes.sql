-- depends_on: {{ ref('int_fills_credited') }}
-- depends_on: {{ ref('int_market_state_log') }}
-- depends_on: {{ ref('int_positions_current') }}
-- depends_on: {{ ref('int_token_conditions') }}
{{
    config(
        materialized = 'incremental',
        incremental_strategy = 'append',
        engine = 'ReplacingMergeTree(row_version, is_deleted)',
        order_by = '(wallet, condition_id)',
        partition_by = 'tuple()'
    )
}}

-- Wallet x resolved-condition amounts and PnL, recomputed nightly for the touched wallets
-- only (see int_wallet_category_pnl). Only what the positions determine is stored: the
-- market's listing, category and outcome are joined in fct_resolution_outcomes, which
-- keeps this table narrow and cheap to rewrite.

with

{{ touched_wallets_cte() }}

positions as (

    select * from {{ ref('fct_wallet_positions') }}
    where is_resolved and {{ in_touched_wallets() }}

),

computed as (

    select
        wallet,
        assumeNotNull(condition_id)                             as condition_id,
        toUInt64(sumIf(amount, outcome_index = 0))              as yes_amount,
        toUInt64(sumIf(amount, outcome_index = 1))              as no_amount,
        toInt128(sum(realized_pnl))                             as realized_pnl,
        toUInt64(sum(n_fills))                                  as n_fills,
        toUInt64(sum(volume))                                   as volume,
        toUInt8(0)                                              as is_deleted
    from positions
    group by wallet, condition_id

),

{% if is_incremental() %}
vanished as (

    select
        prior.wallet, prior.condition_id, prior.yes_amount, prior.no_amount,
        prior.realized_pnl, prior.n_fills, prior.volume, toUInt8(1) as is_deleted
    from (
        {{ prior_live_rows() }}
    ) as prior
    left anti join computed
        on prior.wallet = computed.wallet and prior.condition_id = computed.condition_id

),
{% endif %}

final as (

    {{ versioned_rows() }}

)

select * from final
