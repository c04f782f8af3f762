"""Reads of the ClickHouse marts for the API (blocking: routes call them off the event loop)."""

from __future__ import annotations

import contextlib
import datetime as dt
import decimal
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from clickhouse_connect.driver.client import Client

from api.errors import Unavailable
from pipeline import names, warehouse
from pipeline.config import Settings

# Exact USD amounts (Decimal(38, 6) in the marts) travel as strings: a float would round them.
# Every one is written by warehouse.decimal_text, read from ClickHouse or summed here alike.
USD_KEYS = ("realized_pnl_usd", "unrealized_pnl_usd", "total_pnl_usd", "open_value_usd", "volume_usd")
CATEGORY_PNL_KEYS = (
    "category",
    *USD_KEYS,
    "buy_collateral_usd",
    "n_fills",
    "n_markets",
    "n_resolved_markets",
    "wins",
    "losses",
    "win_rate",
    "roi",
)
COUNTS = ("n_fills", "n_markets", "n_resolved_markets", "wins", "losses")

# fct_leaderboard's windows and rank columns (the dbt model's `time_window` values).
WINDOWS = ("1d", "7d", "30d", "all")
RANK_COLUMNS = {"pnl": "rank_pnl", "volume": "rank_volume"}
LEADERBOARD_KEYS = ("rank", "wallet", "realized_pnl_usd", "volume_usd", "n_fills")


@contextlib.contextmanager
def _mart(settings: Settings, mart: str, retry_after: int) -> Iterator[Client]:
    """A warehouse client for reading `mart`; every way the warehouse cannot answer (mart not
    built, engine held by another process, engine down) becomes one 503 with Retry-After."""
    try:
        with warehouse.connect(settings) as ch:
            if not warehouse.table_exists(ch, names.ANALYTICS, mart):
                raise Unavailable("the marts are not built yet (run the pipeline)", retry_after)
            yield ch
    except warehouse.WarehouseBusy:
        raise Unavailable(
            f"the warehouse is busy: {warehouse.HELD_BY_ANOTHER_PROCESS}; try again shortly", retry_after
        ) from None
    except warehouse.WarehouseUnavailable as exc:
        raise Unavailable(f"the warehouse is unavailable: {exc}", retry_after) from None


def category_pnl(settings: Settings, wallet: str, retry_after: int) -> list[dict[str, Any]]:
    """The wallet's rows of fct_wallet_category_pnl, best realized first (exact USD as strings):
    realized, unrealized (open positions marked to market), total and open value per category."""
    with _mart(settings, names.FCT_WALLET_CATEGORY_PNL, retry_after) as ch:
        result = ch.query(
            "SELECT category, "
            + ", ".join(f"toString({k})" for k in USD_KEYS)
            + ", buy_collateral, n_fills, n_markets, n_resolved_markets, wins, losses, win_rate, roi "
            f"FROM {names.ANALYTICS}.{names.FCT_WALLET_CATEGORY_PNL} WHERE wallet = {{w:String}} "
            "ORDER BY realized_pnl DESC, category",
            parameters={"w": wallet},
        )
    out = []
    for row in result.result_rows:
        item = dict(zip(CATEGORY_PNL_KEYS, row))
        for k in COUNTS:
            item[k] = int(item[k])
        for k in USD_KEYS:
            item[k] = warehouse.decimal_text(item[k])
        item["buy_collateral_usd"] = warehouse.decimal_text(int(item["buy_collateral_usd"]), scale=6)
        for k in ("win_rate", "roi"):
            item[k] = None if item[k] is None else round(float(item[k]), 6)
        out.append(item)
    return out


def total(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The wallet's categories summed (ratios recomputed from the sums), exactly: Decimal(38, 6)
    amounts have more digits than Python's default 28."""
    with decimal.localcontext(prec=80):
        usd = {k: sum((Decimal(r[k]) for r in rows), Decimal(0)) for k in USD_KEYS}
        bought = sum((Decimal(r["buy_collateral_usd"]) for r in rows), Decimal(0))
    pnl = usd["realized_pnl_usd"]
    wins, losses = sum(r["wins"] for r in rows), sum(r["losses"] for r in rows)
    return {
        "category": "All",
        **{k: warehouse.decimal_text(v) for k, v in usd.items()},
        "buy_collateral_usd": warehouse.decimal_text(bought),
        "n_fills": sum(r["n_fills"] for r in rows),
        "n_markets": sum(r["n_markets"] for r in rows),
        "n_resolved_markets": sum(r["n_resolved_markets"] for r in rows),
        "wins": wins,
        "losses": losses,
        "win_rate": round(wins / (wins + losses), 6) if wins + losses else None,
        "roi": round(float(pnl / bought), 6) if bought else None,
    }


def leaderboard(
    settings: Settings, window: str, category: str, by: str, limit: int, retry_after: int
) -> dict[str, Any]:
    """The top `limit` wallets of fct_leaderboard for one window and category ('' = all
    categories), by realized PnL or by volume, as the model ranked them (its rank columns are
    the one ranking rule; nothing is re-ranked here). An unknown category has no rows: an
    empty list, not an error. The window's days come from any row of that window, so they
    are known even when the category has no rows."""
    rank = RANK_COLUMNS[by]  # a fixed column name, never the client's text
    table = f"{names.ANALYTICS}.{names.FCT_LEADERBOARD}"
    with _mart(settings, names.FCT_LEADERBOARD, retry_after) as ch:
        days = ch.query(
            f"SELECT as_of_day, window_start FROM {table} WHERE time_window = {{w:String}} LIMIT 1",
            parameters={"w": window},
        ).result_rows
        rows = ch.query(
            f"SELECT {rank}, wallet, toString(realized_pnl_usd), toString(volume_usd), n_fills FROM {table} "
            f"WHERE time_window = {{w:String}} AND category = {{c:String}} ORDER BY {rank}, wallet "
            "LIMIT {n:UInt32}",
            parameters={"w": window, "c": category, "n": limit},
        ).result_rows
    as_of_day, window_start = days[0] if days else (None, None)
    return {
        "window": window,
        "category": category,
        "by": by,
        "as_of_day": _day(as_of_day),
        "window_start": _day(window_start),
        "entries": [
            {
                **dict(zip(LEADERBOARD_KEYS, row)),
                "rank": int(row[0]),
                "realized_pnl_usd": warehouse.decimal_text(row[2]),
                "volume_usd": warehouse.decimal_text(row[3]),
                "n_fills": int(row[4]),
            }
            for row in rows
        ],
    }


def _day(value: Any) -> dt.date | None:
    return None if value is None else dt.date.fromisoformat(str(value)[:10])
