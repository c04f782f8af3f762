{{ config(materialized = 'view') }}

-- Wallet rankings over the 1-, 7- and 30-day windows and all time, for all categories
-- (category '') and per category, by realized PnL and by volume (what each board sums and
-- which wallets are on it: int_leaderboard_board_sums). Ranks are row_number (ties by
-- wallet); only wallets within the top `leaderboard_depth` by PnL or by volume are kept,
-- which keeps fct_leaderboard small.
--
-- How: a wallet's rank is 1 + the board rows above it, and only the candidates (the rows at
-- or above either depth floor, int_leaderboard_candidates) need one. A candidate's rank by
-- the measure it was not kept for can be deep (the PnL rank of a top-volume wallet), so the
-- rows above it are counted over the whole board: each board row is an ASOF match to the
-- candidate just below it in the board's order (one number per row and measure,
-- leaderboard_sort_key), the matches are counted per candidate, and a candidate's rank adds
-- up the counts at and above it. That reads the board rows once per measure instead of
-- ordering them all twice: at the 10M bench, 6.6 million board rows, about 4 s instead of 11.

{%- set windows = leaderboard_windows() %}
{%- set depth = var('leaderboard_depth', 1000) %}
{#- the boards' names by window_days, 'all' being 0: ['1d', ..., 'all'] and [1, ..., 0] #}
{%- set names = "['" ~ (windows | map(attribute=0) | join("', '")) ~ "', 'all']" %}
{%- set lengths = '[' ~ (windows | map(attribute=1) | join(', ')) ~ ', 0]' %}

with fills as (

    select * from {{ ref('stg_goldsky__order_filled') }}

),

board_sums as (

    select * from {{ ref('int_leaderboard_board_sums') }}

),

candidates as (

    select * from {{ ref('int_leaderboard_candidates') }}

),

bounds as (

    {{ leaderboard_bounds('fills') }}

),

board_categories as (

    -- every category a board is kept for (each board with a row has candidates), so that a
    -- board is one number in the ASOF joins below: the window in the high bits, the
    -- category's place in this list in the low (a row of a category not listed gets 0 and
    -- matches no candidate). One UInt64 compares faster than (window_days, category): the
    -- counting 1.1 s instead of 1.35 s per measure at the 10M bench
    select arraySort(groupUniqArray(category)) as categories from candidates

),

{%- for measure in ['realized_pnl', 'volume'] %}

{{ measure }}_places as (

    -- each candidate's place on its board by {{ measure }}
    select
        window_days,
        category,
        wallet,
        {{ board_key('candidates') }} as board,  -- noqa: LT01
        {{ leaderboard_sort_key(measure, 'candidates') }} as place
    from candidates

),

{{ measure }}_counted as (

    -- each board row counted at the candidate just below it by {{ measure }}
    select
        places.board as board,
        places.place as place,
        count()      as n_rows
    from (
        select
            {{ board_key('board_sums') }} as board,  -- noqa: LT01
            {{ leaderboard_sort_key(measure, 'board_sums') }} as place
        from board_sums
    ) as board_row
    asof inner join {{ measure }}_places as places  -- noqa: PRS
        on
            board_row.board = places.board
            and board_row.place > places.place
    group by places.board, places.place

),

{{ measure }}_ranks as (

    -- 1 + the rows counted at this candidate and at every candidate above it
    select
        places.window_days as window_days,
        places.category    as category,
        places.wallet      as wallet,
        toUInt32(1 + sum(coalesce(counted.n_rows, 0)) over (
            partition by places.window_days, places.category
            order by places.place desc
            rows between unbounded preceding and current row
        ))                 as board_rank
    from {{ measure }}_places as places
    left join {{ measure }}_counted as counted
        on
            places.board = counted.board
            and places.place = counted.place

),

{%- endfor %}

ranked as (

    select
        candidates.window_days                               as window_days,
        -- a scalar subquery is Nullable: the bounds exist whenever a wallet is ranked
        assumeNotNull((select bounds.as_of_day from bounds)) as as_of_day,
        if(
            candidates.window_days = 0, assumeNotNull((select bounds.first_day from bounds)),
            as_of_day - candidates.window_days + 1
        )                                                    as window_start,
        candidates.category                                  as category,
        candidates.wallet                                    as wallet,
        candidates.realized_pnl                              as realized_pnl,
        candidates.volume                                    as volume,
        candidates.n_fills                                   as n_fills,
        realized_pnl_ranks.board_rank                        as rank_pnl,
        volume_ranks.board_rank                              as rank_volume
    from candidates
    inner join realized_pnl_ranks
        on
            candidates.window_days = realized_pnl_ranks.window_days
            and candidates.category = realized_pnl_ranks.category
            and candidates.wallet = realized_pnl_ranks.wallet
    inner join volume_ranks
        on
            candidates.window_days = volume_ranks.window_days
            and candidates.category = volume_ranks.category
            and candidates.wallet = volume_ranks.wallet

),

final as (

    select
        transform(window_days, {{ lengths }}, {{ names }}, '') as time_window,
        window_days,
        as_of_day,
        window_start,
        category,
        wallet,
        realized_pnl,
        {{ to_usd('realized_pnl') }}                           as realized_pnl_usd,
        volume,
        {{ to_usd('volume') }}                                 as volume_usd,
        n_fills,
        rank_pnl,
        rank_volume
    from ranked
    where
        rank_pnl <= {{ depth }}
        or rank_volume <= {{ depth }}

)

select * from final
