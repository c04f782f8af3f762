-- One row per watchlist entry, with what the API shows: the market's question and canonical
-- category (market_dim, copied from the ClickHouse marts), the triggering wallet with its
-- rank and coverage (the entry's metadata), and the `alerts` flag: added at most
-- `alert_window_hours` ago by a wallet ranked <= `alert_max_rank` with coverage
-- >= `alert_min_coverage`. A view, so `alerts` is evaluated when read.
with entries as (

    select * from {{ source('app', 'strategy_watchlists') }}

),

markets as (

    select * from {{ source('app', 'market_dim') }}

),

enriched as (

    select
        entries.id,
        entries.strategy_id,
        entries.market_id,
        coalesce(entries.condition_id, by_market.condition_id)          as condition_id,
        entries.added_at,
        entries.updated_at,
        entries.reason,
        entries.status,
        entries.metadata,
        coalesce(by_condition.question, by_market.question,
                 entries.metadata ->> 'question')                       as question,
        coalesce(by_condition.category, by_market.category,
                 entries.metadata ->> 'category',
                 '{{ var("uncategorized") }}')                          as category,
        coalesce(by_condition.is_resolved, by_market.is_resolved)       as market_resolved,
        entries.metadata ->> 'wallet'                                   as triggering_wallet,
        case when jsonb_typeof(entries.metadata -> 'wallet_rank') = 'number'
             then (entries.metadata ->> 'wallet_rank')::numeric::integer end
                                                                        as wallet_rank,
        case when jsonb_typeof(entries.metadata -> 'wallet_coverage') = 'number'
             then (entries.metadata ->> 'wallet_coverage')::numeric end as wallet_coverage
    from entries
    left join markets as by_condition
        on by_condition.condition_id = entries.condition_id
    -- entries written without a condition id (the platform app may) find it by market id
    left join lateral (
        select * from markets
        where entries.condition_id is null and markets.market_id = entries.market_id
        order by markets.condition_id
        limit 1
    ) as by_market on true

),

final as (

    select
        *,
        coalesce(
            added_at >= {{ var("alerts_now") }} - interval '{{ var("alert_window_hours") }} hours'
            and wallet_rank <= {{ var("alert_max_rank") }}
            and wallet_coverage >= {{ var("alert_min_coverage") }},
            false
        ) as alerts
    from enriched

)

select * from final
