-- The yardstick (issues 8 and 12): the marts a full dbt build writes, computed by hand from
-- raw.order_filled, raw.markets, raw.resolutions and raw.category_map, as fast as we can
-- make them: fct_wallet_positions (positions, marks, valued when read), fct_wallet_category_pnl,
-- fct_wallet_daily_pnl and fct_leaderboard. `python -m bench.run` times it against the dbt
-- build; bench/yardstick.py loads and runs it and checks every mart against it.
--
-- Same semantics as the models (docs/pnl.md): credit the maker of every event; per
-- (wallet, token) fold the fills in (timestamp, id) order in Int128 with truncating
-- division; a resolved condition redeems what is left at numerator * 10^6 / sum. Like the
-- staging model, the raw table is read as ingest left it (ingest stores each id once). The
-- one input that is not raw: the day each condition resolved, which the pipeline records
-- the first night it sees the resolution ({marts_db}.int_condition_resolved_days).
--
-- What makes it fast:
--   * one pass over the fills, grouped by (maker, token); when raw.order_filled is sorted by
--     (maker, token_id, ...) the grouping streams in that order instead of hashing
--     ({token_id} is that column when the table has it, else the expression);
--   * the tuples are sorted per key, not globally; the id only breaks same-second ties;
--     the same fold keeps each day's trading PnL (one number per day so far, not a state
--     per event), so the daily rows need no second pass either;
--   * token -> condition, resolution and category are joined to the ~N/6 positions after
--     the fold, not to the N fills; the marks come from each position's last fill;
--   * the category mart, the daily rows and the leaderboard aggregate what the positions
--     statement wrote.
-- {db} is the database the result tables go to (bench); {depth} the leaderboard's depth.

