-- Ingest stores each fill once (rows whose id is already stored are not inserted again)
-- and lower-cases addresses, so this view reads the table as it is: no FINAL over a
-- billion rows, and the (maker, token_id) sort order stays usable downstream. The
-- `unique` test on fill_id guards the ingest's promise.
with source as (

    -- materialized columns are not part of `*`: name them
    select
        *,
        token_id,
        inserted_at
    from {{ source('goldsky', 'order_filled') }}

),

renamed as (

    select
        id        as fill_id,
        timestamp as filled_at,
        transaction_hash,
        order_hash,
        maker,
        taker,
        maker_asset_id,
        taker_asset_id,
        token_id,
        maker_amount_filled,
        taker_amount_filled,
        fee,
        block_number,
        contract_version,
        inserted_at
    from source

)

select * from renamed
