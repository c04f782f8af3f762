-- One row per strategy with the size and freshness of its watchlist.
with strategies as (

    select * from {{ source('app', 'strategies') }}

),

entries as (

    select
        strategy_id,
        count(*)                                        as entries,
        count(*) filter (where status = 'active')       as active_entries,
        count(*) filter (where alerts)                  as alerts,
        max(added_at)                                   as last_added_at
    from {{ ref('watchlist_enriched') }}
    group by strategy_id

)

select
    strategies.id,
    strategies.name,
    strategies.description,
    strategies.active,
    strategies.category_filter,
    strategies.max_wallet_rank,
    strategies.min_resolved_markets,
    strategies.min_coverage,
    strategies.created_at,
    strategies.updated_at,
    coalesce(entries.entries, 0)                        as entries,
    coalesce(entries.active_entries, 0)                 as active_entries,
    coalesce(entries.alerts, 0)                         as alerts,
    entries.last_added_at
from strategies
left join entries on entries.strategy_id = strategies.id