CREATE TABLE {db}.yardstick_positions
ENGINE = MergeTree ORDER BY (wallet, token_id) AS
WITH
    tokens AS (
        SELECT token_id, condition_id, outcome_index, category
        FROM
        (
            SELECT tok.1 AS token_id, condition_id, toUInt8(tok.2) AS outcome_index, line_number
            FROM raw.markets
            ARRAY JOIN arrayZip([token_ids[1], token_ids[2]], [0, 1]) AS tok
        ) AS m
        LEFT JOIN
        (
            -- the market's canonical category: its raw category matched first, then its
            -- tags, on whole lower-cased values; among matches the bucket listed first wins
            SELECT mk.condition_id AS condition_id,
                   argMin(r.canonical, (mk.kind = 'tag', r.priority)) AS category
            FROM
            (
                SELECT condition_id, kk.1 AS kind, kk.2 AS key
                FROM raw.markets
                ARRAY JOIN arrayConcat([('category', lower(trim(category)))],
                                       arrayMap(t -> ('tag', lower(trim(t))), tags)) AS kk
            ) AS mk
            INNER JOIN raw.category_map AS r ON mk.kind = r.kind AND mk.key = r.key
            GROUP BY mk.condition_id
        ) AS c ON m.condition_id = c.condition_id
        ORDER BY token_id, line_number
        LIMIT 1 BY token_id
    ),
    payouts AS (
        SELECT condition_id, payout_prices, resolved_at
        FROM
        (
            SELECT
                condition_id,
                ifNull((resolved_outcome = 'YES' AND payout_yes = 1 AND payout_no = 0)
                       OR (resolved_outcome = 'NO' AND payout_yes = 0 AND payout_no = 1), false) AS ok,
                [toInt128(ifNull(payout_yes, 0)), toInt128(ifNull(payout_no, 0))]           AS nums,
                if(ok, arrayMap(n -> intDiv(n * 1000000, arraySum(nums)), nums), [])      AS payout_prices,
                resolved_at,
                entry_index
            FROM raw.resolutions
            ORDER BY condition_id, ok DESC, entry_index
            LIMIT 1 BY condition_id
        )
        WHERE ok
    ),
    folded AS (
        -- one sorted event array per key, folded once with a checkpoint at the end of each
        -- UTC day (only day ends are appended, so the array copied per event is one state
        -- per day so far); a day's trading PnL is its end state's minus its start state's
        SELECT
            wallet,
            token_id,
            length(events)                                      AS n_fills,
            arraySum(e -> e.7, events)                          AS volume,
            arraySum(e -> if(e.3, e.7, 0), events)              AS buy_collateral,
            events[1].1                                         AS first_fill_at,
            events[-1].1                                        AS last_fill_at,
            events[-1].2                                        AS last_fill_id,
            events[-1].5                                        AS last_price,
            arrayMap((d, p) -> d != p, arrayMap(e -> e.6, events),
                     arrayPushFront(arrayPopBack(arrayMap(e -> e.6, events)), events[1].6)) AS starts_day,
            arrayFold(
                (acc, e, starts) -> (
                    if(
                        e.3,
                        if(e.4 > 0,
                           (acc.1.1 + e.4, intDiv(acc.1.2 * acc.1.1 + e.5 * e.4, acc.1.1 + e.4), acc.1.3, acc.1.4 + e.4),
                           acc.1),
                        (acc.1.1 - least(e.4, acc.1.1),
                         acc.1.2,
                         acc.1.3 + intDiv(least(e.4, acc.1.1) * (e.5 - acc.1.2), toInt128(1000000)),
                         acc.1.4)),
                    if(starts, arrayPushBack(acc.2, acc.1.3), acc.2)),
                events,
                starts_day,
                ((toInt128(0), toInt128(0), toInt128(0), toInt128(0)), [toInt128(0)])
            )                                                   AS fold,
            fold.1                                              AS state,
            arraySplit((e, starts) -> starts, events, starts_day) AS split,
            -- (day, trading PnL, volume, fills) of each day with fills
            arrayZip(
                arrayMap(d -> d[1].6, split),
                arrayMap((a, b) -> a - b, arrayPushBack(arrayPopFront(fold.2), state.3), fold.2),
                arrayMap(d -> toUInt64(arraySum(e -> e.7, d)), split),
                arrayMap(d -> toUInt64(length(d)), split)
            )                                                   AS days
        FROM
        (
            SELECT
                maker AS wallet,
                token_id,
                arraySort(groupArray((timestamp, id, is_buy, toInt128(quantity),
                                      toInt128(if(quantity > 0, intDiv(toUInt128(collateral) * 1000000, quantity), 0)),
                                      toDate(timestamp, 'UTC'), toUInt128(collateral)))) AS events
            FROM
            (
                SELECT
                    maker, {token_id} AS token_id, timestamp, id,
                    maker_asset_id = '0'                                    AS is_buy,
                    if(is_buy, taker_amount_filled, maker_amount_filled)    AS quantity,
                    if(is_buy, maker_amount_filled, taker_amount_filled)    AS collateral
                FROM raw.order_filled
            )
            GROUP BY maker, token_id
        )
    )
SELECT
    f.wallet                                                            AS wallet,
    f.token_id                                                          AS token_id,
    t.condition_id                                                      AS condition_id,
    t.outcome_index                                                     AS outcome_index,
    toUInt64(f.state.1)                                                 AS amount,
    toUInt64(if(is_resolved, 0, f.state.1))                             AS open_amount,
    toUInt64(f.state.2)                                                 AS avg_price,
    toInt128(f.state.3 + resolution_pnl)                                AS realized_pnl,
    toInt128(f.state.3)                                                 AS trading_pnl,
    toInt128(if(is_resolved,
                ifNull(intDiv(f.state.1 * (p.payout_prices[t.outcome_index + 1] - f.state.2),
                              toInt128(1000000)), 0),
                0))                                                     AS resolution_pnl,
    toUInt64(f.state.4)                                                 AS total_bought,
    f.n_fills                                                           AS n_fills,
    toUInt64(f.volume)                                                  AS volume,
    toUInt64(f.buy_collateral)                                          AS buy_collateral,
    p.condition_id IS NOT NULL                                          AS is_resolved,
    f.first_fill_at                                                     AS first_fill_at,
    f.last_fill_at                                                      AS last_fill_at,
    coalesce(t.category, 'Uncategorized')                               AS category,
    f.days                                                              AS days,
    f.last_fill_id                                                      AS last_fill_id,
    toUInt64(f.last_price)                                              AS last_price,
    toUInt64(if(is_resolved, p.payout_prices[t.outcome_index + 1], 0))  AS payout_price,
    p.resolved_at                                                       AS resolved_at
