-- depends_on: {{ ref('int_fills_credited') }}
-- depends_on: {{ ref('int_market_state_log') }}
{{
    config(
        materialized = 'incremental',
        incremental_strategy = 'append',
        engine = 'ReplacingMergeTree(row_version, is_deleted)',
        order_by = '(wallet, condition_id)',
        partition_by = 'tuple()'
    )
}}

-- Wallet x resolved-condition rows, recomputed nightly for the touched wallets only (see
-- int_wallet_category_pnl). Read through fct_resolution_outcomes.

with

{{ touched_wallets_cte() }}

positions as (

    select * from {{ ref('fct_wallet_positions') }}
    where is_resolved and {{ in_touched_wallets() }}

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

computed as (

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
        toInt128(per_condition.realized_pnl)                            as realized_pnl,
        toUInt64(per_condition.n_fills)                                 as n_fills,
        toUInt64(per_condition.volume)                                  as volume,
        toUInt8(0)                                                      as is_deleted
    from per_condition
    inner join markets on per_condition.condition_id = markets.condition_id

),

{% if is_incremental() %}
vanished as (

    select
        prior.wallet, prior.condition_id, prior.market_id, prior.category, prior.final_side,
        prior.yes_amount, prior.no_amount, prior.resolved_outcome, prior.won, prior.held_winner,
        prior.realized_pnl, prior.n_fills, prior.volume, toUInt8(1) as is_deleted
    from (
        {{ prior_live_rows('wallet, condition_id') }}
    ) as prior
    left anti join computed
        on prior.wallet = computed.wallet and prior.condition_id = computed.condition_id

),
{% endif %}

final as (

    {{ versioned_rows() }}

)

select * from final
