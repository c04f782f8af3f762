-- depends_on: {{ ref('int_fills_credited') }}
-- depends_on: {{ ref('int_market_state_log') }}
-- depends_on: {{ ref('int_positions_current') }}
-- depends_on: {{ ref('int_token_conditions') }}
{{
    config(
        materialized = 'incremental',
        incremental_strategy = 'append',
        engine = 'ReplacingMergeTree(row_version, is_deleted)',
        order_by = '(wallet, category)',
        partition_by = 'tuple()'
    )
}}

-- Wallet x category rows, recomputed nightly for the touched wallets only (new fills, or
-- positions in a condition whose category or resolution changed). A (wallet, category)
-- the wallet no longer has is written as a deleted row. Read through
-- fct_wallet_category_pnl, which keeps the newest live row per key.

with

{{ touched_wallets_cte() }}

positions as (

    select * from {{ ref('fct_wallet_positions') }}
    where {{ in_touched_wallets() }}

),

markets as (

    select * from {{ ref('dim_markets') }}

),

per_market as (

    select
        positions.wallet                                               as wallet,
        coalesce(markets.category, '{{ var("uncategorized") }}')       as category,
        coalesce(positions.condition_id, positions.token_id)           as market_key,
        max(positions.is_resolved)                                     as market_resolved,
        sum(positions.realized_pnl)                                    as market_pnl,
        sum(positions.volume)                                          as market_volume,
        sum(positions.buy_collateral)                                  as market_buy_collateral,
        sum(positions.n_fills)                                         as market_fills
    from positions
    left join markets on positions.condition_id = markets.condition_id
    group by wallet, category, market_key

),

computed as (

    select
        wallet,
        category,
        toInt128(sum(market_pnl))                                   as realized_pnl,
        toUInt64(sum(market_volume))                                as volume,
        toUInt64(sum(market_buy_collateral))                        as buy_collateral,
        toUInt64(sum(market_fills))                                 as n_fills,
        toUInt64(count())                                           as n_markets,
        toUInt64(countIf(market_resolved))                          as n_resolved_markets,
        toUInt64(countIf(market_resolved and market_pnl > 0))       as wins,
        toUInt64(countIf(market_resolved and market_pnl < 0))       as losses,
        toUInt8(0)                                                  as is_deleted
    from per_market
    group by wallet, category

),

{% if is_incremental() %}
vanished as (

    select
        prior.wallet as wallet, prior.category as category,
        toInt128(0) as realized_pnl, toUInt64(0) as volume, toUInt64(0) as buy_collateral,
        toUInt64(0) as n_fills, toUInt64(0) as n_markets, toUInt64(0) as n_resolved_markets,
        toUInt64(0) as wins, toUInt64(0) as losses, toUInt8(1) as is_deleted
    from (
        {{ prior_live_rows() }}
    ) as prior
    left anti join computed
        on prior.wallet = computed.wallet and prior.category = computed.category

),
{% endif %}

final as (

    {{ versioned_rows() }}

)

select * from final
