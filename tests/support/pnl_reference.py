"""An independent, plain-Python statement of the marts' rules (docs/pnl.md), used to check
the dbt models exactly. It reads the same input files the pipeline reads and shares no
code with it: if the SQL and this disagree, one of them is wrong."""

from __future__ import annotations

import gzip
import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

UNIT = 10**6


def tdiv(a: int, b: int) -> int:
    """Integer division truncating toward zero, as the subgraph's BigInt does."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


@dataclass
class Position:
    amount: int = 0
    avg_price: int = 0
    realized: int = 0
    bought: int = 0
    n_fills: int = 0
    volume: int = 0
    buy_collateral: int = 0
    resolution_pnl: int = 0
    resolved: bool = False
    events: list = field(default_factory=list)


def read_fills(directory: Path) -> dict[str, dict]:
    fills: dict[str, dict] = {}
    for path in sorted(directory.glob("*.jsonl*")):
        opener = gzip.open if path.name.endswith(".gz") else open
        with opener(path, "rt") as fh:
            for line in fh:
                if line.strip():
                    row = json.loads(line)
                    fills[row["id"]] = row
    return fills


def token_map(markets: list[dict]) -> dict[str, tuple[str, int]]:
    out: dict[str, tuple[str, int]] = {}
    for m in markets:
        for index, tok in enumerate(m["token_ids"]):
            out.setdefault(tok, (m["condition_id"], index))
    return out


def payout_prices(resolution_map: dict) -> dict[str, list[int]]:
    prices: dict[str, list[int]] = {}
    for e in resolution_map["resolutions"]:
        pair = (e.get("payout_yes"), e.get("payout_no"))
        if (e.get("resolved_outcome"), pair) in (("YES", (1, 0)), ("NO", (0, 1))):
            denominator = sum(pair)
            prices[e["condition_id"]] = [n * UNIT // denominator for n in pair]
    return prices


def canonical_categories(markets: list[dict], definitions: dict) -> dict[str, str]:
    by_category, by_tag = {}, {}
    for priority, c in enumerate(definitions["categories"]):
        for key in [c["name"], *c.get("categories", [])]:
            by_category.setdefault(key.strip().lower(), (priority, c["name"]))
        for key in c.get("tags", []):
            by_tag.setdefault(key.strip().lower(), (priority, c["name"]))
    out = {}
    for m in markets:
        raw = (m.get("category") or "").strip().lower()
        if raw in by_category:
            out[m["condition_id"]] = by_category[raw][1]
            continue
        hits = [by_tag[t.strip().lower()] for t in m.get("tags") or [] if t.strip().lower() in by_tag]
        out[m["condition_id"]] = min(hits)[1] if hits else "Uncategorized"
    return out


def positions(fills: dict[str, dict], tokens: dict, prices: dict) -> dict[tuple[str, str], Position]:
    book: dict[tuple[str, str], Position] = defaultdict(Position)
    for f in fills.values():
        buy = f["maker_asset_id"] == "0"
        tok = f["taker_asset_id"] if buy else f["maker_asset_id"]
        qty = int(f["taker_amount_filled"] if buy else f["maker_amount_filled"])
        coll = int(f["maker_amount_filled"] if buy else f["taker_amount_filled"])
        book[(f["maker"].lower(), tok)].events.append((int(f["timestamp"]), f["id"], buy, qty, coll))
    for (_wallet, tok), p in book.items():
        for _, _, buy, qty, coll in sorted(p.events):
            price = coll * UNIT // qty if qty else 0
            p.n_fills += 1
            p.volume += coll
            if buy:
                p.buy_collateral += coll
                if qty > 0:
                    p.avg_price = (p.avg_price * p.amount + price * qty) // (p.amount + qty)
                    p.amount += qty
                    p.bought += qty
            else:
                adj = min(qty, p.amount)
                p.realized += tdiv(adj * (price - p.avg_price), UNIT)
                p.amount -= adj
        cond = tokens.get(tok)
        if cond and cond[0] in prices:
            p.resolved = True
            p.resolution_pnl = tdiv(p.amount * (prices[cond[0]][cond[1]] - p.avg_price), UNIT)
            p.realized += p.resolution_pnl
    return book


def category_pnl(book: dict, tokens: dict, categories: dict) -> dict[tuple[str, str], dict]:
    per_market: dict[tuple[str, str, str], dict] = defaultdict(
        lambda: {"pnl": 0, "volume": 0, "fills": 0, "resolved": False}
    )
    for (wallet, tok), p in book.items():
        cond = tokens.get(tok)
        category = categories.get(cond[0], "Uncategorized") if cond else "Uncategorized"
        m = per_market[(wallet, category, cond[0] if cond else tok)]
        m["pnl"] += p.realized
        m["volume"] += p.volume
        m["fills"] += p.n_fills
        m["resolved"] |= p.resolved
    out: dict[tuple[str, str], dict] = defaultdict(
        lambda: {
            "realized_pnl": 0,
            "volume": 0,
            "n_fills": 0,
            "n_markets": 0,
            "n_resolved_markets": 0,
            "wins": 0,
            "losses": 0,
        }
    )
    for (wallet, category, _), m in per_market.items():
        row = out[(wallet, category)]
        row["realized_pnl"] += m["pnl"]
        row["volume"] += m["volume"]
        row["n_fills"] += m["fills"]
        row["n_markets"] += 1
        row["n_resolved_markets"] += m["resolved"]
        row["wins"] += m["resolved"] and m["pnl"] > 0
        row["losses"] += m["resolved"] and m["pnl"] < 0
    return out


def compute(fills_dir: Path, data_dir: Path) -> tuple[dict, dict]:
    markets = [
        json.loads(line) for line in (data_dir / "markets.jsonl").read_text().splitlines() if line.strip()
    ]
    resolution_map = json.loads((data_dir / "expanded_resolution_map.json").read_text())
    definitions = json.loads((data_dir / "category_definitions.json").read_text())
    tokens = token_map(markets)
    book = positions(read_fills(fills_dir), tokens, payout_prices(resolution_map))
    return book, category_pnl(book, tokens, canonical_categories(markets, definitions))
