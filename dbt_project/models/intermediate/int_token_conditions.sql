{{
    config(
        materialized = 'table',
        engine = 'MergeTree()',
        order_by = '(token_id)'
    )
}}

-- A table rebuilt each night from the reference files, not a view: it is small
-- (one row per token, looked up by token), and every read of the marts joins it (the API reads
-- a wallet's category PnL, whose open positions are valued when read), so a view would
-- re-derive it on every request.
-- Outcome token -> (condition, outcome index). markets.jsonl comes first (the platform's
-- own listing); the orderbook subgraph's token map (raw.token_map, refreshed nightly when
-- GOLDSKY_SOURCE=subgraph) fills in the tokens markets.jsonl lacks, so fills map to their
-- condition even without a markets file. Columns are nullable so that a fill whose token
-- neither source knows keeps a null condition after the left join downstream.
with markets as (

    select * from {{ ref('stg_reference__markets') }}

),

subgraph_tokens as (

    select * from {{ ref('stg_goldsky__token_map') }}

),

listed_tokens as (

    select
        condition_id,
        yes_token_id as token_id,
        0            as outcome_index,
        line_number
    from markets
    union all
    select
        condition_id,
        no_token_id as token_id,
        1           as outcome_index,
        line_number
    from markets

),

first_listing as (

    select
        token_id,
        toNullable(condition_id)           as condition_id,
        toNullable(toUInt8(outcome_index)) as outcome_index,
        'markets'                          as mapped_by
    from listed_tokens
    order by token_id, line_number
    limit 1 by token_id

),

unlisted as (

    -- a token without an outcome index cannot be priced at resolution: left unmapped
    select
        token_id,
        toNullable(condition_id)                          as condition_id,
        toNullable(toUInt8(assumeNotNull(outcome_index))) as outcome_index,
        'subgraph'                                        as mapped_by
    from subgraph_tokens
    where
        outcome_index is not null
        and token_id not in (select first_listing.token_id from first_listing)

),

combined as (

    select * from first_listing
    union all
    select * from unlisted

)

select * from combined
