{{
    config(
        materialized = 'incremental',
        incremental_strategy = 'append',
        full_refresh = false,
        engine = 'MergeTree()',
        order_by = '(condition_id)',
        partition_by = 'tuple()'
    )
}}

-- The UTC day each condition's resolution became known, recorded the first night the
-- pipeline sees it resolved and never moved: the day of the map's `resolved_at` (the
-- producer's fetch time; the map has no on-chain time) when present, else that night's date.
-- Later nights, corrections (YES -> NO) and `dbt build --full-refresh` (full_refresh = false)
-- keep the stored day, so a resolution's PnL never moves to another day (docs/pnl.md).
-- A plain MergeTree ordered by condition_id: one row per condition, appended once and
-- looked up by condition; the table is small (one row per resolved condition), so no
-- partitions.

with resolutions as (

    select * from {{ ref('int_resolutions') }}
    where is_resolved

),

{% if is_incremental() %}

unseen as (

    select resolutions.*
    from resolutions
    where resolutions.condition_id not in (select seen.condition_id from {{ this }} as seen)

),

{% else %}

unseen as (

    select * from resolutions

),

{% endif %}

{#- the night's clock (pipeline/dbt_chdb.py RUN_AT_ENV), else the engine's -#}
{%- set run_at = env_var('CASCADIAN_RUN_AT', '') %}

final as (

    select
        condition_id,
        toDate(coalesce(resolved_at, {{ run_clock(run_at) }}), 'UTC') as resolved_day,
        if(resolved_at is null, 'first_seen', 'map')                  as resolved_day_source,
        resolved_at,
        {{ run_clock(run_at) }}                                       as first_seen_at
    from unseen

)

select * from final
