{{
    config(
        materialized = 'table',
        engine = 'MergeTree()',
        order_by = '(wallet, condition_id)',
        partition_by = 'tuple()'
    )
}}

-- One row per (wallet, resolved condition) the wallet traded. `won` means the wallet's
-- PnL on the condition, both outcome tokens together, is positive; `held_winner` means
-- its larger remaining position was the winning outcome.
with positions as (

    select * from {{ ref('fct_wallet_positions') }}
    where is_resolved

),

markets as (

    select * from {{ ref('dim_markets') }}

),

per_condition as (

    select
        wallet,
        assumeNotNull(condition_id)                 as condition_id,
        sumIf(amount, outcome_index = 0)            as yes_amount,
        sumIf(amount, outcome_index = 1)            as no_amount,
        sum(realized_pnl)                           as realized_pnl,
        sum(n_fills)                                as n_fills,
        sum(volume)                                 as volume
    from positions
    group by wallet, condition_id

),

final as (

    select
        per_condition.wallet                                            as wallet,
        per_condition.condition_id                                      as condition_id,
        markets.market_id                                               as market_id,
        markets.category                                                as category,
        multiIf(yes_amount > no_amount, 'YES',
                no_amount > yes_amount, 'NO',
                'FLAT')                                                 as final_side,
        per_condition.yes_amount                                        as yes_amount,
        per_condition.no_amount                                         as no_amount,
        assumeNotNull(markets.resolved_outcome)                         as resolved_outcome,
        per_condition.realized_pnl > 0                                  as won,
        final_side = resolved_outcome                                   as held_winner,
        per_condition.realized_pnl                                      as realized_pnl,
        per_condition.n_fills                                           as n_fills,
        per_condition.volume                                            as volume
    from per_condition
    inner join markets on per_condition.condition_id = markets.condition_id

)

select * from final
