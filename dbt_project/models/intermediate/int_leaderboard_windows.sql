{{ config(materialized = 'view') }}

-- Wallet rankings over the 1-, 7- and 30-day windows and all time, for all categories
-- (category '') and per category, by realized PnL and by volume. The window ends on
-- `as_of_day`, the last UTC day with fills in the data (a property of the data, not of the
-- clock: the same data always ranks the same), and covers
-- [as_of_day - window_days + 1, as_of_day]; 'all' (window_days 0) covers every stored day,
-- including resolution days recorded after the last fill, so its PnL is each wallet's
-- realized_pnl, and starts on the first day with fills. A wallet is on a board when it has a
-- day row in the window (for 'all': a market). A market counts in its CURRENT category, so a
-- re-categorised market needs no rewrite of stored days. Ranks are row_number (ties by
-- wallet); only wallets within the top `leaderboard_depth` by PnL or by volume are kept,
-- which keeps fct_leaderboard small.
--
-- Cost: nothing here reads the whole history. 'all' is the wallet x category sums the
-- nightly keeps current (int_wallet_category_pnl, one row per wallet and category); the
-- short windows read only the days of the last 30 (int_wallet_market_days is partitioned
-- by month, so the filter on `day` skips every older month), all three in one pass
-- (conditional sums, the all-categories row by ROLLUP); the bounds are the min and max of
-- the fills' timestamp, which the engine answers from its part metadata.

{%- set windows = [('1d', 1), ('7d', 7), ('30d', 30)] %}
{%- set longest = windows | map(attribute=1) | max %}

with fills as (

    select * from {{ ref('stg_goldsky__order_filled') }}

),

days as (

    select * from {{ final_rows(ref('int_wallet_market_days')) }}

),

category_sums as (

    select * from {{ ref('int_wallet_category_pnl') }}

),

categories as (

    select * from {{ ref('int_market_categories') }}

),

bounds as (

    select
        toDate(max(filled_at), 'UTC') as as_of_day,
        toDate(min(filled_at), 'UTC') as first_day
    from fills

),

recent_days as (

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
        and days.day >= (select bounds.as_of_day from bounds) - {{ longest - 1 }}

),

per_wallet_recent as (

    select
        recent_days.wallet                                         as wallet,
        recent_days.category                                       as category,
        -- sqlfluff cannot indent a jinja loop inside a select list (it expects the select's
        -- own indent): LT02 is off for the loop
        -- noqa: disable=LT02
        {%- for name, n in windows %}
        {%- set in_window = '(recent_days.day between recent_days.as_of_day - ' ~ (n - 1)
            ~ ' and recent_days.as_of_day)' %}
        toInt128(sumIf(recent_days.realized_pnl, {{ in_window }})) as pnl_{{ name }},
        toUInt64(sumIf(recent_days.volume, {{ in_window }}))       as volume_{{ name }},
        toUInt64(sumIf(recent_days.n_fills, {{ in_window }}))      as fills_{{ name }},
        toUInt64(countIf({{ in_window }}))                         as rows_{{ name }}
        {{- "," if not loop.last }}
        {%- endfor %}
    from recent_days
    -- noqa: enable=LT02
    -- the rollup adds each wallet's all-categories row (category rolled up) in the same
    -- pass, and one grand-total row (wallet rolled up), dropped here
    group by recent_days.wallet, recent_days.category with rollup
    having wallet != ''

),

recent_totals as (

    -- one row per short window the wallet has a day row in
    select
        per_wallet_recent.wallet                 as wallet,
        -- the rolled-up category ('' = all categories; null if group_by_use_nulls is on)
        coalesce(per_wallet_recent.category, '') as category,
        arrayJoin(arrayFilter(t -> t.6 > 0, [
            {%- for name, n in windows %}
            (
                '{{ name }}', toUInt16({{ n }}), pnl_{{ name }}, volume_{{ name }}, fills_{{ name }},
                rows_{{ name }}
            ){{ "," if not loop.last }}
            {%- endfor %}
        ]))                                      as w
    from per_wallet_recent

),

wallet_category_totals as (

    -- the stored signed contributions added up per (wallet, category); a (wallet, category)
    -- whose markets were all retracted has none left and is on no board
    select
        wallet,
        category,
        toInt128(sum(realized_pnl)) as realized_pnl,
        toUInt64(sum(volume))       as volume,
        toUInt64(sum(n_fills))      as n_fills,
        toUInt64(sum(n_markets))    as n_markets
    from category_sums
    group by wallet, category
    having n_markets > 0

),

per_wallet_all as (

    -- each wallet's all-categories row by ROLLUP (the grand total row dropped)
    select
        wallet,
        category,
        toInt128(sum(realized_pnl)) as realized_pnl,
        toUInt64(sum(volume))       as volume,
        toUInt64(sum(n_fills))      as n_fills,
        toUInt64(sum(n_markets))    as n_markets
    from wallet_category_totals
    group by wallet, category with rollup
    having wallet != ''

),

totals as (

    select
        wallet,
        category,
        w
    from recent_totals
    union all
    select
        wallet,
        coalesce(category, '')                                         as category,
        ('all', toUInt16(0), realized_pnl, volume, n_fills, n_markets) as w
    from per_wallet_all

),

ranked as (

    select
        w.1                                                  as time_window,
        w.2                                                  as window_days,
        -- a scalar subquery is Nullable: the bounds exist whenever a wallet is ranked
        assumeNotNull((select bounds.as_of_day from bounds)) as as_of_day,
        if(
            window_days = 0, assumeNotNull((select bounds.first_day from bounds)),
            as_of_day - window_days + 1
        )                                                    as window_start,
        category,
        wallet,
        w.3                                                  as realized_pnl,
        w.4                                                  as volume,
        w.5                                                  as n_fills,
        toUInt32(row_number() over (
            partition by time_window, category order by realized_pnl desc, wallet asc
        ))                                                   as rank_pnl,
        toUInt32(row_number() over (
            partition by time_window, category order by volume desc, wallet asc
        ))                                                   as rank_volume
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
        {{ to_usd('realized_pnl') }} as realized_pnl_usd,
        volume,
        {{ to_usd('volume') }}       as volume_usd,
        n_fills,
        rank_pnl,
        rank_volume
    from ranked
    where
        rank_pnl <= {{ var('leaderboard_depth', 1000) }}
        or rank_volume <= {{ var('leaderboard_depth', 1000) }}

)

select * from final