FROM folded AS f
LEFT JOIN tokens AS t ON f.token_id = t.token_id
LEFT JOIN payouts AS p ON t.condition_id = p.condition_id
SETTINGS join_use_nulls = 1, optimize_aggregation_in_order = 1;

-- int_token_marks: each token's last fill price (any wallet), from each position's last fill
CREATE TABLE {db}.yardstick_marks
ENGINE = MergeTree ORDER BY token_id AS
SELECT
    token_id,
    argMax(last_price, (last_fill_at, last_fill_id))                    AS mark_price,
    max(last_fill_at)                                                   AS mark_at
FROM {db}.yardstick_positions
GROUP BY token_id;

-- fct_wallet_positions: the open positions valued when read, as the mart's view does
CREATE VIEW {db}.yardstick_positions_valued AS
SELECT
    p.*,
    toUInt64(if(p.is_resolved, p.payout_price, ifNull(m.mark_price, 0))) AS mark_price,
    if(p.is_resolved, p.resolved_at, m.mark_at)                         AS mark_at,
    toInt128(if(p.open_amount = 0, 0,
                intDiv(toInt128(p.open_amount) * (toInt128(mark_price) - toInt128(p.avg_price)),
                       toInt128(1000000))))                             AS unrealized_pnl,
    toInt128(p.realized_pnl + unrealized_pnl)                           AS total_pnl,
    toUInt64(intDiv(toInt128(p.open_amount) * mark_price, 1000000))     AS current_value
FROM {db}.yardstick_positions AS p
LEFT JOIN {db}.yardstick_marks AS m ON p.token_id = m.token_id
SETTINGS join_use_nulls = 1;

CREATE TABLE {db}.yardstick_category_pnl
ENGINE = MergeTree ORDER BY (wallet, category) AS
SELECT
    wallet,
    category,
    toInt128(sum(market_pnl))                                           AS realized_pnl,
    toDecimal128(realized_pnl, 6) / 1000000                             AS realized_pnl_usd,
    toUInt64(sum(market_volume))                                        AS volume,
    toDecimal128(volume, 6) / 1000000                                   AS volume_usd,
    toUInt64(sum(market_buy_collateral))                                AS buy_collateral,
    toUInt64(sum(market_fills))                                         AS n_fills,
    toUInt64(count())                                                   AS n_markets,
    toUInt64(countIf(market_resolved))                                  AS n_resolved_markets,
    toUInt64(countIf(market_resolved AND market_pnl > 0))               AS wins,
    toUInt64(countIf(market_resolved AND market_pnl < 0))               AS losses,
    if(wins + losses > 0, wins / (wins + losses), NULL)                 AS win_rate,
    if(buy_collateral > 0, realized_pnl / buy_collateral, NULL)         AS roi
FROM
(
    SELECT
        wallet,
        category,
        coalesce(condition_id, token_id)                                AS market_key,
        max(is_resolved)                                                AS market_resolved,
        sum(realized_pnl)                                               AS market_pnl,
        sum(volume)                                                     AS market_volume,
        sum(buy_collateral)                                             AS market_buy_collateral,
        sum(n_fills)                                                    AS market_fills
    FROM {db}.yardstick_positions
    GROUP BY wallet, category, market_key
)
GROUP BY wallet, category
;

