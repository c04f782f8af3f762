{{
    config(
        materialized = 'table',
        engine = 'MergeTree()',
        order_by = '(time_window, category, rank_pnl)',
        partition_by = 'tuple()'
    )
}}

-- Wallet rankings by realized PnL and by volume over 1, 7, 30 days and all time, overall
-- (category '') and per category (int_leaderboard_board_sums says what a board sums,
-- int_leaderboard_windows how it ranks). Rebuilt whole each night: it holds at most
-- 4 windows x (categories + 1) x 2 x leaderboard_depth rows (ties at the depth aside), so a
-- rebuild is cheap and a reader (the API, the health report) gets a plain sorted table.
-- Its data tests (unique wallet and ranks per board) test the ranking, run every night.
-- Ordered as it is read: one window and category, in rank order.
-- a thin mart: its columns are int_leaderboard_windows's (AM04 cannot see them)
select * from {{ ref('int_leaderboard_windows') }}  -- noqa: AM04
