-- One row per (wallet, canonical category) the wallet holds a market in: the sums of the
-- signed contributions stored in int_wallet_category_pnl (int_wallet_category_totals), with
-- exact USD columns and the ratios, and the open positions valued at their marks when read (int_open_position_values:
-- mark-dependent values are not stored, see docs/pnl.md). A "market" is a condition (a token
-- no market lists counts as its own market). Wins and losses count resolved markets (50-50
-- included) whose realized PnL over both tokens is > 0 or < 0; exactly 0 is neither.

with summed as (

    select * from {{ ref('int_wallet_category_totals') }}

),

open_values as (

    select * from {{ ref('int_open_position_values') }}

),

valued as (

    -- ifNull: a (wallet, category) with nothing open has no valuation row
    select
        summed.*,
        toInt128(coalesce(open_values.unrealized_pnl, 0)) as unrealized_pnl,
        toInt128(summed.realized_pnl + unrealized_pnl)    as total_pnl,
        toUInt64(coalesce(open_values.open_value, 0))     as open_value
    from summed
    left join open_values
        on summed.wallet = open_values.wallet and summed.category = open_values.category

),

final as (

    select
        wallet,
        category,
        realized_pnl,
        {{ to_usd('realized_pnl') }}                                as realized_pnl_usd,
        unrealized_pnl,
        {{ to_usd('unrealized_pnl') }}                              as unrealized_pnl_usd,
        total_pnl,
        {{ to_usd('total_pnl') }}                                   as total_pnl_usd,
        open_value,
        {{ to_usd('open_value') }}                                  as open_value_usd,
        volume,
        {{ to_usd('volume') }}                                      as volume_usd,
        buy_collateral,
        n_fills,
        n_markets,
        n_resolved_markets,
        wins,
        losses,
        if(wins + losses > 0, wins / (wins + losses), null)         as win_rate,
        if(buy_collateral > 0, realized_pnl / buy_collateral, null) as roi
    from valued

)

select * from final
