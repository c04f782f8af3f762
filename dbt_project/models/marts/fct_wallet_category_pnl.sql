{{
    config(
        materialized = 'table',
        engine = 'MergeTree()',
        order_by = '(wallet, category)',
        partition_by = 'tuple()'
    )
}}

-- One row per (wallet, canonical category). A "market" is a condition (or, for a token
-- no market lists, the token itself). Wins and losses count resolved conditions whose
-- PnL over both tokens is > 0 or < 0; exactly 0 is neither.
with positions as (

    select * from {{ ref('fct_wallet_positions') }}

),

markets as (

    select * from {{ ref('dim_markets') }}

),

per_market as (

    select
        positions.wallet                                               as wallet,
        coalesce(markets.category, '{{ var("uncategorized") }}')       as category,
        coalesce(positions.condition_id, positions.token_id)           as market_key,
        max(positions.is_resolved)                                     as market_resolved,
        sum(positions.realized_pnl)                                    as market_pnl,
        sum(positions.volume)                                          as market_volume,
        sum(positions.buy_collateral)                                  as market_buy_collateral,
        sum(positions.n_fills)                                         as market_fills
    from positions
    left join markets on positions.condition_id = markets.condition_id
    group by wallet, category, market_key

),

per_category as (

    select
        wallet,
        category,
        toInt128(sum(market_pnl))                                   as realized_pnl,
        toUInt64(sum(market_volume))                                as volume,
        toUInt64(sum(market_buy_collateral))                        as buy_collateral,
        toUInt64(sum(market_fills))                                 as n_fills,
        toUInt64(count())                                           as n_markets,
        toUInt64(countIf(market_resolved))                          as n_resolved_markets,
        toUInt64(countIf(market_resolved and market_pnl > 0))       as wins,
        toUInt64(countIf(market_resolved and market_pnl < 0))       as losses
    from per_market
    group by wallet, category

),

final as (

    select
        wallet,
        category,
        realized_pnl,
        {{ to_usd('realized_pnl') }}                                     as realized_pnl_usd,
        volume,
        {{ to_usd('volume') }}                                           as volume_usd,
        buy_collateral,
        n_fills,
        n_markets,
        n_resolved_markets,
        wins,
        losses,
        if(wins + losses > 0, wins / (wins + losses), null)              as win_rate,
        if(buy_collateral > 0, realized_pnl / buy_collateral, null)      as roi
    from per_category

)

select * from final
