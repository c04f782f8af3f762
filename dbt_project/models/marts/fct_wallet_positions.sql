{{ config(materialized = 'view') }}

-- One row per (wallet, token): the stored average-cost state (int_position_state) with the
-- token's condition, and, when that condition has resolved, what is left redeemed at the
-- payout price. A view: the state is the stored part, and the condition and payout are
-- joined when read, so a condition that resolves since the last run realizes its open
-- positions without rewriting a table of every position each night. A filter on `wallet`
-- reaches the state's primary key through the view.

with states as (

    select * from {{ ref('int_positions_current') }}

),

tokens as (

    select * from {{ ref('int_token_conditions') }}

),

resolutions as (

    select * from {{ ref('int_resolutions') }}
    where is_resolved

),

located as (

    select
        states.*,
        tokens.condition_id                                     as condition_id,
        tokens.outcome_index                                    as outcome_index
    from states
    left join tokens on states.token_id = tokens.token_id

),

settled as (

    select
        located.*,
        ifNull(resolutions.is_resolved, false)                  as is_resolved,
        if(is_resolved,
           intDiv(located.amount
                  * (resolutions.payout_prices[located.outcome_index + 1] - located.avg_price),
                  {{ unit() }}),
           toInt128(0))                                         as resolution_pnl
    from located
    left join resolutions on located.condition_id = resolutions.condition_id

),

final as (

    select
        wallet,
        token_id,
        condition_id,
        outcome_index,
        toUInt64(amount)                                        as amount,
        toUInt64(if(is_resolved, 0, amount))                    as open_amount,
        toUInt64(avg_price)                                     as avg_price,
        toInt128(trading_pnl + resolution_pnl)                  as realized_pnl,
        toInt128(trading_pnl)                                   as trading_pnl,
        toInt128(resolution_pnl)                                as resolution_pnl,
        toUInt64(bought)                                        as total_bought,
        n_fills,
        toUInt64(volume)                                        as volume,
        toUInt64(buy_collateral)                                as buy_collateral,
        is_resolved,
        first_fill_at,
        last_fill_at
    from settled

)

select * from final
