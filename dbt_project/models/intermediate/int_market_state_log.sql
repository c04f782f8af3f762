{{
    config(
        materialized = 'incremental',
        incremental_strategy = 'append',
        engine = 'MergeTree()',
        order_by = '(condition_id, seen_at)'
    )
}}

-- A log of each condition's category, token listing and resolution (from the intermediate
-- models, never a mart), with a row whenever one of them changes, and a row with
-- state_hash 0 when a condition disappears from every source. int_wallet_markets
-- recomputes the wallet x market pairs of the conditions logged since its last build: a
-- new or corrected resolution settles open positions, a re-categorised market moves PnL
-- between categories, a changed listing moves a token between markets. Small (one row per
-- change), so a plain MergeTree in (condition_id, seen_at) order.

with categories as (

    select * from {{ ref('int_market_categories') }}

),

tokens as (

    select * from {{ ref('int_token_conditions') }}

),

resolutions as (

    select * from {{ ref('int_resolutions') }}

),

token_sets as (

    select
        assumeNotNull(condition_id)                                               as condition_id,
        toString(arraySort(groupArray((token_id, assumeNotNull(outcome_index))))) as listing
    from tokens
    where condition_id is not null
    group by condition_id

),

conditions as (

    select condition_id from categories
    union distinct
    select condition_id from token_sets
    union distinct
    select condition_id from resolutions

),

current_state as (

    select
        conditions.condition_id as condition_id,
        cityHash64(
            coalesce(categories.category, '{{ var("uncategorized") }}'),
            coalesce(token_sets.listing, ''),
            coalesce(resolutions.is_resolved, false),
            coalesce(resolutions.resolved_outcome, ''),
            toString(resolutions.payout_numerators)
        )                       as state_hash
    from conditions
    left join categories on conditions.condition_id = categories.condition_id
    left join token_sets on conditions.condition_id = token_sets.condition_id
    left join resolutions on conditions.condition_id = resolutions.condition_id

),

{% if is_incremental() %}

logged as (

    select
        condition_id,
        argMax(state_hash, seen_at) as state_hash
    from {{ this }}
    group by condition_id

),

changed as (

    select
        current_state.condition_id as condition_id,
        current_state.state_hash   as state_hash
    from current_state
    left join logged on current_state.condition_id = logged.condition_id
    where logged.condition_id is null or logged.state_hash != current_state.state_hash

    union all

    select
        condition_id,
        toUInt64(0) as state_hash
    from logged
    where state_hash != 0 and condition_id not in (select current_state.condition_id from current_state)

),

{% else %}

changed as (

    select * from current_state

),

{% endif %}

final as (

    select
        condition_id,
        state_hash,
        now64(3, 'UTC') as seen_at
    from changed

)

select * from final
