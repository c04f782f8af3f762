-- depends_on: {{ ref('int_position_days') }}
-- depends_on: {{ ref('int_market_state_log') }}
-- depends_on: {{ ref('int_token_conditions') }}
-- depends_on: {{ ref('int_resolutions') }}
-- depends_on: {{ ref('int_token_marks') }}
{{
    config(
        materialized = 'incremental',
        incremental_strategy = 'append',
        engine = 'ReplacingMergeTree(row_version, is_deleted)',
        order_by = '(wallet, market_key)',
        settings = {'index_granularity': 1024}
    )
}}

-- THE wallet x market grain: one row per (wallet, market) the wallet traded, a market being
-- a condition (both outcome tokens together), or a token no source maps. Built in one pass
-- from the valued positions (int_wallet_positions' rules), the market's category and its
-- resolution; the category and resolution-outcome marts are small reads of it.
-- Nightly only the changed pairs are recomputed: pairs holding a position re-folded
-- tonight, and pairs of a condition whose category, listing or resolution changed
-- (int_market_state_log). Nothing stored depends on a mark: unrealized PnL and open value
-- are computed when read (int_open_position_values), else every open pair of a token that
-- traded would be rewritten nightly (65,961 of 296,802 pairs on the 1M bench delta for ~8k
-- with new fills). Each written row carries
-- prev_* copies of the pair's previous live row, so the signed consumers
-- (int_wallet_category_pnl) add the new row and retract the old one without re-reading a
-- wallet's untouched markets; a pair that no longer exists is written with is_deleted = 1.
-- Engine: ReplacingMergeTree(row_version, is_deleted), appended, never deleted from: FINAL
-- keeps the newest live row of each key. Sort key (wallet, market_key): the prior rows of
-- the changed pairs are read by primary key, and a wallet's markets are adjacent for the
-- API. index_granularity 1024 (not 8192): those reads are scattered point lookups, and a
-- smaller granule reads less around each key for a slightly larger index.

with

{% if is_incremental() %}

watermarks as (

    select
        max(positions_through) as positions_through,
        max(updated_at)        as built_at
    from {{ this }}

),

token_conditions as (

    select
        token_id,
        assumeNotNull(condition_id) as condition_id
    from {{ ref('int_token_conditions') }}
    where condition_id is not null

),

changed_keys as (

    -- conditions logged since the last build, and the tokens listed in them (a token no
    -- source mapped before was its own market)
    select condition_id as market_key
    from {{ ref('int_market_state_log') }}
    where seen_at > (select watermarks.built_at from watermarks)
    union distinct
    select token_id as market_key from token_conditions
    where condition_id in (
        select state_log.condition_id from {{ ref('int_market_state_log') }} as state_log
        where state_log.seen_at > (select watermarks.built_at from watermarks)
    )

),

touched as (

    -- positions re-folded since the last build, and the stored pairs (any version: a
    -- superset is harmless) of a changed market, with their tokens (which reach the
    -- positions a listing moved away)
    select
        wallet,
        token_id,
        '' as stored_key
    from {{ ref('int_position_days') }}
    where loaded_through > (select watermarks.positions_through from watermarks)
    union all
    select
        wallet,
        arrayJoin(token_ids) as token_id,
        market_key           as stored_key
    from {{ this }}
    where market_key in (select changed_keys.market_key from changed_keys)

),

candidates as {{ computed_once() }} (

    -- each touched position's market now, and the stored pair hit (a pair keyed by a
    -- token that a listing has since mapped is hit through changed_keys)
    select distinct
        touched.wallet as wallet,
        arrayJoin(arrayFilter(
            k -> k != '',
            [coalesce(token_conditions.condition_id, touched.token_id), touched.stored_key]
        ))             as market_key
    from touched
    left join token_conditions on touched.token_id = token_conditions.token_id

),

condition_tokens as (

    select
        condition_id,
        groupArray(token_id) as token_ids
    from token_conditions
    group by condition_id

),

pair_positions as {{ computed_once() }} (

    -- every position that can belong to a candidate pair now: the condition's tokens, or
    -- the key itself when it is not a condition (a token keyed as its own market); a
    -- position read here whose market is not a candidate has a touched token, so its
    -- market is a candidate too
    select
        candidates.wallet as wallet,
        arrayJoin(if(
            empty(condition_tokens.token_ids), [candidates.market_key],
            condition_tokens.token_ids
        ))                as token_id
    from candidates
    left join condition_tokens on candidates.market_key = condition_tokens.condition_id

),

positions as (

    {{ valued_positions(
        '(' ~ checkpoints_by_position_key(
            ref('int_position_days'), 'pair_positions', checkpoint_columns()
        ) ~ ')'
    ) }}

),

{% else %}

positions as (

    select * from {{ ref('int_wallet_positions') }}

),

{% endif %}

categories as (

    select * from {{ ref('int_market_categories') }}

),

per_market as (

    select
        wallet,
        market_key,
        any(condition_id)                          as condition_id,
        max(is_resolved)                           as is_resolved,
        any(resolved_outcome)                      as resolved_outcome,
        toUInt64(sumIf(amount, outcome_index = 0)) as yes_amount,
        toUInt64(sumIf(amount, outcome_index = 1)) as no_amount,
        toUInt64(sum(open_amount))                 as open_amount,
        toInt128(sum(trading_pnl))                 as trading_pnl,
        toInt128(sum(resolution_pnl))              as resolution_pnl,
        toInt128(sum(realized_pnl))                as realized_pnl,
        toUInt64(sum(volume))                      as volume,
        toUInt64(sum(buy_collateral))              as buy_collateral,
        toUInt64(sum(n_fills))                     as n_fills,
        min(first_fill_at)                         as first_fill_at,
        max(last_fill_at)                          as last_fill_at,
        arraySort(groupArray(token_id))            as token_ids
    from positions
    group by wallet, market_key

),

