-- One row per (wallet, canonical category) the wallet holds a market in: the signed
-- contributions stored in int_wallet_category_pnl added up. A view: the sums are only
-- final when read (the engine collapses the contributions on merge, not on insert), and
-- its readers (the category mart per wallet, the all-time leaderboard) read it once each.
-- A (wallet, category) whose markets were all retracted sums to no market and is left out.

with stored as (

    select * from {{ ref('int_wallet_category_pnl') }}

),

summed as (

    select
        wallet,
        category,
        toInt128(sum(realized_pnl))       as realized_pnl,
        toUInt64(sum(volume))             as volume,
        toUInt64(sum(buy_collateral))     as buy_collateral,
        toUInt64(sum(n_fills))            as n_fills,
        toUInt64(sum(n_markets))          as n_markets,
        toUInt64(sum(n_resolved_markets)) as n_resolved_markets,
        toUInt64(sum(wins))               as wins,
        toUInt64(sum(losses))             as losses
    from stored
    group by wallet, category
    having n_markets > 0

)

select * from summed
