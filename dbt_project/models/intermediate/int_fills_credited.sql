-- Each OrderFilled event credited to its maker only: the exchange emits one event per
-- order filled (the taker's own order included), so crediting the maker counts every
-- participant exactly once. Crediting the taker too would double volume and PnL.
with fills as (

    select * from {{ ref('stg_goldsky__order_filled') }}

),

tokens as (

    select * from {{ ref('int_token_conditions') }}

),

credited as (

    select
        fill_id,
        filled_at,
        maker                                                          as wallet,
        maker_asset_id = '0'                                           as is_buy,
        if(is_buy, 'BUY', 'SELL')                                      as side,
        if(is_buy, taker_asset_id, maker_asset_id)                     as token_id,
        if(is_buy, taker_amount_filled, maker_amount_filled)           as quantity,
        if(is_buy, maker_amount_filled, taker_amount_filled)           as collateral
    from fills

),

priced as (

    select
        *,
        -- collateral per token in 10^6 units, truncated like the subgraph's BigInt division
        if(quantity > 0, intDiv(toUInt128(collateral) * 1000000, quantity), 0) as price
    from credited

),

joined as (

    select
        priced.fill_id       as fill_id,
        priced.filled_at     as filled_at,
        priced.wallet        as wallet,
        priced.side          as side,
        priced.token_id      as token_id,
        tokens.condition_id  as condition_id,
        tokens.outcome_index as outcome_index,
        priced.quantity      as quantity,
        priced.collateral    as collateral,
        priced.price         as price
    from priced
    left join tokens on priced.token_id = tokens.token_id

)

select * from joined
