{{
    config(
        materialized = 'table',
        engine = 'MergeTree()',
        order_by = '(window_days, category, wallet)',
        partition_by = 'tuple()'
    )
}}

-- The board rows that can make a leaderboard: per board (window, category), those whose
-- realized PnL is at least the board's `leaderboard_depth`-th best, or whose volume is. Every
-- row ranked within the depth by either measure is here (ties at a floor are all kept, so a
-- few more than 2 x depth per board); int_leaderboard_windows ranks only these, which spares
-- ordering the millions of rows that rank nowhere near the top.
-- The floors are top-`depth` heaps of plain numbers (groupArraySorted), cheap next to a sort
-- of the rows. A small table (about 76,000 rows at the 10M bench), read three times by the
-- ranking; sorted by board and wallet, as it is joined.

{%- set depth = var('leaderboard_depth', 1000) %}

with board_sums as (

    select * from {{ ref('int_leaderboard_board_sums') }}

),

floors as (

    -- per board, the depth-th best PnL and volume (the smallest value when a board holds
    -- fewer rows: then every row is a candidate)
    select
        window_days,
        category,
        -arrayElement(groupArraySorted({{ depth }}) (-realized_pnl), -1)               as pnl_floor,
        toUInt64(-arrayElement(groupArraySorted({{ depth }}) (-toInt128(volume)), -1)) as volume_floor
    from board_sums
    group by window_days, category

),

candidates as (

    select
        board_sums.window_days  as window_days,
        board_sums.category     as category,
        board_sums.wallet       as wallet,
        board_sums.realized_pnl as realized_pnl,
        board_sums.volume       as volume,
        board_sums.n_fills      as n_fills
    from board_sums
    inner join floors
        on
            board_sums.window_days = floors.window_days
            and board_sums.category = floors.category
    where
        board_sums.realized_pnl >= floors.pnl_floor
        or board_sums.volume >= floors.volume_floor

)

select * from candidates
