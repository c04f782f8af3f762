with source as (

    select * from {{ source('reference', 'category_map') }}

),

renamed as (

    select
        canonical as canonical_category,
        kind      as match_kind,
        key       as match_key,
        priority
    from source

)

select * from renamed
