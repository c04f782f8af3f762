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

latest as (

    select
        token_id,
        argMax(filled_at, (filled_at, fill_id)) as mark_at,
        argMax(fill_id, (filled_at, fill_id))   as mark_fill_id,
        argMax(price, (filled_at, fill_id))     as mark_price
    from new_fills
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
