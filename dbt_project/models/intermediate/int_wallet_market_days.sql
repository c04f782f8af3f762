{{
    config(
        materialized = 'incremental',
        incremental_strategy = 'append',
        engine = 'ReplacingMergeTree(row_version, is_deleted)',
        order_by = '(wallet, market_key, day)',
        partition_by = 'toYYYYMM(day)',
        query_settings = {'max_partitions_per_insert_block': 0}
    )
}}

-- Realized PnL per (wallet, market, UTC day): the trading PnL of the pair's tokens on the
-- day of each sell (int_position_days), and the pair's resolution PnL on the day its
-- condition resolved (int_condition_resolved_days). Summed over days it is the pair's
-- realized_pnl in int_wallet_markets, exactly.
--
-- Nightly, only pairs whose int_wallet_markets rows written since this model's watermark
-- (the grain's row_version it last consumed, `markets_version`) changed what the days are
-- made of (see `written`: compared with the grain's prev_* columns) are recomputed, every
-- day of the pair at once (a late fill, a resolution or a correction changes some of its
-- days), and compared with the pair's stored days: only the days that are new or whose
-- sums moved are appended. Days the pair no longer has, and every day of a pair that
-- vanished, are appended as is_deleted = 1. ReplacingMergeTree(row_version, is_deleted) keeps the newest row per
-- (wallet, market_key, day); read it with FINAL. Sorted like the grain, so reading a pair's
-- prior days is a primary-key lookup (in each month's part). Partitioned by month so that
-- the leaderboard's short windows read only the last month or two, whatever the history's
-- length; a row's day fixes its month, so FINAL never merges across partitions. A night
-- writes a part per month holding a changed day: today's, and the months its late fills
-- and vanished days fall in (writing every day of each changed pair, as this model did
-- until 2026-12-07, wrote 730,273 rows over every month at the 10M bench night instead of
-- the changed days only). A correction can still reach any month back to 2020, so the
-- insert's partition limit (100 by default, meant to catch a wrong partition key) is
-- lifted for this model.

{#- the stored-row columns of a part that is not a stored row (a full build has none) -#}
{%- set nothing_stored -%}
toUInt8(0) as is_stored
{%- if is_incremental() -%},
            toUInt64(0) as stored_version,
            (toInt128(0), toInt128(0), toUInt64(0), toUInt64(0), toUInt8(0)) as stored_values
{%- endif -%}
{%- endset %}

with wallet_markets as (

    select * from {{ ref('int_wallet_markets') }}

),

tokens as (

    select * from {{ ref('int_token_conditions') }}

),

resolved_days as (

    select * from {{ ref('int_condition_resolved_days') }}

),

{% if is_incremental() %}

watermark as (

    select max(markets_version) as markets_version from {{ this }}

),

written as (

    -- the grain's rows written since the watermark; `moves_days` when a row can change the
    -- pair's days: a deletion, a new pair, or a change of what the days are made of
    -- (fills, volume, realized PnL, resolved or not). A row for a moved category changes
    -- no day (the grain stores nothing mark-dependent, so a moved mark writes no row).
    select
        *,
        is_deleted = 1
        or prev_is_live = 0
        or is_resolved != prev_is_resolved
        or realized_pnl != prev_realized_pnl
        or volume != prev_volume
        or n_fills != prev_n_fills as moves_days
    from wallet_markets
    where row_version > (select watermark.markets_version from watermark)

),

changed_pairs as {{ computed_once() }} (

    -- the newest row per pair whose rows since the watermark moved a day (any of them:
    -- a missed night's change is not hidden by a later category-only row): live, or a deletion
    select
        wallet,
        market_key,
        argMax(
            (written.condition_id, written.is_resolved, written.resolution_pnl, written.is_deleted),
            written.row_version
        )        as newest,
        newest.1 as condition_id,
        newest.2 as is_resolved,
        newest.3 as resolution_pnl,
        newest.4 as is_deleted
    from written
    group by wallet, market_key
    having max(moves_days)

),

{% else %}

changed_pairs as (

    select
        wallet,
        market_key,
        condition_id,
        is_resolved,
        resolution_pnl,
        is_deleted
    from {{ final_rows(ref('int_wallet_markets')) }}

),

{% endif %}

live_pairs as (

    select * from changed_pairs
    where is_deleted = 0

),

-- read by checkpoints_by_position_key() in pair_token_days, which sqlfluff does not see
pair_tokens as {{ computed_once() }} (  -- noqa: ST03

    -- the (wallet, token) keys of the live pairs: both tokens of a mapped condition, or the
    -- token itself when it is its own market
    select
        live_pairs.wallet as wallet,
        tokens.token_id   as token_id
    from live_pairs
    inner join tokens on live_pairs.condition_id = tokens.condition_id
    union distinct
    select
        wallet,
        market_key as token_id
    from live_pairs
    where condition_id is null

),

pair_token_days as (

    -- the newest checkpoint per (wallet, token, day) of the pairs' tokens (of every token in
    -- a full build). Not an import CTE: the nightly key lookup is a PREWHERE on the stored
    -- position_key, which only a read of the table itself can take (at the 10M bench night
    -- 0.6 s, against 1.2 s with FINAL and the cityHash64 probe of the two strings)
    {% if is_incremental() -%}
    {{ checkpoints_by_position_key(ref('int_position_days'), 'pair_tokens', per_day=true) }}
    {%- else -%}
    select * from {{ final_rows(ref('int_position_days')) }}
    {%- endif %}

),

trading_days as (

    -- one row per (wallet, token, day), in its market: `computed` sums the pair's tokens
    -- per day together with the resolution and stored parts (summing them here first too
    -- was a second aggregation of the 10.8 million days of a 10M bench full build, 0.3 s)
    select
        days.wallet                                  as wallet,
        coalesce(tokens.condition_id, days.token_id) as market_key,
        days.day                                     as day,
        toInt128(days.day_trading_pnl)               as trading_pnl,
        toInt128(0)                                  as resolution_pnl,
        toUInt64(days.day_volume)                    as volume,
        toUInt64(days.day_fills)                     as n_fills
    from pair_token_days as days
    left join tokens on days.token_id = tokens.token_id

),

resolution_days as (

    -- every resolved pair has a row on its condition's resolved day, even when its
    -- resolution PnL is 0 (it had sold out): the day's rows say which markets resolved. A
    -- condition the day table has not recorded (never expected) books on today's date, so
    -- the days always sum to the pair's total.
    select
        live_pairs.wallet                                                    as wallet,
        live_pairs.market_key                                                as market_key,
        coalesce(resolved_days.resolved_day, toDate(now64(3, 'UTC'), 'UTC')) as day,
        toInt128(0)                                                          as trading_pnl,
        toInt128(live_pairs.resolution_pnl)                                  as resolution_pnl,
        toUInt64(0)                                                          as volume,
        toUInt64(0)                                                          as n_fills
    from live_pairs
    left join resolved_days on live_pairs.condition_id = resolved_days.condition_id
    where live_pairs.is_resolved

),

{% if is_incremental() %}

stored_days as (

    -- every stored row (any version, deletions too) of the changed pairs' days, each a part
    -- that adds nothing to the sums and carries the stored values and version: `computed`
    -- takes each day's newest, so a day only stored rows hold is one the pair no longer has
    -- (written as a deletion unless it is one already), and a day whose sums equal its newest
    -- live row is not written again. Newest by argMax there, not FINAL here: FINAL made this
    -- read 1.3 s instead of 0.8 s at 10M. The stored values are read qualified (`stored.`):
    -- unqualified, `trading_pnl` would be this select's own zero alias of that name
    -- (ClickHouse sees a select's aliases everywhere in it)
    select
        stored.wallet      as wallet,
        stored.market_key  as market_key,
        stored.day         as day,
        toInt128(0)        as trading_pnl,
        toInt128(0)        as resolution_pnl,
        toUInt64(0)        as volume,
        toUInt64(0)        as n_fills,
        toUInt8(1)         as is_stored,
        stored.row_version as stored_version,
        (
            stored.trading_pnl, stored.resolution_pnl, stored.volume, stored.n_fills, stored.is_deleted
        )                  as stored_values
    from (
        select
            wallet,
            market_key,
            day,
            trading_pnl,
            resolution_pnl,
            volume,
            n_fills,
            is_deleted,
            row_version
        from {{ this }}
        {{ key_prewhere(
            this, 'wallet, market_key', 'changed_pairs', 'changed_pairs.wallet, changed_pairs.market_key'
        ) }}
        where
            (wallet, market_key) in (
                select
                    changed_pairs.wallet,
                    changed_pairs.market_key
                from changed_pairs
            )
    ) as stored

),

{% endif %}

computed as (

    -- one row per day of tonight's parts and of the pairs' stored rows, in one aggregation
    -- (not an anti-join of the stored days against the computed days, which would compute
    -- the days twice: the engine inlines a CTE at each reference), with the day's newest
    -- stored row: its values and whether it is live (nightly only: a full build stores none)
    select
        wallet,
        market_key,
        day,
        toInt128(sum(parts.trading_pnl) + sum(parts.resolution_pnl))             as realized_pnl,
        toInt128(sum(parts.trading_pnl))                                         as trading_pnl,
        toInt128(sum(parts.resolution_pnl))                                      as resolution_pnl,
        toUInt64(sum(parts.volume))                                              as volume,
        toUInt64(sum(parts.n_fills))                                             as n_fills,
        {% if is_incremental() -%}
        argMaxIf(parts.stored_values, parts.stored_version, parts.is_stored = 1) as newest_stored,
        max(parts.is_stored) = 1 and newest_stored.5 = 0                         as stored_live,
        {% endif -%}
        -- no part tonight: the pair no longer has the day
        toUInt8(min(parts.is_stored))                                            as is_deleted
    from (
        select
            *,
            {{ nothing_stored }}
        from trading_days
        {% if is_incremental() -%}
        -- only the live pairs' days: a token's days belong to the pair of its market now.
        -- A full build reads every position, and the grain has a live pair for each (it is
        -- built from them all), so there the filter would only cost: a set of 3.1 million
        -- pairs probed by 10.8 million days, 2.3 s of 7.3 at the 10M bench
        where (wallet, market_key) in (
            select
                live_pairs.wallet,
                live_pairs.market_key
            from live_pairs
        )
        {%- endif %}
        union all
        select
            *,
            {{ nothing_stored }}
        from resolution_days
        {% if is_incremental() -%}
        union all
        select * from stored_days
        {%- endif %}
    ) as parts
    group by wallet, market_key, day

),

changed_days as (

    -- what is written: the days that are new or whose sums moved, and the deletions of live
    -- days the pair no longer has. A changed pair's other days stay as stored: a night
    -- writes the days its fills, resolutions and corrections changed, in the months they
    -- fall in, not every day of a whale's pair in every month it traded
    select
        wallet,
        market_key,
        day,
        realized_pnl,
        trading_pnl,
        resolution_pnl,
        volume,
        n_fills,
        is_deleted
    from computed
    {% if is_incremental() -%}
    where
        if(
            is_deleted = 1,
            stored_live,
            not stored_live
            or (trading_pnl, resolution_pnl, volume, n_fills)
            != (newest_stored.1, newest_stored.2, newest_stored.3, newest_stored.4)
        )
    {%- endif %}

),

final as (

    select
        *,
        now64(3, 'UTC')                                                                       as updated_at,
        toUInt64(toUnixTimestamp64Milli(updated_at))                                          as row_version,
        toUInt64(assumeNotNull((select max(wallet_markets.row_version) from wallet_markets))) as markets_version
    from changed_days

)

select * from final
