"""The same marts the way an analyst would write them: pandas and one Python loop per key.

    python -m bench.pandas_loop            # on the configured warehouse (CASCADIAN_HOME ...)

Reads the raw fills into pandas with one query, credits each event to its maker, sorts by
(wallet, token, timestamp, id), then walks each (wallet, token) run of rows in a plain
Python loop applying docs/pnl.md's rules with Python integers (exact, no overflow), and
finishes the resolution and category numbers with pandas. Prints the seconds, the peak
memory and checksums that `bench.yardstick.checksums` computes on the marts.

Memory hygiene an analyst would apply to tens of millions of rows, none of which changes
the computation: only the needed columns, read block by block into pandas' pyarrow-backed
strings; wallet and token as categoricals; frames dropped once used (the loop keeps only
Python lists); pyarrow's jemalloc allocator, which returns freed memory to the system.

It is the baseline of issue 8's "≥ 4x faster than the pandas loop, with less memory".
"""

from __future__ import annotations

import json
import os
import resource
import time

import numpy as np
import pandas as pd
import pyarrow as pa

UNIT = 10**6
UNCATEGORIZED = "Uncategorized"
LEADERBOARD_DEPTH = 1000  # the dbt var leaderboard_depth's default


def _tdiv(a: int, b: int) -> int:
    """Division truncating toward zero, like the subgraph's BigInt."""
    q = abs(a) // b
    return q if a >= 0 else -q


FILLS_SQL = (
    "SELECT id, timestamp, maker, maker_asset_id, taker_asset_id, "
    "maker_amount_filled, taker_amount_filled FROM raw.order_filled"
)


def read_fills(client) -> pd.DataFrame:
    """The raw fills, only the columns the marts need: one query, read block by block and
    concatenated (pandas keeps strings in pyarrow arrays, so that does not copy them). The
    whole result is never held a second time, as one buffer or as Python strings."""
    with client.query_df_stream(FILLS_SQL) as stream:
        blocks = list(stream)
    return pd.concat(blocks, ignore_index=True) if blocks else client.query_df(FILLS_SQL)


