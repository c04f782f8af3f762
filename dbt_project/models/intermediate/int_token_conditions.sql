-- Outcome token -> (condition, outcome index). Columns are nullable so that a fill whose
-- token no market lists keeps a null condition after the left join downstream.
with markets as (

    select * from {{ ref('stg_reference__markets') }}

),

tokens as (

    select condition_id, yes_token_id as token_id, 0 as outcome_index, line_number from markets
    union all
    select condition_id, no_token_id as token_id, 1 as outcome_index, line_number from markets

),

first_listing as (

    select
        token_id,
        toNullable(condition_id)                 as condition_id,
        toNullable(toUInt8(outcome_index))       as outcome_index
    from tokens
    order by token_id, line_number
    limit 1 by token_id

)

select * from first_listing
