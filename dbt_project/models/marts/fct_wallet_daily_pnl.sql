{{ config(materialized = 'view') }}

-- One row per wallet and UTC day with realized PnL that day: trading PnL on each sell's
-- day, resolution PnL on the day the condition resolved (int_condition_resolved_days).
-- Summed over days it equals the wallet's realized_pnl in fct_wallet_category_pnl
-- exactly. Stored per (wallet, market, day) in int_wallet_market_days; this view keeps the
-- newest live row per key and adds up the wallet's markets. A filter on `wallet` reaches
-- the stored table's primary key.

with market_days as (

    select * from {{ final_rows(ref('int_wallet_market_days')) }}
    where is_deleted = 0

),

final as (

    select
        market_days.wallet                        as wallet,
        market_days.day                           as day,
        toInt128(sum(market_days.realized_pnl))   as realized_pnl,
        {{ to_usd('realized_pnl') }}              as realized_pnl_usd,
        toInt128(sum(market_days.trading_pnl))    as trading_pnl,
        toInt128(sum(market_days.resolution_pnl)) as resolution_pnl,
        toUInt64(sum(market_days.volume))         as volume,
        {{ to_usd('volume') }}                    as volume_usd,
        toUInt64(sum(market_days.n_fills))        as n_fills
    from market_days
    group by market_days.wallet, market_days.day

)

select * from final
