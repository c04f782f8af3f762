{{
    config(
        materialized = 'table',
        engine = 'MergeTree()',
        order_by = 'tuple()',
        partition_by = 'tuple()'
    )
}}

-- What every leaderboard board sums, one row per board (window, category), wallet: realized
-- PnL, volume and fills over the 1-, 7- and 30-day windows and all time, per current category
-- and over all categories (category ''). The window ends on `as_of_day`, the last UTC day
-- with fills in the data (a property of the data, not of the clock: the same data always
-- ranks the same), and covers [as_of_day - window_days + 1, as_of_day]; 'all' (window_days 0)
-- covers every stored day, including resolution days recorded after the last fill, so its
-- PnL is each wallet's realized_pnl. A wallet is on a board when it has a day row in the
-- window (for 'all': a market). A market counts in its CURRENT category, so a re-categorised
-- market needs no rewrite of stored days.
--
-- Cost: nothing here reads the whole history. 'all' is the wallet x category sums the
-- nightly keeps current (int_wallet_category_totals, one row per wallet and category); the
-- short windows read only the days of the last 30 (int_wallet_market_days is partitioned
-- by month, so the filter on `day` skips every older month), each day row once for every
-- window, the all-categories rows by GROUPING SETS; the bounds are the min and max of the
-- fills' timestamp, which the engine answers from its part metadata.
-- A table, rebuilt whole each night: the ranking (int_leaderboard_windows) reads every row
-- twice and int_leaderboard_candidates once, so stored they are summed once (6.6 million
-- rows at the 10M bench, about 2.7 s to sum). Never read by key: no sort key (tuple()), which
-- also spares the write a sort.

{%- set windows = leaderboard_windows() %}
{%- set longest = windows | map(attribute=1) | max %}

with fills as (

    select * from {{ ref('stg_goldsky__order_filled') }}

),

days as (

    select * from {{ final_rows(ref('int_wallet_market_days')) }}

),

wallet_category_totals as (

    select * from {{ ref('int_wallet_category_totals') }}

),

categories as (

    select * from {{ ref('int_market_categories') }}

),

bounds as (

    {{ leaderboard_bounds('fills') }}

),

recent_days as (

    -- the live days of the last 30 up to as_of_day (a resolution booked after the last fill
    -- day counts in 'all' only)
    select
        days.wallet                                                 as wallet,
        days.day                                                    as day,
        days.realized_pnl                                           as realized_pnl,
        days.volume                                                 as volume,
        days.n_fills                                                as n_fills,
        -- a market_key is a condition, or a token no market lists
        coalesce(categories.category, '{{ var("uncategorized") }}') as category,
        (select bounds.as_of_day from bounds)                       as as_of_day
    from days
    left join categories on days.market_key = categories.condition_id
    where
        days.is_deleted = 0
        and days.day between (select bounds.as_of_day from bounds) - {{ longest - 1 }}
        and (select bounds.as_of_day from bounds)

),

short_sums as (

    -- every short window's sums at once, per wallet and category and per wallet (category
    -- ''), in one pass over the recent days: a day is in a window of n days when it is less
    -- than n days before as_of_day. (Each day row repeated once per window and grouped by
    -- the window too took 3.4 s instead of 2.7 at the 10M bench, same rows.)
    -- sqlfluff misreads the indent of the select list the loop renders
    -- noqa: disable=LT02
    select
        wallet,
        category,
        {%- for _, n in windows %}
        toInt128(sumIf(realized_pnl, day > as_of_day - {{ n }})) as pnl_{{ n }},
        toUInt64(sumIf(volume, day > as_of_day - {{ n }}))       as volume_{{ n }},
        toUInt64(sumIf(n_fills, day > as_of_day - {{ n }}))      as fills_{{ n }},
        countIf(day > as_of_day - {{ n }})                       as days_{{ n }}{{ ',' if not loop.last }}
        {%- endfor %}
    from recent_days
    group by grouping sets (
        (wallet, category),
        (wallet)
    )
    -- noqa: enable=LT02

),

short_windows as (

    -- one row per short window the wallet has a day in. A board is named only in `final`: a
    -- name carried through the aggregation and the ranking is a string more to hash and to
    -- sort (1 s of 18 at 10M)
    select
        toUInt16(board.1)   as window_days,
        short_sums.wallet   as wallet,
        short_sums.category as category,
        board.2             as realized_pnl,
        board.3             as volume,
        board.4             as n_fills
    from short_sums
    array join arrayFilter(
        b -> b.5 > 0,
        [
            {%- for _, n in windows %}
            ({{ n }}, pnl_{{ n }}, volume_{{ n }}, fills_{{ n }}, days_{{ n }}){{ ',' if not loop.last }}
            {%- endfor %}
        ]
    ) as board

),

all_time as (

    -- the all-time boards (window_days 0): each wallet x category's totals, and each
    -- wallet's (category '')
    select
        toUInt16(0)                 as window_days,
        wallet,
        category,
        toInt128(sum(realized_pnl)) as realized_pnl,
        toUInt64(sum(volume))       as volume,
        toUInt64(sum(n_fills))      as n_fills
    from wallet_category_totals
    group by grouping sets (
        (wallet, category),
        (wallet)
    )

),

totals as (

    select * from short_windows
    union all
    select * from all_time

)

select * from totals
