-- The mark-dependent values of the open positions, per (wallet, category), computed when
-- read: unrealized PnL and current value of every position still open (amount > 0 in an
-- unresolved market), each truncated on its own by the rules of macros/positions.sql, then
-- summed under the market's current category. Not stored: a token's mark moves for every
-- holder whenever anyone trades it, so storing these values in the grain rewrote every open
-- pair of a re-marked token each night (65,961 of 296,802 pairs on the 1M bench delta, for
-- ~8k with new fills). A view: the newest checkpoints are read by int_position_days' primary
-- key (wallet, token_id, day), so a filter on wallet (the API reads one wallet) reaches it.

with open_positions as (

    {{ valued_positions(
        '(select * from ' ~ ref('int_positions_current') ~ ' where amount > 0)'
    ) }}

),

categories as (

    select * from {{ ref('int_market_categories') }}

),

per_category as (

    -- nullIf: an unmatched LEFT JOIN gives '' rather than null when a reader's session has
    -- join_use_nulls = 0 (the API's), and no category is empty
    select
        open_positions.wallet                                                   as wallet,
        coalesce(nullIf(categories.category, ''), '{{ var("uncategorized") }}') as category,
        toInt128(sum(open_positions.unrealized_pnl))                            as unrealized_pnl,
        toUInt64(sum(open_positions.current_value))                             as open_value
    from open_positions
    left join categories on open_positions.condition_id = categories.condition_id
    where open_positions.open_amount > 0
    group by wallet, category

)

select * from per_category
