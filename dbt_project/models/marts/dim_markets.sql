{{
    config(
        materialized = 'table',
        engine = 'MergeTree()',
        order_by = '(condition_id)'
    )
}}

-- Every condition the platform knows of: listed in markets.jsonl, present in the
-- resolution map, or both. Resolved YES, NO or 50-50 (int_resolutions). A small table,
-- rebuilt whole each run, sorted by its key for the marts' joins.
with markets as (

    select * from {{ ref('stg_reference__markets') }}

),

categories as (

    select * from {{ ref('int_market_categories') }}

),

resolutions as (

    select * from {{ ref('int_resolutions') }}

),

conditions as (

    select condition_id from markets
    union distinct
    select condition_id from resolutions

),

final as (

    select
        conditions.condition_id                                     as condition_id,
        coalesce(markets.market_id, resolutions.market_id)          as market_id,
        markets.question                                            as question,
        coalesce(categories.category, '{{ var("uncategorized") }}') as category,
        markets.raw_category                                        as raw_category,
        markets.tags                                                as tags,
        markets.yes_token_id                                        as yes_token_id,
        markets.no_token_id                                         as no_token_id,
        markets.end_date                                            as end_date,
        coalesce(resolutions.is_resolved, false)                    as is_resolved,
        resolutions.resolved_outcome                                as resolved_outcome,
        resolutions.payout_numerators                               as payout_numerators,
        resolutions.fetched_at                                      as resolution_fetched_at,
        resolutions.resolved_at                                     as resolved_at,
        markets.condition_id is not null                            as is_listed
    from conditions
    left join markets on conditions.condition_id = markets.condition_id
    left join categories on conditions.condition_id = categories.condition_id
    left join resolutions on conditions.condition_id = resolutions.condition_id

)

select * from final
