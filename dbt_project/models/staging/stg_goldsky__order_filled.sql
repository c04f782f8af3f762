with source as (

    select * from {{ source('goldsky', 'order_filled') }} final

),

renamed as (

    select
        id                  as fill_id,
        timestamp           as filled_at,
        transaction_hash,
        order_hash,
        lower(maker)        as maker,
        lower(taker)        as taker,
        maker_asset_id,
        taker_asset_id,
        maker_amount_filled,
        taker_amount_filled,
        fee,
        block_number,
        contract_version
    from source

)

select * from renamed