-- The daily rows behind fct_wallet_daily_pnl and the leaderboard's short windows, per
-- (wallet, category, day): each position's days with fills, and a row on the resolved day
-- of each resolved position (even at zero PnL: the day says which markets resolved). The
-- resolved day is the one the pipeline recorded (analytics.int_condition_resolved_days: the
-- map's resolved_at, else the first night it saw the resolution), state no query over the
-- raw tables can recompute.
CREATE TABLE {db}.yardstick_category_days
ENGINE = MergeTree ORDER BY (wallet, category, day) AS
SELECT
    wallet,
    category,
    day,
    toInt128(sum(trading) + sum(resolution))                            AS realized_pnl,
    toInt128(sum(trading))                                              AS trading_pnl,
    toInt128(sum(resolution))                                           AS resolution_pnl,
    toUInt64(sum(day_volume))                                           AS volume,
    toUInt64(sum(day_fills))                                            AS n_fills
FROM
(
    SELECT wallet, category, d.1 AS day, d.2 AS trading, toInt128(0) AS resolution,
           d.3 AS day_volume, d.4 AS day_fills
    FROM {db}.yardstick_positions
    ARRAY JOIN days AS d
    UNION ALL
    SELECT p.wallet, p.category, coalesce(r.resolved_day, toDate(now64(3, 'UTC'), 'UTC')),
           toInt128(0), p.resolution_pnl, toUInt64(0), toUInt64(0)
    FROM {db}.yardstick_positions AS p
    LEFT JOIN {marts_db}.int_condition_resolved_days AS r ON p.condition_id = r.condition_id
    WHERE p.is_resolved
)
GROUP BY wallet, category, day
SETTINGS join_use_nulls = 1;

CREATE TABLE {db}.yardstick_daily_pnl
ENGINE = MergeTree ORDER BY (wallet, day) AS
SELECT
    wallet,
    day,
    toInt128(sum(realized_pnl))                                         AS realized_pnl,
    toDecimal128(realized_pnl, 6) / 1000000                             AS realized_pnl_usd,
    toInt128(sum(trading_pnl))                                          AS trading_pnl,
    toInt128(sum(resolution_pnl))                                       AS resolution_pnl,
    toUInt64(sum(volume))                                               AS volume,
    toDecimal128(volume, 6) / 1000000                                   AS volume_usd,
    toUInt64(sum(n_fills))                                              AS n_fills
FROM {db}.yardstick_category_days
GROUP BY wallet, day;

-- fct_leaderboard: the 1/7/30-day windows end on the last day with fills; 'all' is the
-- category mart; ranks by row_number (ties by wallet); the top {depth} by either rank.
CREATE TABLE {db}.yardstick_leaderboard
ENGINE = MergeTree ORDER BY (time_window, category, rank_pnl) AS
WITH
    (SELECT toDate(max(timestamp), 'UTC') FROM raw.order_filled) AS last_day,
    (SELECT toDate(min(timestamp), 'UTC') FROM raw.order_filled) AS first_day
SELECT
    time_window,
    window_days,
    last_day                                                            AS as_of_day,
    if(window_days = 0, first_day, last_day - window_days + 1)          AS window_start,
    category,
    wallet,
    realized_pnl,
    toDecimal128(realized_pnl, 6) / 1000000                             AS realized_pnl_usd,
    volume,
    toDecimal128(volume, 6) / 1000000                                   AS volume_usd,
    n_fills,
    toUInt32(row_number() OVER (PARTITION BY window_days, category
                                ORDER BY realized_pnl DESC, wallet ASC)) AS rank_pnl,
    toUInt32(row_number() OVER (PARTITION BY window_days, category
                                ORDER BY volume DESC, wallet ASC))       AS rank_volume
FROM
(
    SELECT
        time_window,
        window_days,
        wallet,
        category,
        toInt128(sum(pnl))                                              AS realized_pnl,
        toUInt64(sum(vol))                                              AS volume,
        toUInt64(sum(fills))                                            AS n_fills
    FROM
    (
        SELECT w.1 AS time_window, w.2 AS window_days, wallet, category,
               realized_pnl AS pnl, volume AS vol, n_fills AS fills
        FROM {db}.yardstick_category_days
        ARRAY JOIN arrayFilter(x -> day >= last_day - x.2 + 1,
                               [('1d', toUInt16(1)), ('7d', toUInt16(7)), ('30d', toUInt16(30))]) AS w
        WHERE day BETWEEN last_day - 29 AND last_day
        UNION ALL
        SELECT 'all', toUInt16(0), wallet, category, realized_pnl, volume, n_fills
        FROM {db}.yardstick_category_pnl
    )
    GROUP BY GROUPING SETS ((time_window, window_days, wallet, category), (time_window, window_days, wallet))
)
QUALIFY rank_pnl <= {depth} OR rank_volume <= {depth}