computed as (

    select
        per_market.wallet                                           as wallet,
        per_market.market_key                                       as market_key,
        per_market.condition_id                                     as condition_id,
        coalesce(categories.category, '{{ var("uncategorized") }}') as category,
        toUInt8(per_market.is_resolved)                             as is_resolved,
        per_market.resolved_outcome                                 as resolved_outcome,
        per_market.yes_amount                                       as yes_amount,
        per_market.no_amount                                        as no_amount,
        per_market.open_amount                                      as open_amount,
        per_market.trading_pnl                                      as trading_pnl,
        per_market.resolution_pnl                                   as resolution_pnl,
        per_market.realized_pnl                                     as realized_pnl,
        per_market.volume                                           as volume,
        per_market.buy_collateral                                   as buy_collateral,
        per_market.n_fills                                          as n_fills,
        per_market.first_fill_at                                    as first_fill_at,
        per_market.last_fill_at                                     as last_fill_at,
        per_market.token_ids                                        as token_ids,
        toUInt8(0)                                                  as is_deleted
    from per_market
    left join categories on per_market.condition_id = categories.condition_id

),

{% if is_incremental() %}

prior_state as (

    -- the live rows of the candidate pairs, read by primary key
    select * from {{ this }} final
    {{ key_prewhere(this, 'wallet, market_key', 'candidates', 'candidates.wallet, candidates.market_key') }}
    where
        (wallet, market_key) in (
            select
                candidates.wallet,
                candidates.market_key
            from candidates
        )
        and is_deleted = 0

),

written as (

    -- computed pairs, and the prior pairs no longer computed written as deleted (their
    -- metrics zero), each with the prior live row beside it; one pass over both
    select
        assumeNotNull(if(gone, prior_state.wallet, computed.wallet))               as wallet,
        assumeNotNull(if(gone, prior_state.market_key, computed.market_key))       as market_key,
        if(gone, prior_state.condition_id, computed.condition_id)                  as condition_id,
        assumeNotNull(if(gone, prior_state.category, computed.category))           as category,
        toUInt8(coalesce(computed.is_resolved, 0))                                 as is_resolved,
        if(gone, prior_state.resolved_outcome, computed.resolved_outcome)          as resolved_outcome,
        toUInt64(coalesce(computed.yes_amount, 0))                                 as yes_amount,
        toUInt64(coalesce(computed.no_amount, 0))                                  as no_amount,
        toUInt64(coalesce(computed.open_amount, 0))                                as open_amount,
        toInt128(coalesce(computed.trading_pnl, 0))                                as trading_pnl,
        toInt128(coalesce(computed.resolution_pnl, 0))                             as resolution_pnl,
        toInt128(coalesce(computed.realized_pnl, 0))                               as realized_pnl,
        toUInt64(coalesce(computed.volume, 0))                                     as volume,
        toUInt64(coalesce(computed.buy_collateral, 0))                             as buy_collateral,
        toUInt64(coalesce(computed.n_fills, 0))                                    as n_fills,
        assumeNotNull(if(gone, prior_state.first_fill_at, computed.first_fill_at)) as first_fill_at,
        assumeNotNull(if(gone, prior_state.last_fill_at, computed.last_fill_at))   as last_fill_at,
        if(gone, prior_state.token_ids, computed.token_ids)                        as token_ids,
        toUInt8(gone)                                                              as is_deleted,
        toUInt8(prior_state.wallet is not null)                                    as prev_is_live,
        coalesce(prior_state.category, '')                                         as prev_category,
        toUInt8(coalesce(prior_state.is_resolved, 0))                              as prev_is_resolved,
        toInt128(coalesce(prior_state.realized_pnl, 0))                            as prev_realized_pnl,
        toUInt64(coalesce(prior_state.volume, 0))                                  as prev_volume,
        toUInt64(coalesce(prior_state.buy_collateral, 0))                          as prev_buy_collateral,
        toUInt64(coalesce(prior_state.n_fills, 0))                                 as prev_n_fills,
        computed.wallet is null                                                    as gone
    from computed
    full outer join prior_state
        on computed.wallet = prior_state.wallet and computed.market_key = prior_state.market_key

),

{% else %}

written as (

    select
        *,
        toUInt8(0)  as prev_is_live,
        ''          as prev_category,
        toUInt8(0)  as prev_is_resolved,
        toInt128(0) as prev_realized_pnl,
        toUInt64(0) as prev_volume,
        toUInt64(0) as prev_buy_collateral,
        toUInt64(0) as prev_n_fills
    from computed

),

{% endif %}

final as (

    -- the previous live row (zero/empty when new) is what the signed consumers retract
    select
        wallet, market_key, condition_id, category, is_resolved, resolved_outcome,
        yes_amount, no_amount, open_amount, trading_pnl, resolution_pnl, realized_pnl,
        volume, buy_collateral, n_fills,
        first_fill_at, last_fill_at, token_ids, is_deleted,
        now64(3, 'UTC')                              as updated_at,
        toUInt64(toUnixTimestamp64Milli(updated_at)) as row_version,
        (
            select max(position_days.loaded_through)
            from {{ ref('int_position_days') }} as position_days
        )                                            as positions_through,
        prev_is_live, prev_category, prev_is_resolved, prev_realized_pnl, prev_volume,
        prev_buy_collateral, prev_n_fills
    from written

)

select * from final
