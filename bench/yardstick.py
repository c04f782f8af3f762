"""Load and run bench/yardstick.sql, and compare its results with the dbt marts.

from bench import yardstick
seconds = yardstick.run(client)          # builds the bench.yardstick_* tables
diff = yardstick.compare(client)         # {"positions": {...}, "category_pnl": {...}, ...}
"""

from __future__ import annotations

import re
import time
from pathlib import Path

from clickhouse_connect.driver.client import Client

SQL_PATH = Path(__file__).with_name("yardstick.sql")
DB = "bench"
# What the yardstick's results are compared with: each mart and the table (or view) that
# computes it by hand. The other tables are the yardstick's own intermediate results.
TABLES = {
    "positions": "yardstick_positions_valued",
    "category_pnl": "yardstick_category_pnl",
    "daily_pnl": "yardstick_daily_pnl",
    "leaderboard": "yardstick_leaderboard",
}
MARTS = {
    "positions": "fct_wallet_positions",
    "category_pnl": "fct_wallet_category_pnl",
    "daily_pnl": "fct_wallet_daily_pnl",
    "leaderboard": "fct_leaderboard",
}
RESULTS = [
    "yardstick_positions_valued",
    "yardstick_marks",
    "yardstick_positions",
    "yardstick_category_pnl",
    "yardstick_category_days",
    "yardstick_daily_pnl",
    "yardstick_leaderboard",
]
LEADERBOARD_DEPTH = 1000  # the dbt var leaderboard_depth's default
TOKEN_EXPR = "if(maker_asset_id = '0', taker_asset_id, maker_asset_id)"

# The marts' documented columns (docs/data-contract.md); compared where both sides have them.
COLUMNS = {
    "positions": [
        "wallet",
        "token_id",
        "condition_id",
        "outcome_index",
        "amount",
        "open_amount",
        "avg_price",
        "realized_pnl",
        "trading_pnl",
        "resolution_pnl",
        "total_bought",
        "n_fills",
        "volume",
        "buy_collateral",
        "is_resolved",
        "first_fill_at",
        "last_fill_at",
        "mark_price",
        "mark_at",
        "unrealized_pnl",
        "total_pnl",
        "current_value",
    ],
    "category_pnl": [
        "wallet",
        "category",
        "realized_pnl",
        "realized_pnl_usd",
        "volume",
        "volume_usd",
        "buy_collateral",
        "n_fills",
        "n_markets",
        "n_resolved_markets",
        "wins",
        "losses",
        "win_rate",
        "roi",
    ],
    "daily_pnl": [
        "wallet",
        "day",
        "realized_pnl",
        "realized_pnl_usd",
        "trading_pnl",
        "resolution_pnl",
        "volume",
        "volume_usd",
        "n_fills",
    ],
    "leaderboard": [
        "time_window",
        "window_days",
        "as_of_day",
        "window_start",
        "category",
        "wallet",
        "realized_pnl",
        "realized_pnl_usd",
        "volume",
        "volume_usd",
        "n_fills",
        "rank_pnl",
        "rank_volume",
    ],
}


def _columns(client: Client, database: str, table: str) -> list[str]:
    return [
        r[0]
        for r in client.query(
            "SELECT name FROM system.columns WHERE database = {d:String} AND table = {t:String} "
            "ORDER BY position",
            parameters={"d": database, "t": table},
        ).result_rows
    ]


def token_expression(client: Client) -> str:
    """The raw table's `token_id` column when it has one (its sort key can then stream the
    grouping), else the same value as an expression."""
    return "token_id" if "token_id" in _columns(client, "raw", "order_filled") else TOKEN_EXPR


def statements(
    client: Client | None = None, db: str = DB, token_id: str | None = None, marts_db: str = "analytics"
) -> list[str]:
    """The yardstick's statements, comments removed, placeholders filled."""
    text = re.sub(r"--[^\n]*", "", SQL_PATH.read_text())
    if token_id is None:
        token_id = token_expression(client) if client is not None else TOKEN_EXPR
    for key, value in {
        "db": db,
        "token_id": token_id,
        "marts_db": marts_db,
        "depth": str(LEADERBOARD_DEPTH),
    }.items():
        text = text.replace("{" + key + "}", value)
    return [s.strip() for s in text.split(";") if s.strip()]


def statement_names() -> list[str]:
    """The table or view each statement creates, in order (the names of run()'s seconds)."""
    return [re.search(r"CREATE (?:TABLE|VIEW) \w+\.(\w+)", sql)[1] for sql in statements(token_id="")]


