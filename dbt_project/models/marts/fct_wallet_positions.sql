-- One row per (wallet, token): the average-cost state, what a resolution realized, and the
-- open position marked to market. A thin select of int_wallet_positions (the rules live in
-- macros/positions.sql, shared with the wallet x market grain).

with positions as (

    select * from {{ ref('int_wallet_positions') }}

),

final as (

    select
        wallet,
        token_id,
        condition_id,
        outcome_index,
        amount,
        open_amount,
        avg_price,
        realized_pnl,
        trading_pnl,
        resolution_pnl,
        total_bought,
        n_fills,
        volume,
        buy_collateral,
        is_resolved,
        first_fill_at,
        last_fill_at,
        mark_price,
        mark_at,
        unrealized_pnl,
        total_pnl,
        current_value
    from positions

)

select * from final
