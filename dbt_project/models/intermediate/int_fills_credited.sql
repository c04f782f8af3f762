-- Each OrderFilled event credited to its maker only: the exchange emits one event per
-- order filled (the taker's own order included), so crediting the maker counts every
-- participant exactly once. Crediting the taker too would double volume and PnL.
-- `token_id` is the raw table's materialized column (the non-collateral asset), so the
-- fold downstream can read in the table's (maker, token_id) order.
with fills as (

    select * from {{ ref('stg_goldsky__order_filled') }}

),

credited as (

    select
        fill_id,
        filled_at,
        inserted_at,
        maker                                                      as wallet,
        token_id,
        if(maker_asset_id = '0', 'BUY', 'SELL')                    as side,
        if(side = 'BUY', taker_amount_filled, maker_amount_filled) as quantity,
        if(side = 'BUY', maker_amount_filled, taker_amount_filled) as collateral
    from fills

),

priced as (

    select
        *,
        -- collateral per token in 10^6 units, truncated like the subgraph's BigInt division
        if(quantity > 0, intDiv(toUInt128(collateral) * 1000000, quantity), 0) as price
    from credited

)

select * from priced
