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
-- the day inside a key keeps the daily models' per-key reads in day order.

with fills as (

    select * from {{ ref('int_fills_credited') }}

),

{% if is_incremental() %}

new_fills as (

    select wallet, token_id, filled_at, inserted_at from fills
    where inserted_at > (select max(loaded_through) from {{ this }})

),

touched as (

    select
        wallet,
        token_id,
        toDate(min(filled_at)) as start_day
    from new_fills
    group by wallet, token_id

),

prior as (

    -- the newest checkpoint of the last day before each touched key's start day, read by key
    select stored.*
    from {{ this }} as stored
    inner join touched
        on stored.wallet = touched.wallet and stored.token_id = touched.token_id
    where
        (stored.wallet, stored.token_id) in (select wallet, token_id from touched)
        and stored.day < touched.start_day
    order by stored.wallet, stored.token_id, stored.day desc, stored.state_version desc
    limit 1 by stored.wallet, stored.token_id

),

refold as (

    -- the touched keys' fills from their start day on, read through the raw sort key
    select f.*
    from fills as f
    inner join touched
        on f.wallet = touched.wallet and f.token_id = touched.token_id
    where
        (f.wallet, f.token_id) in (select wallet, token_id from touched)
        and toDate(f.filled_at) >= touched.start_day

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

fill_days as (

    select
        f.wallet                                                         as wallet,
        f.token_id                                                       as token_id,
        toDate(f.filled_at)                                              as day,
        {{ sorted_events('f') }}                                         as events,
        count()                                                          as day_fills,
        sum(f.collateral)                                                as day_volume,
        sumIf(f.collateral, f.side = 'BUY')                              as day_buy_collateral
    from refold as f
    group by f.wallet, f.token_id, day

),

key_days as (

    select
        wallet,
        token_id,
        arraySort(d -> d.1, groupArray((day, events, day_fills, day_volume, day_buy_collateral))) as days
    from fill_days
    group by wallet, token_id

),

started as (

    select
        key_days.wallet                                                  as wallet,
        key_days.token_id                                                as token_id,
        key_days.days                                                    as days,
        {% if is_incremental() -%}
        (ifNull(prior.amount, toInt128(0)), ifNull(prior.avg_price, toInt128(0)),
         ifNull(prior.trading_pnl, toInt128(0)), ifNull(prior.bought, toInt128(0))) as init,
        toUInt64(ifNull(prior.n_fills, 0))                               as base_fills,
        toUInt64(ifNull(prior.volume, 0))                                as base_volume,
        toUInt64(ifNull(prior.buy_collateral, 0))                        as base_buy_collateral,
        ifNull(prior.first_fill_at, days[1].2[1].1)                      as first_fill_at
        {%- else -%}
        {{ empty_position() }}                                           as init,
        toUInt64(0)                                                      as base_fills,
        toUInt64(0)                                                      as base_volume,
        toUInt64(0)                                                      as base_buy_collateral,
        days[1].2[1].1                                                   as first_fill_at
        {%- endif %}
    from key_days
    {% if is_incremental() -%}
    left join prior
        on key_days.wallet = prior.wallet and key_days.token_id = prior.token_id
    {%- endif %}

),

folded as (

    select
        wallet,
        token_id,
        days,
        first_fill_at,
        {{ average_cost_checkpoints('arrayMap(d -> d.2, days)', 'init') }}  as states,
        arrayCumSum(arrayMap(d -> toUInt64(d.3), days))                  as cum_fills,
        arrayCumSum(arrayMap(d -> toUInt64(d.4), days))                  as cum_volume,
        arrayCumSum(arrayMap(d -> toUInt64(d.5), days))                  as cum_buy_collateral,
        base_fills,
        base_volume,
        base_buy_collateral
    from started

),

checkpoints as (

    select
        wallet,
        token_id,
        first_fill_at,
        arrayJoin(arrayEnumerate(days))                                  as i,
        days[i]                                                          as d,
        states[i + 1]                                                    as state,
        states[i]                                                        as start_state,
        base_fills + cum_fills[i]                                        as n_fills,
        base_volume + cum_volume[i]                                      as volume,
        base_buy_collateral + cum_buy_collateral[i]                      as buy_collateral
    from folded

),

final as (

    select
        wallet,
        token_id,
        d.1                                                              as day,
        toInt128(state.1)                                                as amount,
        toInt128(state.2)                                                as avg_price,
        toInt128(state.3)                                                as trading_pnl,
        toInt128(state.4)                                                as bought,
        toUInt64(n_fills)                                                as n_fills,
        toUInt64(volume)                                                 as volume,
        toUInt64(buy_collateral)                                         as buy_collateral,
        -- the day's own PnL: the sum of its sells' intDiv terms, so the days add up exactly
        toInt128(state.3 - start_state.3)                                as day_trading_pnl,
        toUInt64(d.4)                                                    as day_volume,
        toUInt64(d.3)                                                    as day_fills,
        first_fill_at,
        d.2[-1].1                                                        as last_fill_at,
        d.2[-1].2                                                        as last_fill_id,
        assumeNotNull((select loaded_through from watermark))            as loaded_through,
        toUInt64(toUnixTimestamp64Milli(loaded_through))                 as state_version
    from checkpoints

)

select * from final
