{{
    config(
        materialized = 'incremental',
        incremental_strategy = 'append',
        engine = 'AggregatingMergeTree()',
        order_by = '(wallet, category)'
    )
}}

-- Wallet x category sums as signed contributions of the wallet x market grain. Nightly,
-- for every int_wallet_markets row written since this model's watermark (the newest
-- grain_version it consumed), the row's metrics are added at its category and its prev_*
-- (the pair's previous live row) retracted at prev_category; counts are +1/-1. The engine
-- adds the contributions up on merge, and each row's prev_* is the version before it, so
-- the sums telescope across nights a build missed: a whale's untouched markets are never
-- re-read. Columns are SimpleAggregateFunction(sum) (grain_version: max, the watermark).
-- Mark-dependent values (unrealized PnL, open value) are not summed here: they move with
-- every mark and are computed when read (int_open_position_values).
-- Read through fct_wallet_category_pnl, which sums by (wallet, category). A full refresh
-- rebuilds it from the grain's live rows; refresh it whenever the grain is refreshed
-- (`dbt build --full-refresh` does both).

with grain as (

    {% if is_incremental() -%}
    select * from {{ ref('int_wallet_markets') }}
    where row_version > (select max(previous.grain_version) from {{ this }} as previous)
    {%- else -%}
    select * from {{ ref('int_wallet_markets') }} final
    where is_deleted = 0
    {%- endif %}

),

added as (

    select
        wallet,
        category,
        toInt128(realized_pnl)                    as realized_pnl,
        toInt128(volume)                          as volume,
        toInt128(buy_collateral)                  as buy_collateral,
        toInt64(n_fills)                          as n_fills,
        toInt64(1)                                as n_markets,
        toInt64(is_resolved)                      as n_resolved_markets,
        toInt64(is_resolved and realized_pnl > 0) as wins,
        toInt64(is_resolved and realized_pnl < 0) as losses,
        row_version
    from grain
    where is_deleted = 0

),

{% if is_incremental() %}

retracted as (

    select
        wallet,
        prev_category                                        as category,
        -toInt128(prev_realized_pnl)                         as realized_pnl,
        -toInt128(prev_volume)                               as volume,
        -toInt128(prev_buy_collateral)                       as buy_collateral,
        -toInt64(prev_n_fills)                               as n_fills,
        toInt64(-1)                                          as n_markets,
        -toInt64(prev_is_resolved)                           as n_resolved_markets,
        -toInt64(prev_is_resolved and prev_realized_pnl > 0) as wins,
        -toInt64(prev_is_resolved and prev_realized_pnl < 0) as losses,
        row_version
    from grain
    where prev_is_live = 1

),

contributions as (

    select * from added
    union all
    select * from retracted

),

{% else %}

contributions as (

    select * from added

),

{% endif %}

final as (

    select
        wallet,
        category,
        cast(sum(realized_pnl), 'SimpleAggregateFunction(sum, Int128)')                    as realized_pnl,
        cast(sum(volume), 'SimpleAggregateFunction(sum, Int128)')                          as volume,
        cast(sum(buy_collateral), 'SimpleAggregateFunction(sum, Int128)')                  as buy_collateral,
        cast(sum(n_fills), 'SimpleAggregateFunction(sum, Int64)')                          as n_fills,
        cast(sum(n_markets), 'SimpleAggregateFunction(sum, Int64)')                        as n_markets,
        cast(sum(n_resolved_markets), 'SimpleAggregateFunction(sum, Int64)')               as n_resolved_markets,
        cast(sum(wins), 'SimpleAggregateFunction(sum, Int64)')                             as wins,
        cast(sum(losses), 'SimpleAggregateFunction(sum, Int64)')                           as losses,
        cast(max(row_version), 'SimpleAggregateFunction(max, UInt64)')                     as grain_version,
        cast(max(now64(3, 'UTC')), 'SimpleAggregateFunction(max, DateTime64(3, ''UTC''))') as updated_at
    from contributions
    group by wallet, category

)

select * from final
