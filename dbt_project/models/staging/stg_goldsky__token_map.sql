-- Outcome token -> condition from the orderbook subgraph's `marketDatas`, loaded by
-- ingest/refresh.py (the table is swapped whole on each refresh; FINAL keeps one row per
-- token should two refreshes ever meet).
with source as (

    select * from {{ source('goldsky', 'token_map') }} final

),

renamed as (

    select
        token_id,
        lower(condition_id) as condition_id,
        outcome_index,
        fetched_at
    from source

)

select * from renamed
