{{
    config(
        materialized = 'incremental',
        incremental_strategy = 'append',
        engine = 'ReplacingMergeTree(state_version)',
        order_by = '(wallet, token_id, day)',
        query_settings = {'optimize_aggregation_in_order': 1}
    )
}}

-- The average-cost state of each (wallet, token) at the END of every UTC day it had fills
-- (cumulative), with that day's own PnL, volume and fills. Nightly, each key with fills
-- loaded since the last build re-folds from the checkpoint of its last day before its
-- earliest new fill (or from zero): a continued key re-folds only tonight's days, a late
-- fill only the days from its own. The rewritten days are appended and the
-- ReplacingMergeTree(state_version) keeps the newest version of each (wallet, token, day),
-- so nothing is deleted and the result equals a full rebuild. Sort key: the raw table is
-- sorted by (maker, token_id), so the grouping streams in that order, a key's checkpoints
-- are adjacent (the checkpoint lookup and int_positions_current read by primary key), and
-- the day inside a key keeps the daily models' per-key reads in day order. The re-fold's
-- read of the raw fills is bounded by the night's earliest new fill day as well, so the
-- raw table's monthly partitions before it are skipped (10M bench night: 333 of 1,241
-- granules; tests/test_refold_reads.py).
-- position_key, the (wallet, token) key as one 128-bit hash (macros/positions.sql), is what
-- the grain and the daily rows look a night's changed keys up by: those keys fall in every
-- granule, and the scan then probes 16 bytes a row instead of hashing two strings.
-- The day's last fill is kept by its time only: its fill id (about 90 bytes of random hex)
-- was two thirds of the table's bytes and nothing read it; without it the 10M bench full
-- build of this model wrote 17 % faster (two runs each).

with fills as (

    select * from {{ ref('int_fills_credited') }}

),

{% if is_incremental() %}

new_fills as {{ computed_once() }} (

    select
        wallet,
        token_id,
        filled_at,
        inserted_at
    from fills
    where inserted_at > (select max(previous.loaded_through) from {{ this }} as previous)

),

touched as {{ computed_once() }} (

    select
        wallet,
        token_id,
        toDate(min(filled_at)) as start_day
    from new_fills
    group by wallet, token_id

),

prior_state as (

    -- the newest checkpoint of the last day before each touched key's start day, read by key
    {{ touched_key_rows(this, 'stored', 'stored.day < touched.start_day') }}
    order by stored.wallet asc, stored.token_id asc, stored.day desc, stored.state_version desc
    limit 1 by stored.wallet, stored.token_id

),

refold as (

    -- the touched keys' fills from their start day on, read through the raw sort key; the
    -- bound on the night's earliest start day repeats what each key's own condition implies
    -- as a constant, so the engine skips the raw table's months and parts before it: a night
    -- of today's fills reads the current month, a late fill reaches back only to its own day
    {%- set from_start_day -%}
        toDate(f.filled_at) >= touched.start_day
        and f.filled_at >= (select min(touched_day.start_day) from touched as touched_day)
    {%- endset %}
    {{ touched_key_rows('fills', 'f', from_start_day) }}

),

watermark as (

    select max(inserted_at) as loaded_through from new_fills

),

{% else %}

refold as (

    select * from fills

),

watermark as (

    select max(inserted_at) as loaded_through from fills

),

{% endif %}

key_events as (

    -- one sorted event array per key, each event with its UTC day and collateral
    select
        f.wallet   as wallet,
        f.token_id as token_id,
        arraySort(groupArray((
            f.filled_at, f.fill_id, f.side = 'BUY', toInt128(f.quantity),
            toInt128(f.price), toDate(f.filled_at),
            toUInt64(f.collateral)
        )))        as events
    from refold as f
    group by f.wallet, f.token_id

),

{% if is_incremental() %}

