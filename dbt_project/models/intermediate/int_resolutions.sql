{{
    config(
        materialized = 'table',
        engine = 'MergeTree()',
        order_by = '(condition_id)'
    )
}}

-- A table rebuilt each night from the reference files, not a view: it is small
-- (one row per condition, looked up by condition), and every read of the marts joins it (the API reads
-- a wallet's category PnL, whose open positions are valued when read), so a view would
-- re-derive it on every request.
-- One row per condition of the resolution map. Resolved means an outcome of the var
-- `resolution_payouts` (YES 1,0 | NO 0,1 | 50-50 1,1) with exactly its payout pair; a null
-- payout is never read as NO. Payout prices are in 10^6 units: numerator x 10^6 / the sum
-- of the numerators (500000 for each side of a 50-50).
{%- set payouts = var('resolution_payouts') %}
with entries as (

    select * from {{ ref('stg_reference__resolutions') }}

),

classified as (

    select
        *,
        coalesce(
            {% for outcome in payouts -%}
            {% if not loop.first %}or {% endif -%}
            (
                resolved_outcome = '{{ outcome }}'
                and payout_yes = {{ payouts[outcome][0] }} and payout_no = {{ payouts[outcome][1] }}
            )
            {% endfor -%}, false
        ) as is_resolved
    from entries

),

one_per_condition as (

    select *
    from classified
    order by condition_id asc, is_resolved desc, entry_index asc
    limit 1 by condition_id

),

payouts as (

    select
        condition_id,
        market_id,
        is_resolved,
        if(is_resolved, resolved_outcome, null) as resolved_outcome,
        if(
            is_resolved, [toUInt64(coalesce(payout_yes, 0)), toUInt64(coalesce(payout_no, 0))],
            []
        )                                       as payout_numerators,
        if(
            is_resolved,
            arrayMap(
                n -> intDiv(toInt128(n) * 1000000, toInt128(arraySum(payout_numerators))),
                payout_numerators
            ),
            []
        )                                       as payout_prices,
        fetched_at,
        resolved_at
    from one_per_condition

)

select * from payouts
