{{ config(materialized = 'view') }}

-- One row per (wallet, canonical category). Stored incrementally in
-- int_wallet_category_pnl; this view reads the newest live row per key and adds the
-- exact USD columns and the ratios. A "market" is a condition (a token no market lists
-- counts as its own market). Wins and losses count resolved conditions whose PnL over
-- both tokens is > 0 or < 0; exactly 0 is neither.

with stored as (

    select * from {{ ref('int_wallet_category_pnl') }} final
    where is_deleted = 0

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
        if(buy_collateral > 0, realized_pnl / buy_collateral, null)      as roi,
        updated_at
    from stored

)

select * from final