started as (

    -- a touched key continues from its checkpoint before its start day, else from zero
    select
        key_events.wallet                                               as wallet,
        key_events.token_id                                             as token_id,
        key_events.events                                               as events,
        (
            coalesce(prior_state.amount, toInt128(0)),
            coalesce(prior_state.avg_price, toInt128(0)),
            coalesce(prior_state.trading_pnl, toInt128(0)),
            coalesce(prior_state.bought, toInt128(0))
        )                                                               as init,
        toUInt64(coalesce(prior_state.n_fills, 0))                      as base_fills,
        toUInt64(coalesce(prior_state.volume, 0))                       as base_volume,
        toUInt64(coalesce(prior_state.buy_collateral, 0))               as base_buy_collateral,
        coalesce(prior_state.first_fill_at, tupleElement(events[1], 1)) as first_fill_at
    from key_events
    left join prior_state
        on key_events.wallet = prior_state.wallet and key_events.token_id = prior_state.token_id

),

{% else %}

started as (

    select
        wallet,
        token_id,
        events,
        {{ empty_position() }}     as init,
        toUInt64(0)                as base_fills,
        toUInt64(0)                as base_volume,
        toUInt64(0)                as base_buy_collateral,
        tupleElement(events[1], 1) as first_fill_at
    from key_events

),

{% endif %}

folded as (

    -- the fold with a checkpoint per day, and the events split into days (an event whose
    -- day differs from the previous event's starts a day)
    select
        *,
        arrayMap(e -> e.6, events)                                          as event_days,
        arrayMap(
            (d, p) -> d != p, event_days,
            arrayPushFront(arrayPopBack(event_days), event_days[1])
        )                                                                   as starts_day,
        {{ average_cost_day_fold('events', 'starts_day', 'init') }}         as day_fold,
        -- [init, end of day 1, ..., end of the last day]
        arrayPushBack(tupleElement(day_fold, 2), tupleElement(day_fold, 1)) as states,
        arraySplit((e, starts) -> starts, events, starts_day)               as days
    from started

),

zipped as (

    -- per day, element-wise (arrayZip of arrayMaps: no array is copied per day row)
    select
        wallet,
        token_id,
        first_fill_at,
        base_fills,
        base_volume,
        base_buy_collateral,
        arrayZip(
            arrayMap(d -> tupleElement(d[1], 6), days),
            arrayPopFront(states),
            arrayPopBack(states),
            arrayCumSum(arrayMap(d -> toUInt64(length(d)), days)),
            arrayCumSum(arrayMap(d -> arraySum(e -> e.7, d), days)),
            arrayCumSum(arrayMap(d -> arraySum(e -> if(e.3, e.7, 0), d), days)),
            arrayMap(d -> toUInt64(length(d)), days),
            arrayMap(d -> arraySum(e -> e.7, d), days),
            arrayMap(d -> tupleElement(d[-1], 1), days)
        ) as checkpoints
    from folded

),

checkpoints as (

    select
        wallet,
        token_id,
        first_fill_at,
        base_fills,
        base_volume,
        base_buy_collateral,
        arrayJoin(checkpoints) as c
    from zipped

),

final as (

    select
        wallet,
        token_id,
        c.1                                                             as day,
        toInt128(c.2.1)                                                 as amount,
        toInt128(c.2.2)                                                 as avg_price,
        toInt128(c.2.3)                                                 as trading_pnl,
        toInt128(c.2.4)                                                 as bought,
        toUInt64(base_fills + c.4)                                      as n_fills,
        toUInt64(base_volume + c.5)                                     as volume,
        toUInt64(base_buy_collateral + c.6)                             as buy_collateral,
        -- the day's own PnL: the sum of its sells' intDiv terms, so the days add up exactly
        toInt128(c.2.3 - c.3.3)                                         as day_trading_pnl,
        c.8                                                             as day_volume,
        c.7                                                             as day_fills,
        first_fill_at,
        c.9                                                             as last_fill_at,
        assumeNotNull((select watermark.loaded_through from watermark)) as loaded_through,
        toUInt64(toUnixTimestamp64Milli(loaded_through))                as state_version,
        {{ position_key('wallet', 'token_id') }}                  as position_key  -- noqa: LT01
    from checkpoints

)

select * from final
