{{
    config(
        materialized = 'incremental',
        incremental_strategy = 'append',
        engine = 'ReplacingMergeTree(mark_version)',
        order_by = '(token_id)'
    )
}}

-- Each outcome token's mark: the price of its last fill by (filled_at, fill_id), any wallet
-- (collateral x 10^6 / quantity, truncated: int_fills_credited.price). Nightly, only tokens
-- with fills loaded since the last build are looked at, and a row is appended only when a
-- new fill comes after the stored mark: a late fill older than the mark never moves it, and
-- the rows appended tonight are exactly the marks that moved. Nothing stored depends on a
-- mark: the open positions are valued when read (int_open_position_values).
-- ReplacingMergeTree(mark_version) keyed by token_id: one small row per token, looked up by key.

with fills as (

    select * from {{ ref('int_fills_credited') }}

),

new_fills as (

    select * from fills
    {% if is_incremental() -%}
    where inserted_at > (select max(previous.loaded_through) from {{ this }} as previous)
    {%- endif %}

),

last_fill_times as (

    -- each token's newest fill time: its mark is one of the fills at that time
    select
        token_id,
        max(filled_at) as filled_at
    from new_fills
    group by token_id

),

latest as (

    -- the last fill by (filled_at, fill_id) among the fills at SOME token's newest time: the
    -- long fill ids are compared for about one fill in a hundred instead of every fill. A
    -- token's own newest fills are always among them and outrank its other fills there, so
    -- its argMax is its mark. Filtering by the time alone (a set of 8-byte times) and not by
    -- (token, time) spares a hash of the 77-digit token id per fill: the full build's node
    -- 2.85 s instead of 3.9 s at the 10M bench, same marks (and 3.7-4.0 s for the exact
    -- pairs against 9.6-10.9 s for three argMax over all fills, earlier)
    select
        token_id,
        argMax(
            (filled_at, fill_id, price), (filled_at, fill_id)
        )        as newest,
        newest.1 as mark_at,
        newest.2 as mark_fill_id,
        newest.3 as mark_price
    from new_fills
    where filled_at in (select last_fill_times.filled_at from last_fill_times)
    group by token_id

),

{% if is_incremental() %}

stored as (

    select
        token_id,
        argMax(mark_at, mark_version)      as mark_at,
        argMax(mark_fill_id, mark_version) as mark_fill_id
    from {{ this }}
    where token_id in (select latest.token_id from latest)
    group by token_id

),

moved as (

    select latest.*
    from latest
    left join stored on latest.token_id = stored.token_id
    where
        stored.token_id is null
        or (latest.mark_at, latest.mark_fill_id)
        > (assumeNotNull(stored.mark_at), assumeNotNull(stored.mark_fill_id))

),

{% else %}

moved as (

    select * from latest

),

{% endif %}

watermark as (

    select max(inserted_at) as loaded_through from new_fills

),

final as (

    select
        token_id,
        toUInt64(mark_price)                                            as mark_price,
        mark_at,
        mark_fill_id,
        assumeNotNull((select watermark.loaded_through from watermark)) as loaded_through,
        toUInt64(toUnixTimestamp64Milli(loaded_through))                as mark_version
    from moved

)

select * from final
