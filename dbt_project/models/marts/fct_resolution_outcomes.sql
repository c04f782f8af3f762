-- One row per (wallet, resolved condition) the wallet traded, 50-50 resolutions included.
-- `won` means the wallet's realized PnL on the condition, both outcome tokens together, is
-- positive; `held_winner` means its larger remaining position was the winning outcome
-- (never for a 50-50: neither side wins, and final_side is YES, NO or FLAT). The amounts
-- and PnL are the live rows of the wallet x market grain; the market's listing, category
-- and outcome come from dim_markets as it is now.

with grain as (

    select * from {{ ref('int_wallet_markets') }} final
    where is_deleted = 0 and is_resolved = 1

),

markets as (

    select * from {{ ref('dim_markets') }}

),

outcomes as (

    select
        grain.wallet                            as wallet,
        assumeNotNull(grain.condition_id)       as condition_id,
        markets.market_id                       as market_id,
        markets.category                        as category,
        multiIf(
            grain.yes_amount > grain.no_amount, 'YES',
            grain.no_amount > grain.yes_amount, 'NO',
            'FLAT'
        )                                       as final_side,
        grain.yes_amount                        as yes_amount,
        grain.no_amount                         as no_amount,
        assumeNotNull(markets.resolved_outcome) as resolved_outcome,
        grain.realized_pnl > 0                  as won,
        final_side = resolved_outcome           as held_winner,
        grain.realized_pnl                      as realized_pnl,
        grain.n_fills                           as n_fills,
        grain.volume                            as volume,
        grain.updated_at                        as updated_at
    from grain
    inner join markets on grain.condition_id = markets.condition_id

)

select * from outcomes