def run(client: Client, db: str = DB, marts_db: str = "analytics") -> list[float]:
    """Drop and rebuild the yardstick's tables; returns each statement's seconds. It reads the
    raw tables, and from `marts_db` only the resolved days the pipeline recorded."""
    client.command(f"CREATE DATABASE IF NOT EXISTS {db}")
    for table in RESULTS:
        client.command(f"DROP TABLE IF EXISTS {db}.{table}")
    seconds = []
    for sql in statements(client, db, marts_db=marts_db):
        started = time.monotonic()
        client.command(sql)
        seconds.append(time.monotonic() - started)
    return seconds


def drop(client: Client, db: str = DB) -> None:
    client.command(f"DROP DATABASE IF EXISTS {db}")


def compare(client: Client, db: str = DB, marts_db: str = "analytics") -> dict[str, dict]:
    """Rows of each yardstick table against its mart: counts, and rows found on one side only
    (EXCEPT both ways over the columns both have). Equal means both `only_*` are 0 and the
    counts match."""
    out = {}
    for kind, table in TABLES.items():
        mart = MARTS[kind]
        have = set(_columns(client, marts_db, mart)) & set(_columns(client, db, table))
        cols = ", ".join(c for c in COLUMNS[kind] if c in have)
        a, b = f"{db}.{table}", f"{marts_db}.{mart}"
        row = client.query(
            f"SELECT (SELECT count() FROM {a}), (SELECT count() FROM {b}), "
            f"(SELECT count() FROM (SELECT {cols} FROM {a} EXCEPT SELECT {cols} FROM {b})), "
            f"(SELECT count() FROM (SELECT {cols} FROM {b} EXCEPT SELECT {cols} FROM {a}))"
        ).result_rows[0]
        out[kind] = {
            "yardstick_rows": int(row[0]),
            "mart_rows": int(row[1]),
            "only_yardstick": int(row[2]),
            "only_mart": int(row[3]),
            "columns": cols.split(", "),
            "equal": row[0] == row[1] and row[2] == 0 and row[3] == 0,
        }
    return out


# The exact sums both the marts and the pandas loop are checked by (a cheap cross-check at
# any size): per mart kind, (checksum, column); no column = the row count. Booleans sum as
# counts, dates as days since 1970-01-01.
CHECKSUMS: dict[str, list[tuple[str, str | None]]] = {
    "positions": [
        ("positions", None),
        ("realized_pnl", "realized_pnl"),
        ("trading_pnl", "trading_pnl"),
        ("amount", "amount"),
        ("avg_price", "avg_price"),
        ("total_bought", "total_bought"),
        ("volume", "volume"),
        ("resolved_positions", "is_resolved"),
        ("unrealized_pnl", "unrealized_pnl"),
        ("current_value", "current_value"),
        ("mark_price", "mark_price"),
    ],
    "category_pnl": [
        ("category_rows", None),
        ("category_realized_pnl", "realized_pnl"),
        ("n_markets", "n_markets"),
        ("n_resolved_markets", "n_resolved_markets"),
        ("wins", "wins"),
        ("losses", "losses"),
        ("buy_collateral", "buy_collateral"),
    ],
    "daily_pnl": [
        ("daily_rows", None),
        ("daily_realized_pnl", "realized_pnl"),
        ("daily_resolution_pnl", "resolution_pnl"),
        ("daily_volume", "volume"),
        ("daily_fills", "n_fills"),
        ("daily_days", "day"),
    ],
    "leaderboard": [
        ("board_rows", None),
        ("board_realized_pnl", "realized_pnl"),
        ("board_volume", "volume"),
        ("board_rank_pnl", "rank_pnl"),
        ("board_rank_volume", "rank_volume"),
    ],
}


def checksums(client: Client, tables: dict[str, str] | None = None) -> dict[str, int]:
    """CHECKSUMS of each mart. `tables` maps a kind of MARTS to the table to sum instead."""
    t = {kind: f"analytics.{mart}" for kind, mart in MARTS.items()} | (tables or {})
    out: dict[str, int] = {}
    for kind, sums in CHECKSUMS.items():
        sql = ", ".join("count()" if col is None else f"sum(toInt256({col}))" for _, col in sums)
        row = client.query(f"SELECT {sql} FROM {t[kind]}").result_rows[0]
        out |= {name: int(v) for (name, _), v in zip(sums, row)}
    return out
