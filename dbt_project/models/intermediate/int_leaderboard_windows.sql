{{ config(materialized = 'view') }}

-- Wallet rankings over the 1-, 7- and 30-day windows and all time, for all categories
-- (category '') and per category, by realized PnL and by volume. The window ends on
-- `as_of_day`, the last UTC day with fills in the data (a property of the data, not of the
-- clock: the same data always ranks the same), and covers
-- [as_of_day - window_days + 1, as_of_day]; 'all' (window_days 0) covers every stored day,
-- including resolution days recorded after the last fill, so its PnL is each wallet's
-- realized_pnl. A market counts in its CURRENT category, joined here from the small
-- category dimension, so a re-categorised market needs no rewrite of stored days. Ranks are
-- row_number (ties by wallet); only wallets within the top `leaderboard_depth` by PnL or by
-- volume are kept, which keeps fct_leaderboard small. A view: fct_leaderboard materializes
-- it once a night.

with days as (

    select * from {{ final_rows(ref('int_wallet_market_days')) }}
    where is_deleted = 0

),


categories as (

    select * from {{ ref('int_market_categories') }}

),

bounds as (

    select
        maxIf(day, n_fills > 0)                                         as as_of_day,
        min(day)                                                        as first_day
    from days

),

windows as (

    select
        w.1                                                             as time_window,
        toUInt16(w.2)                                                   as window_days,
        (select as_of_day from bounds)                                  as as_of_day,
        if(window_days = 0, (select first_day from bounds),
           as_of_day - window_days + 1)                                 as window_start
    from (select arrayJoin([('1d', 1), ('7d', 7), ('30d', 30), ('all', 0)]) as w)

),

categorized as (

    select
        days.wallet                                                     as wallet,
        days.day                                                        as day,
        days.realized_pnl                                               as realized_pnl,
        days.volume                                                     as volume,
        days.n_fills                                                    as n_fills,
        -- a market_key is a condition, or a token no market lists
        coalesce(categories.category, '{{ var("uncategorized") }}')    as market_category
    from days
    left join categories on days.market_key = categories.condition_id

),

in_windows as (

    select
        windows.time_window                                             as time_window,
        windows.window_days                                             as window_days,
        windows.as_of_day                                               as as_of_day,
        windows.window_start                                            as window_start,
        categorized.wallet                                              as wallet,
        categorized.realized_pnl                                        as realized_pnl,
        categorized.volume                                              as volume,
        categorized.n_fills                                             as n_fills,
        arrayJoin(['', categorized.market_category])                    as category
    from categorized
    cross join windows
    where categorized.day >= windows.window_start
      and (windows.window_days = 0 or categorized.day <= windows.as_of_day)

),

totals as (

    select
        time_window,
        window_days,
        as_of_day,
        window_start,
        category,
        wallet,
        toInt128(sum(in_windows.realized_pnl))                                     as realized_pnl,
        toUInt64(sum(in_windows.volume))                                           as volume,
        toUInt64(sum(in_windows.n_fills))                                          as n_fills
    from in_windows
    group by time_window, window_days, as_of_day, window_start, category, wallet

),

ranked as (

    select
        *,
        toUInt32(row_number() over (
            partition by time_window, category order by realized_pnl desc, wallet asc
        ))                                                              as rank_pnl,
        toUInt32(row_number() over (
            partition by time_window, category order by volume desc, wallet asc
        ))                                                              as rank_volume
    from totals

),

final as (

    select
        time_window,
        window_days,
        as_of_day,
        window_start,
        category,
        wallet,
        realized_pnl,
        {{ to_usd('realized_pnl') }}                                    as realized_pnl_usd,
        volume,
        {{ to_usd('volume') }}                                          as volume_usd,
        n_fills,
        rank_pnl,
        rank_volume
    from ranked
    where rank_pnl <= {{ var('leaderboard_depth', 1000) }}
       or rank_volume <= {{ var('leaderboard_depth', 1000) }}

)

select * from final
