{{
    config(
        materialized = 'table',
        engine = 'MergeTree()',
        order_by = '(condition_id)'
    )
}}

-- A table rebuilt each night from the reference files, not a view: it is small
-- (one row per listed market, looked up by condition), and every read of the marts joins it (the API reads
-- a wallet's category PnL, whose open positions are valued when read), so a view would
-- re-derive it on every request.
-- Canonical category per listed market. A market's raw category is matched first, then
-- its tags; matching is on whole lower-cased values (never substrings, which mislabelled
-- "sol" inside "console"). Among several matches the rule listed first wins.
with markets as (

    select * from {{ ref('stg_reference__markets') }}

),

rules as (

    select * from {{ ref('stg_reference__category_map') }}

),

category_rules as (

    select * from rules
    where match_kind = 'category'

),

tag_rules as (

    select * from rules
    where match_kind = 'tag'

),

by_category as (

    select
        markets.condition_id                                               as condition_id,
        argMin(category_rules.canonical_category, category_rules.priority) as canonical_category
    from markets
    inner join category_rules
        on markets.raw_category = category_rules.match_key
    group by markets.condition_id

),

market_tags as (

    select
        condition_id,
        arrayJoin(tags) as tag
    from markets

),

by_tag as (

    select
        market_tags.condition_id                                 as condition_id,
        argMin(tag_rules.canonical_category, tag_rules.priority) as canonical_category
    from market_tags
    inner join tag_rules
        on market_tags.tag = tag_rules.match_key
    group by market_tags.condition_id

),

categorized as (

    select
        markets.condition_id as condition_id,
        -- nullIf: read live (int_open_position_values) by a session with join_use_nulls = 0,
        -- an unmatched side is '' rather than null; no canonical category is empty
        coalesce(
            nullIf(by_category.canonical_category, ''),
            nullIf(by_tag.canonical_category, ''),
            '{{ var("uncategorized") }}'
        )                    as category
    from markets
    left join by_category on markets.condition_id = by_category.condition_id
    left join by_tag on markets.condition_id = by_tag.condition_id

)

select * from categorized
