{{ config(materialized = 'view') }}

-- One row per (wallet, resolved condition) the wallet traded. `won` means the wallet's
-- PnL on the condition, both outcome tokens together, is positive; `held_winner` means
-- its larger remaining position was the winning outcome. Stored incrementally in
-- int_resolution_outcomes; this view reads the newest live row per key.

with stored as (

    select * from {{ ref('int_resolution_outcomes') }} final
    where is_deleted = 0

),

final as (

    select
        wallet, condition_id, market_id, category, final_side, yes_amount, no_amount,
        resolved_outcome, won, held_winner, realized_pnl, n_fills, volume, updated_at
    from stored

)

select * from final
