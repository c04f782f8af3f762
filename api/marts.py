"""Reads of the ClickHouse marts for the API (blocking: routes call them off the event loop)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from api.errors import Unavailable
from pipeline import names, warehouse
from pipeline.config import Settings

CATEGORY_PNL_KEYS = (
    "category",
    "realized_pnl_usd",
    "volume_usd",
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


def category_pnl(settings: Settings, wallet: str, retry_after: int) -> list[dict[str, Any]]:
    """The wallet's rows of fct_wallet_category_pnl, best first (exact USD as strings)."""
    try:
        with warehouse.connect(settings) as ch:
            if not warehouse.table_exists(ch, names.ANALYTICS, names.FCT_WALLET_CATEGORY_PNL):
                raise Unavailable("the marts are not built yet (run the pipeline)", retry_after)
            result = ch.query(
                "SELECT category, toString(realized_pnl_usd), toString(volume_usd), buy_collateral, "
                "n_fills, n_markets, n_resolved_markets, wins, losses, win_rate, roi "
                f"FROM {names.ANALYTICS}.{names.FCT_WALLET_CATEGORY_PNL} WHERE wallet = {{w:String}} "
                "ORDER BY realized_pnl DESC, category",
                parameters={"w": wallet},
            )
    except warehouse.WarehouseBusy:
        raise Unavailable(
            "the warehouse is busy (the pipeline holds the embedded engine); try again shortly", retry_after
        ) from None
    except warehouse.WarehouseUnavailable as exc:
        raise Unavailable(f"the warehouse is unavailable: {exc}", retry_after) from None
    out = []
    for row in result.result_rows:
        item = dict(zip(CATEGORY_PNL_KEYS, row))
        for k in COUNTS:
            item[k] = int(item[k])
        item["buy_collateral_usd"] = str(Decimal(int(item["buy_collateral_usd"])) / Decimal(10**6))
        for k in ("win_rate", "roi"):
            item[k] = None if item[k] is None else round(float(item[k]), 6)
        out.append(item)
    return out


def total(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The wallet's categories summed (ratios recomputed from the sums)."""
    pnl = sum(Decimal(r["realized_pnl_usd"]) for r in rows)
    volume = sum(Decimal(r["volume_usd"]) for r in rows)
    bought = sum(Decimal(r["buy_collateral_usd"]) for r in rows)
    wins, losses = sum(r["wins"] for r in rows), sum(r["losses"] for r in rows)
    return {
        "category": "All",
        "realized_pnl_usd": str(pnl),
        "volume_usd": str(volume),
        "buy_collateral_usd": str(bought),
        "n_fills": sum(r["n_fills"] for r in rows),
        "n_markets": sum(r["n_markets"] for r in rows),
        "n_resolved_markets": sum(r["n_resolved_markets"] for r in rows),
        "wins": wins,
        "losses": losses,
        "win_rate": round(wins / (wins + losses), 6) if wins + losses else None,
        "roi": round(float(pnl / bought), 6) if bought else None,
    }
