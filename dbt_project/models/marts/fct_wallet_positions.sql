{{
    config(
        materialized = 'table',
        engine = 'MergeTree()',
        order_by = '(wallet, token_id)',
        partition_by = 'tuple()'
    )
}}

-- Polymarket's average-cost rules (docs/pnl.md), folded per (wallet, token) over its
-- credited fills in (timestamp, id) order, in Int128 with truncating division:
--   BUY  q at p:  avg = (avg*amount + p*q) / (amount + q); amount += q; bought += q
--   SELL q at p:  adj = min(q, amount); realized += adj*(p - avg) / 10^6; amount -= adj
-- A resolved condition then realizes what is left at the payout price.

with fills as (

    select * from {{ ref('int_fills_credited') }}

),

resolutions as (

    select * from {{ ref('int_resolutions') }}
    where is_resolved

),

folded as (

    select
        wallet,
        token_id,
        any(condition_id)                       as condition_id,
        any(outcome_index)                      as outcome_index,
        count()                                 as n_fills,
        sum(toUInt128(collateral))              as volume,
        sumIf(toUInt128(collateral), side = 'BUY') as buy_collateral,
        min(filled_at)                          as first_fill_at,
        max(filled_at)                          as last_fill_at,
        arrayFold(
            (acc, e) -> if(
                e.3,
                if(e.4 > 0,
                   (acc.1 + e.4,
                    intDiv(acc.2 * acc.1 + e.5 * e.4, acc.1 + e.4),
                    acc.3,
                    acc.4 + e.4),
                   acc),
                (acc.1 - least(e.4, acc.1),
                 acc.2,
                 acc.3 + intDiv(least(e.4, acc.1) * (e.5 - acc.2), {{ unit() }}),
                 acc.4)
            ),
            arraySort(groupArray((filled_at, fill_id, side = 'BUY',
                                  toInt128(quantity), toInt128(price)))),
            (toInt128(0), toInt128(0), toInt128(0), toInt128(0))
        )                                       as state
    from fills
    group by wallet, token_id

),

settled as (

    select
        folded.wallet                                   as wallet,
        folded.token_id                                 as token_id,
        folded.condition_id                             as condition_id,
        folded.outcome_index                            as outcome_index,
        ifNull(resolutions.is_resolved, false)          as is_resolved,
        state.1                                         as held,
        state.2                                         as held_avg_price,
        state.3                                         as trading_pnl,
        state.4                                         as bought,
        if(is_resolved,
           intDiv(held * (resolutions.payout_prices[folded.outcome_index + 1] - held_avg_price),
                  {{ unit() }}),
           toInt128(0))                                 as resolution_pnl,
        folded.n_fills                                  as n_fills,
        folded.volume                                   as volume,
        folded.buy_collateral                           as buy_collateral,
        folded.first_fill_at                            as first_fill_at,
        folded.last_fill_at                             as last_fill_at
    from folded
    left join resolutions on folded.condition_id = resolutions.condition_id

),

final as (

    select
        wallet,
        token_id,
        condition_id,
        outcome_index,
        toUInt64(held)                                  as amount,
        toUInt64(if(is_resolved, 0, held))              as open_amount,
        toUInt64(held_avg_price)                        as avg_price,
        toInt128(trading_pnl + resolution_pnl)          as realized_pnl,
        toInt128(trading_pnl)                           as trading_pnl,
        toInt128(resolution_pnl)                        as resolution_pnl,
        toUInt64(bought)                                as total_bought,
        n_fills,
        toUInt64(volume)                                as volume,
        toUInt64(buy_collateral)                        as buy_collateral,
        is_resolved,
        first_fill_at,
        last_fill_at
    from settled

)

select * from final
