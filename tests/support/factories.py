"""Small builders for test inputs: fills in Goldsky's dataset shape and reference files."""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path
from typing import Any

EXCHANGE = "0x4bfb41d5b3570defd03c39a9a4d8de6bd8b8982e"


def hex_id(*parts: Any, length: int = 64) -> str:
    return "0x" + hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:length]


def wallet(n: int) -> str:
    return hex_id("wallet", n, length=40)


def condition(n: int) -> str:
    return hex_id("condition", n)


def token(n: int, outcome: int) -> str:
    return str(int(hashlib.sha256(f"token|{n}|{outcome}".encode()).hexdigest(), 16))[:76]


def fill(
    n: int, ts: int, maker: str, side: str, token_id: str, qty: int, collateral: int, **overrides: Any
) -> dict[str, Any]:
    """One OrderFilled event crediting `maker`, who BUYs or SELLs `qty` of `token_id`."""
    tx, oh = hex_id("tx", n), hex_id("order", n)
    buy = side == "BUY"
    row = {
        "id": f"{tx}_{oh}",
        "timestamp": ts,
        "transaction_hash": tx,
        "order_hash": oh,
        "maker": maker,
        "taker": EXCHANGE,
        "maker_asset_id": "0" if buy else token_id,
        "taker_asset_id": token_id if buy else "0",
        "maker_amount_filled": str(collateral if buy else qty),
        "taker_amount_filled": str(qty if buy else collateral),
        "fee": "0",
        "vid": n,
        "block_number": 1000 + n,
        "chain_id": 137,
        "_gs_op": "c",
    }
    row.update(overrides)
    return row


def write_jsonl(path: Path, rows: list[dict[str, Any]], gz: bool | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(r) + "\n" for r in rows)
    if gz if gz is not None else path.name.endswith(".gz"):
        path.write_bytes(gzip.compress(text.encode(), mtime=0))
    else:
        path.write_text(text)
    return path


def market(n: int, category: str = "Politics", tags: list[str] | None = None) -> dict[str, Any]:
    return {
        "condition_id": condition(n),
        "market_id": str(500000 + n),
        "question": f"Will thing {n} happen?",
        "category": category,
        "tags": tags or [],
        "token_ids": [token(n, 0), token(n, 1)],
        "event_id": None,
        "end_date": "2026-12-31T00:00:00.000Z",
    }


def resolution(n: int, outcome: str | None) -> dict[str, Any]:
    payouts = {"YES": (1, 0), "NO": (0, 1), None: (None, None)}[outcome]
    return {
        "condition_id": condition(n),
        "market_id": str(500000 + n),
        "resolved_outcome": outcome,
        "payout_yes": payouts[0],
        "payout_no": payouts[1],
        "resolved_at": None,
    }


CATEGORIES = {
    "version": 1,
    "last_updated": "2026-11-28T00:00:00.000Z",
    "default": "Uncategorized",
    "categories": [
        {"name": "Politics / Geopolitics", "categories": ["politics"], "tags": ["elections"]},
        {"name": "Crypto / DeFi", "categories": ["crypto"], "tags": ["bitcoin"]},
        {"name": "Sports", "categories": ["sports"], "tags": ["nba"]},
    ],
}


def write_reference(
    data_dir: Path,
    markets: list[dict],
    resolutions: list[dict],
    claimed: int | None = None,
    categories: dict | None = None,
) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    resolved = sum(r["resolved_outcome"] is not None for r in resolutions)
    (data_dir / "expanded_resolution_map.json").write_text(
        json.dumps(
            {
                "total_conditions": len(resolutions),
                "resolved_conditions": resolved if claimed is None else claimed,
                "last_updated": "2026-11-28T00:00:00.000Z",
                "resolutions": resolutions,
            },
            indent=2,
        )
    )
    write_jsonl(data_dir / "markets.jsonl", markets)
    (data_dir / "category_definitions.json").write_text(json.dumps(categories or CATEGORIES, indent=2))
