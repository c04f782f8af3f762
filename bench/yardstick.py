"""Load and run bench/yardstick.sql, and compare its results with the dbt marts.

from bench import yardstick
seconds = yardstick.run(client)          # builds bench.yardstick_positions / _category_pnl
diff = yardstick.compare(client)         # {"positions": {...}, "category_pnl": {...}}
"""

from __future__ import annotations

import re
import time
from pathlib import Path

from clickhouse_connect.driver.client import Client

SQL_PATH = Path(__file__).with_name("yardstick.sql")
DB = "bench"
TABLES = {"positions": "yardstick_positions", "category_pnl": "yardstick_category_pnl"}
MARTS = {"positions": "fct_wallet_positions", "category_pnl": "fct_wallet_category_pnl"}
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


def statements(client: Client | None = None, db: str = DB, token_id: str | None = None) -> list[str]:
    """The yardstick's statements, comments removed, placeholders filled."""
    text = re.sub(r"--[^\n]*", "", SQL_PATH.read_text())
    if token_id is None:
        token_id = token_expression(client) if client is not None else TOKEN_EXPR
    text = text.replace("{db}", db).replace("{token_id}", token_id)
    return [s.strip() for s in text.split(";") if s.strip()]


def run(client: Client, db: str = DB) -> list[float]:
    """Drop and rebuild the two yardstick tables; returns each statement's seconds."""
    client.command(f"CREATE DATABASE IF NOT EXISTS {db}")
    for table in TABLES.values():
        client.command(f"DROP TABLE IF EXISTS {db}.{table}")
    seconds = []
    for sql in statements(client, db):
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


def checksums(client: Client, positions: str, category_pnl: str) -> dict[str, int]:
    """A few exact sums that the pandas loop reproduces (a cheap cross-check at any size)."""
    p = client.query(
        f"SELECT count(), sum(toInt256(realized_pnl)), sum(toInt256(trading_pnl)), "
        f"sum(toUInt256(amount)), sum(toUInt256(avg_price)), sum(toUInt256(total_bought)), "
        f"sum(toUInt256(volume)), countIf(is_resolved) FROM {positions}"
    ).result_rows[0]
    c = client.query(
        f"SELECT count(), sum(toInt256(realized_pnl)), sum(n_markets), sum(n_resolved_markets), "
        f"sum(wins), sum(losses), sum(toUInt256(buy_collateral)) FROM {category_pnl}"
    ).result_rows[0]
    keys_p = (
        "positions",
        "realized_pnl",
        "trading_pnl",
        "amount",
        "avg_price",
        "total_bought",
        "volume",
        "resolved_positions",
    )
    keys_c = (
        "category_rows",
        "category_realized_pnl",
        "n_markets",
        "n_resolved_markets",
        "wins",
        "losses",
        "buy_collateral",
    )
    return {**{k: int(v) for k, v in zip(keys_p, p)}, **{k: int(v) for k, v in zip(keys_c, c)}}
