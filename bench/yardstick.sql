-- The yardstick (issue 8): fct_wallet_positions and fct_wallet_category_pnl computed by hand
-- from raw.order_filled, raw.markets, raw.resolutions and raw.category_map, in two
-- statements, as fast as we can make them. `python -m bench.run` times it against the dbt
-- build; bench/yardstick.py loads and runs it and checks it against the marts.
--
-- Same semantics as the models (docs/pnl.md): credit the maker of every event; per
-- (wallet, token) fold the fills in (timestamp, id) order in Int128 with truncating
-- division; a resolved condition redeems what is left at numerator * 10^6 / sum. Like the
-- staging model, the raw table is read as ingest left it (ingest stores each id once).
--
-- What makes it fast:
--   * one pass over the fills, grouped by (maker, token); when raw.order_filled is sorted by
--     (maker, token_id, ...) the grouping streams in that order instead of hashing
--     ({token_id} is that column when the table has it, else the expression);
--   * the tuples are sorted per key, not globally; the id only breaks same-second ties;
--   * token -> condition, resolution and category are joined to the ~N/6 positions after
--     the fold, not to the N fills;
--   * the category mart aggregates the positions table: no second pass over the fills.
-- {db} is the database the two result tables go to (bench).

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
        SELECT condition_id, payout_prices
        FROM
        (
            SELECT
                condition_id,
                ifNull((resolved_outcome = 'YES' AND payout_yes = 1 AND payout_no = 0)
                       OR (resolved_outcome = 'NO' AND payout_yes = 0 AND payout_no = 1), false) AS ok,
                [toInt128(ifNull(payout_yes, 0)), toInt128(ifNull(payout_no, 0))]           AS nums,
                if(ok, arrayMap(n -> intDiv(n * 1000000, arraySum(nums)), nums), [])      AS payout_prices,
                entry_index
            FROM raw.resolutions
            ORDER BY condition_id, ok DESC, entry_index
            LIMIT 1 BY condition_id
        )
        WHERE ok
    ),
    folded AS (
        SELECT
            maker                                               AS wallet,
            token_id,
            count()                                             AS n_fills,
            sum(toUInt128(collateral))                          AS volume,
            sumIf(toUInt128(collateral), is_buy)                AS buy_collateral,
            min(timestamp)                                      AS first_fill_at,
            max(timestamp)                                      AS last_fill_at,
            arrayFold(
                (acc, e) -> if(
                    e.3,
                    if(e.4 > 0,
                       (acc.1 + e.4, intDiv(acc.2 * acc.1 + e.5 * e.4, acc.1 + e.4), acc.3, acc.4 + e.4),
                       acc),
                    (acc.1 - least(e.4, acc.1),
                     acc.2,
                     acc.3 + intDiv(least(e.4, acc.1) * (e.5 - acc.2), toInt128(1000000)),
                     acc.4)),
                arraySort(groupArray((timestamp, id, is_buy, toInt128(quantity),
                                      toInt128(if(quantity > 0, intDiv(toUInt128(collateral) * 1000000, quantity), 0))))),
                (toInt128(0), toInt128(0), toInt128(0), toInt128(0))
            )                                                   AS state
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
    coalesce(t.category, 'Uncategorized')                               AS category
FROM folded AS f
LEFT JOIN tokens AS t ON f.token_id = t.token_id
LEFT JOIN payouts AS p ON t.condition_id = p.condition_id
SETTINGS join_use_nulls = 1, optimize_aggregation_in_order = 1;

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
