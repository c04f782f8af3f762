with source as (

    select * from {{ source('reference', 'markets') }}

),

renamed as (

    select
        condition_id,
        market_id,
        question,
        lower(trim(category))               as raw_category,
        arrayMap(t -> lower(trim(t)), tags) as tags,
        token_ids[1]                        as yes_token_id,
        token_ids[2]                        as no_token_id,
        event_id,
        end_date,
        line_number
    from source

)

select * from renamed