def fold_positions(fills: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One row per (wallet, token): the average-cost state after the wallet's last fill, and
    one row per (position, UTC day with fills): that day's trading PnL, volume and fills."""
    is_buy = (fills["maker_asset_id"] == "0").to_numpy()
    # The long hex keys as categoricals (one string per distinct wallet / token, an integer
    # code per row); rebinding `fills` frees the raw frame.
    fills = pd.DataFrame(
        {
            "wallet": fills["maker"].str.lower().astype("category"),
            "token_id": fills["taker_asset_id"].where(is_buy, fills["maker_asset_id"]).astype("category"),
            "timestamp": fills["timestamp"],
            "id": fills["id"],
            "is_buy": is_buy,
            "quantity": np.where(is_buy, fills["taker_amount_filled"], fills["maker_amount_filled"]),
            "collateral": np.where(is_buy, fills["maker_amount_filled"], fills["taker_amount_filled"]),
        }
    )
    fills = fills.sort_values(["wallet", "token_id", "timestamp", "id"], ignore_index=True)

    wallet = fills["wallet"].cat.codes.to_numpy()
    token = fills["token_id"].cat.codes.to_numpy()
    n = len(fills)
    change = np.ones(n, dtype=bool)
    if n:
        change[1:] = (wallet[1:] != wallet[:-1]) | (token[1:] != token[:-1])
    starts = np.flatnonzero(change).tolist()
    ends = [*starts[1:], n]
    last = np.asarray(ends, dtype=np.int64) - 1
    wallets = fills["wallet"].iloc[starts].tolist()
    tokens = fills["token_id"].iloc[starts].tolist()
    first_at = fills["timestamp"].iloc[starts].to_numpy()
    last_at = fills["timestamp"].iloc[last].to_numpy()
    last_id = fills["id"].iloc[last].to_numpy()
    buys = fills["is_buy"].tolist()
    qty = fills["quantity"].tolist()  # Python ints: products exceed 2^63
    coll = fills["collateral"].tolist()
    day = _utc_days(fills["timestamp"]).tolist()
    del fills, wallet, token, change  # the loop needs only the lists

    rows = []
    day_key, day_day, day_pnl, day_volume, day_fills = [], [], [], [], []
    for key, (w, t, s, e) in enumerate(zip(wallets, tokens, starts, ends)):
        amount = avg = realized = bought = volume = buy_coll = 0
        today = day[s]
        today_pnl = today_volume = today_fills = 0
        for i in range(s, e):
            if day[i] != today:
                day_key.append(key)
                day_day.append(today)
                day_pnl.append(today_pnl)
                day_volume.append(today_volume)
                day_fills.append(today_fills)
                today, today_pnl, today_volume, today_fills = day[i], 0, 0, 0
            q, c = qty[i], coll[i]
            price = c * UNIT // q if q else 0
            volume += c
            today_volume += c
            today_fills += 1
            if buys[i]:
                buy_coll += c
                if q > 0:
                    avg = (avg * amount + price * q) // (amount + q)
                    amount += q
                    bought += q
            else:
                adj = q if q < amount else amount
                pnl = _tdiv(adj * (price - avg), UNIT)
                realized += pnl
                today_pnl += pnl
                amount -= adj
        day_key.append(key)
        day_day.append(today)
        day_pnl.append(today_pnl)
        day_volume.append(today_volume)
        day_fills.append(today_fills)
        rows.append((w, t, amount, avg, realized, bought, e - s, volume, buy_coll, price))
    positions = pd.DataFrame(
        rows,
        columns=[
            "wallet",
            "token_id",
            "amount",
            "avg_price",
            "trading_pnl",
            "total_bought",
            "n_fills",
            "volume",
            "buy_collateral",
            "last_price",
        ],
    )
    positions["first_fill_at"], positions["last_fill_at"], positions["last_fill_id"] = (
        first_at,
        last_at,
        last_id,
    )
    days = pd.DataFrame(
        {
            "key": np.asarray(day_key, dtype=np.int64),
            "day": np.asarray(day_day, dtype=np.int64),
            # int64 raises OverflowError rather than round: the sums stay exact or fail
            "trading_pnl": np.asarray(day_pnl, dtype=np.int64),
            "volume": np.asarray(day_volume, dtype=np.int64),
            "n_fills": np.asarray(day_fills, dtype=np.int64),
        }
    )
    return positions, days


def _utc_days(timestamps: pd.Series) -> np.ndarray:
    """Days since 1970-01-01 (UTC) of each timestamp."""
    values = timestamps.dt.tz_convert("UTC") if timestamps.dt.tz is not None else timestamps
    return values.to_numpy(dtype="datetime64[ns]").astype("datetime64[D]").astype(np.int64)


def reference(client) -> tuple[dict, dict, dict, dict]:
    """token -> (condition, outcome index); condition -> payout prices; condition -> category;
    condition -> the resolution's resolved_at (None when the map gives none)."""
    markets = client.query_df(
        "SELECT condition_id, token_ids, category, tags, line_number FROM raw.markets ORDER BY line_number"
    )
    tokens: dict[str, tuple[str, int]] = {}
    for cid, toks in zip(markets["condition_id"], markets["token_ids"]):
        for index, tok in enumerate(list(toks)[:2]):
            tokens.setdefault(tok, (cid, index))

    res = client.query_df(
        "SELECT condition_id, resolved_outcome, payout_yes, payout_no, resolved_at, entry_index "
        "FROM raw.resolutions ORDER BY entry_index"
    )
    prices: dict[str, list[int]] = {}
    resolved_at: dict[str, object] = {}
    for cid, outcome, yes, no, at in zip(
        res["condition_id"], res["resolved_outcome"], res["payout_yes"], res["payout_no"], res["resolved_at"]
    ):
        pair = (None if pd.isna(yes) else int(yes), None if pd.isna(no) else int(no))
        outcome = outcome if isinstance(outcome, str) else None
        if (outcome, pair) in (("YES", (1, 0)), ("NO", (0, 1))) and cid not in prices:
            prices[cid] = [n * UNIT // sum(pair) for n in pair]
            resolved_at[cid] = None if pd.isna(at) else at

    rules = client.query_df("SELECT canonical, kind, key, priority FROM raw.category_map")
    by = {
        (k, key): (p, c)
        for c, k, key, p in zip(rules["canonical"], rules["kind"], rules["key"], rules["priority"])
    }
    categories = {}
    for cid, raw, tags in zip(markets["condition_id"], markets["category"], markets["tags"]):
        hit = by.get(("category", (raw or "").strip().lower()))
        if hit is None:
            hits = [by[("tag", t.strip().lower())] for t in tags if ("tag", t.strip().lower()) in by]
            hit = min(hits) if hits else None
        categories.setdefault(cid, hit[1] if hit else UNCATEGORIZED)
    return tokens, prices, categories, resolved_at


def compute(client, marts_db: str = "analytics") -> dict[str, pd.DataFrame]:
    """The four marts: positions, category, daily (per wallet and day) and leaderboard."""
    if "jemalloc" in pa.supported_memory_backends():
        # The read, lower(), where() and the sort each make (and drop) pyarrow string arrays;
        # pyarrow's default allocator (mimalloc) keeps what they free, jemalloc hands it back
        # to the system: about a third less peak memory at 2M rows.
        pa.set_memory_pool(pa.jemalloc_memory_pool())
    positions, days = fold_positions(read_fills(client))
    tokens, prices, categories, resolved_at = reference(client)
    positions = value_positions(positions, tokens, prices, categories, resolved_at)
    category = category_totals(positions)
    # the day each condition resolved, as the pipeline recorded it (the map's resolved_at,
    # else the first night it saw the resolution): state, not something to recompute
    recorded = client.query_df(
        f"SELECT condition_id, resolved_day FROM {marts_db}.int_condition_resolved_days"
    )
    resolved_day = dict(zip(recorded["condition_id"], _utc_days(pd.to_datetime(recorded["resolved_day"]))))
    category_days = wallet_category_days(positions, days, resolved_day)
    daily = _summed(category_days, ["wallet", "day"], DAY_SUMS)
    return {
        "positions": positions,
        "category": category,
        "daily": daily,
        "leaderboard": leaderboard(category, category_days, days["day"]),
    }


def value_positions(
    positions: pd.DataFrame, tokens: dict, prices: dict, categories: dict, resolved_at: dict
) -> pd.DataFrame:
    """Each position's market, resolution PnL, category and mark-to-market value."""
    located = [tokens.get(t) for t in positions["token_id"]]
    positions["condition_id"] = [loc[0] if loc else None for loc in located]
    positions["outcome_index"] = [loc[1] if loc else None for loc in located]
    positions["is_resolved"] = [bool(loc) and loc[0] in prices for loc in located]
    payout = [prices[loc[0]][loc[1]] if r else 0 for loc, r in zip(located, positions["is_resolved"])]
    positions["resolution_pnl"] = [
        _tdiv(a * (pay - p), UNIT) if r else 0
        for a, p, pay, r in zip(positions["amount"], positions["avg_price"], payout, positions["is_resolved"])
    ]
    positions["realized_pnl"] = [t + r for t, r in zip(positions["trading_pnl"], positions["resolution_pnl"])]
    positions["category"] = [
        categories.get(loc[0], UNCATEGORIZED) if loc else UNCATEGORIZED for loc in located
    ]
    positions["market_key"] = positions["condition_id"].where(
        positions["condition_id"].notna(), positions["token_id"]
    )
    # the token's mark: the price of its last fill by (timestamp, id), any wallet
    last = positions.sort_values(["last_fill_at", "last_fill_id"]).drop_duplicates("token_id", keep="last")
    mark = dict(zip(last["token_id"], last["last_price"]))
    positions["mark_price"] = [
        pay if r else mark[t] for t, pay, r in zip(positions["token_id"], payout, positions["is_resolved"])
    ]
    open_amount = [0 if r else a for a, r in zip(positions["amount"], positions["is_resolved"])]
    positions["open_amount"] = open_amount
    positions["unrealized_pnl"] = [
        _tdiv(o * (m - p), UNIT) if o else 0
        for o, m, p in zip(open_amount, positions["mark_price"], positions["avg_price"])
    ]
    positions["current_value"] = [o * m // UNIT for o, m in zip(open_amount, positions["mark_price"])]
    return positions


def category_totals(positions: pd.DataFrame) -> pd.DataFrame:
    """fct_wallet_category_pnl: per wallet and category, its markets' sums and record."""
    per_market = (
        positions.groupby(["wallet", "category", "market_key"], sort=False, observed=True)
        .agg(
            pnl=("realized_pnl", "sum"),
            volume=("volume", "sum"),
            buy_collateral=("buy_collateral", "sum"),
            n_fills=("n_fills", "sum"),
            resolved=("is_resolved", "max"),
        )
        .reset_index()
    )
    per_market["win"] = per_market["resolved"] & (per_market["pnl"] > 0)
    per_market["loss"] = per_market["resolved"] & (per_market["pnl"] < 0)
    category = (
        per_market.groupby(["wallet", "category"], sort=False, observed=True)
        .agg(
            realized_pnl=("pnl", "sum"),
            volume=("volume", "sum"),
            buy_collateral=("buy_collateral", "sum"),
            n_fills=("n_fills", "sum"),
            n_markets=("pnl", "size"),
            n_resolved_markets=("resolved", "sum"),
            wins=("win", "sum"),
            losses=("loss", "sum"),
        )
        .reset_index()
    )
    decided = category["wins"] + category["losses"]
    category["win_rate"] = (category["wins"] / decided).where(decided > 0)
    return category


def wallet_category_days(positions: pd.DataFrame, days: pd.DataFrame, resolved_day: dict) -> pd.DataFrame:
    """Per (wallet, category, day): the positions' trading days, and a row on the resolved day
    of every resolved position (even at zero PnL), as fct_wallet_daily_pnl counts them."""
    trading = days.assign(
        wallet=positions["wallet"].to_numpy()[days["key"]],
        category=positions["category"].to_numpy()[days["key"]],
        resolution_pnl=0,
    ).drop(columns="key")
    resolved = positions[positions["is_resolved"]]
    today = int(np.datetime64(time.strftime("%Y-%m-%d", time.gmtime()), "D").astype(np.int64))
    resolution = pd.DataFrame(
        {
            "wallet": resolved["wallet"].to_numpy(),
            "category": resolved["category"].to_numpy(),
            "day": [resolved_day.get(c, today) for c in resolved["condition_id"]],
            "trading_pnl": 0,
            "resolution_pnl": np.asarray(list(resolved["resolution_pnl"]), dtype=np.int64),
            "volume": 0,
            "n_fills": 0,
        }
    )
    out = pd.concat([trading, resolution], ignore_index=True)
    out["realized_pnl"] = out["trading_pnl"] + out["resolution_pnl"]
    return _summed(out, ["wallet", "category", "day"], DAY_SUMS)


DAY_SUMS = ["realized_pnl", "trading_pnl", "resolution_pnl", "volume", "n_fills"]


def _summed(frame: pd.DataFrame, keys: list[str], columns: list[str]) -> pd.DataFrame:
    """`columns` summed per `keys`, one row per key."""
    return frame.groupby(keys, sort=False, observed=True)[columns].sum().reset_index()


def leaderboard(category: pd.DataFrame, category_days: pd.DataFrame, fill_days: pd.Series) -> pd.DataFrame:
    """fct_leaderboard: 1/7/30-day windows ending on the last day with fills, and all time
    (the category totals); per category and over all ('' ); ranked by PnL and by volume
    (ties by wallet), the top LEADERBOARD_DEPTH by either kept."""
    as_of = int(fill_days.max())
    boards = []
    for name, n in (("1d", 1), ("7d", 7), ("30d", 30)):
        window = category_days[category_days["day"].between(as_of - n + 1, as_of)]
        boards.append(window.assign(time_window=name, window_days=n))
    boards.append(category.assign(time_window="all", window_days=0))
    rows = pd.concat(
        [
            b[["time_window", "window_days", "wallet", "category", "realized_pnl", "volume", "n_fills"]]
            for b in boards
        ],
        ignore_index=True,
    )
    rows["wallet"] = rows["wallet"].astype(str)
    rows["category"] = rows["category"].astype(str)
    keys, sums = ["time_window", "window_days", "wallet"], ["realized_pnl", "volume", "n_fills"]
    totals = pd.concat(
        [_summed(rows, [*keys, "category"], sums), _summed(rows, keys, sums).assign(category="")],
        ignore_index=True,
    )
    board = ["window_days", "category"]
    totals = totals.sort_values([*board, "realized_pnl", "wallet"], ascending=[True, True, False, True])
    totals["rank_pnl"] = totals.groupby(board, sort=False).cumcount() + 1
    totals = totals.sort_values([*board, "volume", "wallet"], ascending=[True, True, False, True])
    totals["rank_volume"] = totals.groupby(board, sort=False).cumcount() + 1
    kept = (totals["rank_pnl"] <= LEADERBOARD_DEPTH) | (totals["rank_volume"] <= LEADERBOARD_DEPTH)
    return totals[kept].reset_index(drop=True)


def checksums(marts: dict[str, pd.DataFrame]) -> dict[str, int]:
    """bench.yardstick.CHECKSUMS of the frames compute() returns, exact (Python integers)."""
    from bench.yardstick import CHECKSUMS

    frames = {
        "positions": marts["positions"],
        "category_pnl": marts["category"],
        "daily_pnl": marts["daily"],
        "leaderboard": marts["leaderboard"],
    }
    return {
        name: len(frames[kind]) if col is None else sum(int(v) for v in frames[kind][col])
        for kind, sums in CHECKSUMS.items()
        for name, col in sums
    }


def main() -> int:
    os.environ["TZ"] = "UTC"
    time.tzset()
    from pipeline import warehouse
    from pipeline.config import load_settings

    started = time.monotonic()
    with warehouse.connect(load_settings()) as client:
        marts = compute(client)
    seconds = time.monotonic() - started
    print(
        json.dumps(
            {
                "seconds": round(seconds, 3),
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
                "checksums": checksums(marts),
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
