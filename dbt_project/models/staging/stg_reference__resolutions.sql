with source as (

    select * from {{ source('reference', 'resolutions') }}

),

renamed as (

    select
        condition_id,
        nullIf(market_id, 'unknown') as market_id,
        resolved_outcome,
        payout_yes,
        payout_no,
        resolved_at,
        -- the older name, kept for readers of dim_markets.resolution_fetched_at
        resolved_at                  as fetched_at,
        error                        as lookup_error,
        entry_index
    from source

)

select * from renamed
