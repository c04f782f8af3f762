{{
    config(
        materialized = 'incremental',
        incremental_strategy = 'append',
        engine = 'ReplacingMergeTree(state_version)',
        order_by = '(wallet, token_id)',
        partition_by = 'tuple()',
        query_settings = {'optimize_aggregation_in_order': 1}
    )
}}

-- The average-cost state per (wallet, token) after every fill loaded so far. Nightly, only
-- keys with newly loaded fills move: a key whose new fills all come after its last folded
-- event continues from its stored state; a key that received a late fill (one ordered
-- before its last folded event) re-folds its whole history. New rows are appended and the
-- ReplacingMergeTree keeps the newest state per key (read it with FINAL), so the result
-- always equals a full rebuild, without deleting anything. Raw fills are sorted by
-- (maker, token_id), so the grouping streams in that order instead of hashing.

with fills as (

    select * from {{ ref('int_fills_credited') }}

),

{% if is_incremental() %}

new_fills as (

    select * from fills
    where inserted_at > (select max(loaded_through) from {{ this }})

),

touched as (

    select
        wallet,
        token_id,
        min((filled_at, fill_id)) as first_new_event
    from new_fills
    group by wallet, token_id

),

prior as (

    -- only the stored states of touched keys (a primary-key lookup), never the whole table
    select * from {{ this }}
    where (wallet, token_id) in (select wallet, token_id from touched)
    order by state_version desc
    limit 1 by wallet, token_id

),

plan as (

    select
        touched.wallet                                                   as wallet,
        touched.token_id                                                 as token_id,
        prior.wallet is not null
            and touched.first_new_event < (prior.last_fill_at, prior.last_fill_id) as is_late
    from touched
    left join prior
        on touched.wallet = prior.wallet and touched.token_id = prior.token_id

),

continued as (

    -- keys without a stored state start from zero; the others from what is stored
    select
        f.wallet                                                         as wallet,
        f.token_id                                                       as token_id,
        {{ sorted_events('f') }}                                         as events,
        {{ average_cost_fold(
            'events',
            '(ifNull(any(p.amount), toInt128(0)), ifNull(any(p.avg_price), toInt128(0)),'
            ~ ' ifNull(any(p.trading_pnl), toInt128(0)), ifNull(any(p.bought), toInt128(0)))'
        ) }}                                                             as state,
        ifNull(any(p.n_fills), 0) + count()                              as n_fills,
        ifNull(any(p.volume), 0) + sum(toUInt128(f.collateral))          as volume,
        ifNull(any(p.buy_collateral), 0)
            + sumIf(toUInt128(f.collateral), f.side = 'BUY')             as buy_collateral,
        least(ifNull(any(p.first_fill_at), min(f.filled_at)), min(f.filled_at)) as first_fill_at,
        (events[-1].1, events[-1].2)                                     as last_event
    from new_fills as f
    inner join (select * from plan where not is_late) as k
        on f.wallet = k.wallet and f.token_id = k.token_id
    left join prior as p
        on f.wallet = p.wallet and f.token_id = p.token_id
    group by f.wallet, f.token_id

),

refolded as (

    select
        f.wallet                                                         as wallet,
        f.token_id                                                       as token_id,
        {{ sorted_events('f') }}                                         as events,
        {{ average_cost_fold('events', empty_position()) }}              as state,
        count()                                                          as n_fills,
        sum(toUInt128(f.collateral))                                     as volume,
        sumIf(toUInt128(f.collateral), f.side = 'BUY')                   as buy_collateral,
        min(f.filled_at)                                                 as first_fill_at,
        (events[-1].1, events[-1].2)                                     as last_event
    from fills as f
    where (f.wallet, f.token_id) in (select wallet, token_id from plan where is_late)
    group by f.wallet, f.token_id

),

folded as (

    select * from continued
    union all
    select * from refolded

),

watermark as (

    select max(inserted_at) as loaded_through from new_fills

),

{% else %}

folded as (

    select
        f.wallet                                                         as wallet,
        f.token_id                                                       as token_id,
        {{ sorted_events('f') }}                                         as events,
        {{ average_cost_fold('events', empty_position()) }}              as state,
        count()                                                          as n_fills,
        sum(toUInt128(f.collateral))                                     as volume,
        sumIf(toUInt128(f.collateral), f.side = 'BUY')                   as buy_collateral,
        min(f.filled_at)                                                 as first_fill_at,
        (events[-1].1, events[-1].2)                                     as last_event
    from fills as f
    group by f.wallet, f.token_id

),

watermark as (

    select max(inserted_at) as loaded_through from fills

),

{% endif %}

final as (

    select
        folded.wallet                                                    as wallet,
        folded.token_id                                                  as token_id,
        toInt128(folded.state.1)                                         as amount,
        toInt128(folded.state.2)                                         as avg_price,
        toInt128(folded.state.3)                                         as trading_pnl,
        toInt128(folded.state.4)                                         as bought,
        toUInt64(folded.n_fills)                                         as n_fills,
        toUInt128(folded.volume)                                         as volume,
        toUInt128(folded.buy_collateral)                                 as buy_collateral,
        folded.first_fill_at                                             as first_fill_at,
        folded.last_event.1                                              as last_fill_at,
        folded.last_event.2                                              as last_fill_id,
        assumeNotNull((select loaded_through from watermark))            as loaded_through,
        toUInt64(toUnixTimestamp64Milli(loaded_through))                 as state_version
    from folded

)

select * from final
