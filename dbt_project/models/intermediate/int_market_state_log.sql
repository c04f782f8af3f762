{{
    config(
        materialized = 'incremental',
        incremental_strategy = 'append',
        engine = 'MergeTree()',
        order_by = '(condition_id, seen_at)',
        partition_by = 'tuple()'
    )
}}

-- A log of each condition's category, listing and resolution, with a row whenever one of
-- them changes. The incremental marts recompute the wallets that hold positions in a
-- condition logged since their last build: a new resolution realizes open positions, a
-- re-categorised market moves PnL between categories.

with markets as (

    select * from {{ ref('dim_markets') }}

),

current_state as (

    select
        condition_id,
        cityHash64(category, ifNull(yes_token_id, ''), ifNull(no_token_id, ''),
                   is_resolved, ifNull(resolved_outcome, ''), payout_numerators) as state_hash
    from markets

),

{% if is_incremental() %}

logged as (

    select condition_id, argMax(state_hash, seen_at) as state_hash
    from {{ this }}
    group by condition_id

),

changed as (

    select current_state.condition_id as condition_id, current_state.state_hash as state_hash
    from current_state
    left join logged on current_state.condition_id = logged.condition_id
    where logged.condition_id is null or logged.state_hash != current_state.state_hash

),

{% else %}

changed as (

    select * from current_state

),

{% endif %}

final as (

    select condition_id, state_hash, now64(3, 'UTC') as seen_at from changed

)

select * from final
