{{ config(materialized = 'view') }}

-- One row per (wallet, resolved condition) the wallet traded. `won` means the wallet's
-- PnL on the condition, both outcome tokens together, is positive; `held_winner` means
-- its larger remaining position was the winning outcome. The amounts and PnL are stored
-- incrementally in int_resolution_outcomes (this view reads the newest live row per key);
-- the market's listing, category and outcome come from dim_markets as it is now.

with stored as (

    select * from {{ ref('int_resolution_outcomes') }} final
    where is_deleted = 0

),

markets as (

    select * from {{ ref('dim_markets') }}

),

outcomes as (

    select
        stored.wallet                                                   as wallet,
        stored.condition_id                                             as condition_id,
        markets.market_id                                               as market_id,
        markets.category                                                as category,
        multiIf(stored.yes_amount > stored.no_amount, 'YES',
                stored.no_amount > stored.yes_amount, 'NO',
                'FLAT')                                                 as final_side,
        stored.yes_amount                                               as yes_amount,
        stored.no_amount                                                as no_amount,
        assumeNotNull(markets.resolved_outcome)                         as resolved_outcome,
        stored.realized_pnl > 0                                         as won,
        final_side = resolved_outcome                                   as held_winner,
        stored.realized_pnl                                             as realized_pnl,
        stored.n_fills                                                  as n_fills,
        stored.volume                                                   as volume,
        stored.updated_at                                               as updated_at
    from stored
    inner join markets on stored.condition_id = markets.condition_id

)

select * from outcomes
