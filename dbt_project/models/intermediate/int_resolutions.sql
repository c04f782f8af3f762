-- One row per condition of the resolution map. Resolved means YES/NO with the matching
-- payout pair; a null payout is never read as NO. Payout prices are in 10^6 units:
-- numerator x 10^6 / denominator, the denominator being the sum of the numerators.
with entries as (

    select * from {{ ref('stg_reference__resolutions') }}

),

classified as (

    select
        *,
        ifNull(
            (resolved_outcome = 'YES' and payout_yes = 1 and payout_no = 0)
            or (resolved_outcome = 'NO' and payout_yes = 0 and payout_no = 1),
            false
        ) as is_resolved
    from entries

),

one_per_condition as (

    select *
    from classified
    order by condition_id, is_resolved desc, entry_index
    limit 1 by condition_id

),

payouts as (

    select
        condition_id,
        market_id,
        is_resolved,
        if(is_resolved, resolved_outcome, null)                                as resolved_outcome,
        if(is_resolved, [toUInt64(ifNull(payout_yes, 0)), toUInt64(ifNull(payout_no, 0))],
           [])                                                                 as payout_numerators,
        if(is_resolved,
           arrayMap(n -> intDiv(toInt128(n) * 1000000, toInt128(arraySum(payout_numerators))),
                    payout_numerators),
           [])                                                                 as payout_prices,
        fetched_at
    from one_per_condition

)

select * from payouts
