"""An independent, plain-Python statement of the marts' rules (docs/pnl.md, issues 12 and 13),
used to check the dbt models exactly. It reads the same input files the pipeline reads and
shares no code with it (not even the payout rule of ingest/reference_contract.py): if the SQL
and this disagree, one of them is wrong.

What it states:
- positions: average cost per (wallet, token), a resolved condition redeems what is left at
  its payout price (YES 1,0; NO 0,1; 50-50 1,1 -> 500000 each; anything else unresolved);
- marks: a token's price is that of its last fill by (timestamp, id), any wallet's; the
  payout price once resolved; unrealized PnL, current value and total PnL per position;
- the wallet x market (condition) grain, the category mart and the resolution outcomes;
- daily PnL (a sell on its fill's UTC day, a resolution on the condition's resolved day) and
  the leaderboard over 1, 7, 30 days and all time.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

UNIT = 10**6

# The map's resolved outcomes and their payout numerators (yes, no), restated here on purpose.
PAYOUTS = {"YES": (1, 0), "NO": (0, 1), "50-50": (1, 1)}
UNCATEGORIZED = "Uncategorized"
WINDOWS = {"1d": 1, "7d": 7, "30d": 30, "all": 0}


def tdiv(a: int, b: int) -> int:
    """Integer division truncating toward zero, as the subgraph's BigInt does."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def utc_day(timestamp: int) -> dt.date:
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).date()


@dataclass
class Position:
    amount: int = 0
    avg_price: int = 0
    realized: int = 0  # trading + resolution
    trading: int = 0
    bought: int = 0
    n_fills: int = 0
    volume: int = 0
    buy_collateral: int = 0
    resolution_pnl: int = 0
    resolved: bool = False
    condition_id: str | None = None
    outcome_index: int | None = None
    first_fill_at: int = 0
    last_fill_at: int = 0
    # marked to market
    mark_price: int = 0
    unrealized: int = 0
    current_value: int = 0
    total: int = 0
    # per UTC day of its fills: [trading pnl, volume, fills]
    days: dict = field(default_factory=lambda: defaultdict(lambda: [0, 0, 0]))
    events: list = field(default_factory=list)

    @property
    def open_amount(self) -> int:
        return 0 if self.resolved else self.amount


def read_fills(directory: Path) -> dict[str, dict]:
    fills: dict[str, dict] = {}
    for path in sorted(Path(directory).glob("*.jsonl*")):
        opener = gzip.open if path.name.endswith(".gz") else open
        with opener(path, "rt") as fh:
            for line in fh:
                if line.strip():
                    row = json.loads(line)
                    fills[row["id"]] = row
    return fills


def _credited(f: dict) -> tuple[str, str, bool, int, int]:
    """(wallet, token, is_buy, quantity, collateral) from the maker's side of one event."""
    buy = f["maker_asset_id"] == "0"
    tok = f["taker_asset_id"] if buy else f["maker_asset_id"]
    qty = int(f["taker_amount_filled"] if buy else f["maker_amount_filled"])
    coll = int(f["maker_amount_filled"] if buy else f["taker_amount_filled"])
    return f["maker"].lower(), tok, buy, qty, coll


def _price(coll: int, qty: int) -> int:
    return coll * UNIT // qty if qty else 0


def token_map(markets: list[dict]) -> dict[str, tuple[str, int]]:
    out: dict[str, tuple[str, int]] = {}
    for m in markets:
        for index, tok in enumerate(m["token_ids"]):
            out.setdefault(tok, (m["condition_id"], index))
    return out


def resolved_outcomes(resolution_map: dict) -> dict[str, str]:
    """condition -> YES | NO | 50-50, for the entries whose outcome comes with its payouts."""
    out = {}
    for e in resolution_map["resolutions"]:
        outcome = e.get("resolved_outcome")
        if outcome in PAYOUTS and (e.get("payout_yes"), e.get("payout_no")) == PAYOUTS[outcome]:
            out[e["condition_id"]] = outcome
    return out


def payout_prices(resolution_map: dict) -> dict[str, list[int]]:
    """condition -> [yes price, no price] in 10^6 units: numerator * 10^6 // sum."""
    return {
        cid: [n * UNIT // sum(PAYOUTS[o]) for n in PAYOUTS[o]]
        for cid, o in resolved_outcomes(resolution_map).items()
    }


def resolved_days(resolution_map: dict, first_seen: Mapping[str, dt.date] | dt.date) -> dict[str, dt.date]:
    """The day a resolved condition's resolution PnL is booked: the map's `resolved_at` day,
    else the day the pipeline first saw it resolved (`first_seen`, per condition or one day)."""
    out = {}
    for e in resolution_map["resolutions"]:
        if e["condition_id"] not in resolved_outcomes({"resolutions": [e]}):
            continue
        at = e.get("resolved_at")
        if at:
            moment = dt.datetime.fromisoformat(at.replace("Z", "+00:00"))
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=dt.UTC)
            out[e["condition_id"]] = moment.astimezone(dt.UTC).date()
        elif isinstance(first_seen, dt.date):
            out[e["condition_id"]] = first_seen
        else:
            out[e["condition_id"]] = first_seen[e["condition_id"]]
    return out


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
        out[m["condition_id"]] = min(hits)[1] if hits else UNCATEGORIZED
    return out


def marks(fills: dict[str, dict]) -> dict[str, tuple[int, int]]:
    """token -> (price, timestamp) of its last fill by (timestamp, id), whoever's it was."""
    last: dict[str, tuple[int, str, int]] = {}
    for f in fills.values():
        _, tok, _, qty, coll = _credited(f)
        key = (int(f["timestamp"]), f["id"])
        if tok not in last or key > last[tok][:2]:
            last[tok] = (*key, _price(coll, qty))
    return {tok: (price, ts) for tok, (ts, _, price) in last.items()}


def positions(fills: dict[str, dict], tokens: dict, prices: dict) -> dict[tuple[str, str], Position]:
    """Every (wallet, token) position folded in (timestamp, id) order, resolved and marked."""
    book: dict[tuple[str, str], Position] = defaultdict(Position)
    for f in fills.values():
        wallet, tok, buy, qty, coll = _credited(f)
        book[(wallet, tok)].events.append((int(f["timestamp"]), f["id"], buy, qty, coll))
    token_marks = marks(fills)
    for (_wallet, tok), p in book.items():
        p.events.sort()
        p.first_fill_at, p.last_fill_at = p.events[0][0], p.events[-1][0]
        for ts, _, buy, qty, coll in p.events:
            price = _price(coll, qty)
            day = p.days[utc_day(ts)]
            p.n_fills += 1
            p.volume += coll
            day[1] += coll
            day[2] += 1
            if buy:
                p.buy_collateral += coll
                if qty > 0:
                    p.avg_price = (p.avg_price * p.amount + price * qty) // (p.amount + qty)
                    p.amount += qty
                    p.bought += qty
            else:
                adj = min(qty, p.amount)
                pnl = tdiv(adj * (price - p.avg_price), UNIT)
                p.trading += pnl
                day[0] += pnl
                p.amount -= adj
        p.realized = p.trading
        p.mark_price = token_marks[tok][0]
        cond = tokens.get(tok)
        if cond:
            p.condition_id, p.outcome_index = cond
        if cond and cond[0] in prices:
            p.resolved = True
            p.mark_price = prices[cond[0]][cond[1]]
            p.resolution_pnl = tdiv(p.amount * (p.mark_price - p.avg_price), UNIT)
            p.realized += p.resolution_pnl
        if p.open_amount:
            p.unrealized = tdiv(p.open_amount * (p.mark_price - p.avg_price), UNIT)
        p.current_value = p.open_amount * p.mark_price // UNIT
        p.total = p.realized + p.unrealized
    return book


def market_key(tok: str, tokens: dict) -> str:
    """The condition, or the token itself when no market lists it (its own market)."""
    cond = tokens.get(tok)
    return cond[0] if cond else tok


def wallet_markets(
    book: dict, tokens: dict, categories: dict, outcomes: Mapping[str, str]
) -> dict[tuple[str, str], dict]:
    """One row per (wallet, market_key), as int_wallet_markets holds it (live rows).
    yes_amount / no_amount are the amounts of outcome 0 / 1 (0 for an unlisted token)."""
    out: dict[tuple[str, str], dict] = {}
    for (wallet, tok), p in book.items():
        key = market_key(tok, tokens)
        cond = p.condition_id
        row = out.setdefault(
            (wallet, key),
            {
                "condition_id": cond,
                "category": categories.get(cond, UNCATEGORIZED) if cond else UNCATEGORIZED,
                "is_resolved": False,
                "resolved_outcome": outcomes.get(cond) if cond else None,
                "yes_amount": 0,
                "no_amount": 0,
                "open_amount": 0,
                "trading_pnl": 0,
                "resolution_pnl": 0,
                "realized_pnl": 0,
                "unrealized_pnl": 0,
                "total_pnl": 0,
                "open_value": 0,
                "volume": 0,
                "buy_collateral": 0,
                "n_fills": 0,
                "first_fill_at": p.first_fill_at,
                "last_fill_at": p.last_fill_at,
            },
        )
        row["is_resolved"] |= p.resolved
        if p.outcome_index == 0:
            row["yes_amount"] += p.amount
        elif p.outcome_index == 1:
            row["no_amount"] += p.amount
        row["open_amount"] += p.open_amount
        row["trading_pnl"] += p.trading
        row["resolution_pnl"] += p.resolution_pnl
        row["realized_pnl"] += p.realized
        row["unrealized_pnl"] += p.unrealized
        row["total_pnl"] += p.total
        row["open_value"] += p.current_value
        row["volume"] += p.volume
        row["buy_collateral"] += p.buy_collateral
        row["n_fills"] += p.n_fills
        row["first_fill_at"] = min(row["first_fill_at"], p.first_fill_at)
        row["last_fill_at"] = max(row["last_fill_at"], p.last_fill_at)
    return out


def category_pnl(book: dict, tokens: dict, categories: dict) -> dict[tuple[str, str], dict]:
    """The category mart: sums over the wallet's markets; a market counts once, as resolved
    when it is, a win (loss) when resolved with realized PnL > 0 (< 0)."""
    out: dict[tuple[str, str], dict] = defaultdict(
        lambda: {
            "realized_pnl": 0,
            "volume": 0,
            "n_fills": 0,
            "n_markets": 0,
            "n_resolved_markets": 0,
            "wins": 0,
            "losses": 0,
            "unrealized_pnl": 0,
            "total_pnl": 0,
            "open_value": 0,
        }
    )
    for (wallet, _), m in wallet_markets(book, tokens, categories, {}).items():
        row = out[(wallet, m["category"])]
        for column in ("realized_pnl", "volume", "n_fills", "unrealized_pnl", "total_pnl", "open_value"):
            row[column] += m[column]
        row["n_markets"] += 1
        row["n_resolved_markets"] += m["is_resolved"]
        row["wins"] += m["is_resolved"] and m["realized_pnl"] > 0
        row["losses"] += m["is_resolved"] and m["realized_pnl"] < 0
    return out


def resolution_outcomes(
    markets_rows: dict[tuple[str, str], dict], market_ids: Mapping[str, str]
) -> dict[tuple[str, str], dict]:
    """fct_resolution_outcomes: one row per (wallet, resolved condition). final_side is the
    larger remaining side (FLAT when equal); held_winner is false for a 50-50."""
    out = {}
    for (wallet, key), m in markets_rows.items():
        if not m["is_resolved"]:
            continue
        side = (
            "YES"
            if m["yes_amount"] > m["no_amount"]
            else "NO"
            if m["no_amount"] > m["yes_amount"]
            else "FLAT"
        )
        out[(wallet, key)] = {
            "market_id": market_ids.get(key),
            "category": m["category"],
            "final_side": side,
            "yes_amount": m["yes_amount"],
            "no_amount": m["no_amount"],
            "resolved_outcome": m["resolved_outcome"],
            "won": m["realized_pnl"] > 0,
            "held_winner": side == m["resolved_outcome"],
            "realized_pnl": m["realized_pnl"],
            "n_fills": m["n_fills"],
            "volume": m["volume"],
        }
    return out


def market_days(
    book: dict, tokens: dict, days_resolved: Mapping[str, dt.date]
) -> dict[tuple[str, str, dt.date], dict]:
    """(wallet, market_key, UTC day) -> trading, resolution and realized PnL, volume, fills.

    A sell's PnL lands on its fill's day; a resolved pair's resolution PnL on its condition's
    resolved day (a row there even when that PnL is 0). Checks here that the days add up to
    each pair's realized PnL."""
    out: dict[tuple[str, str, dt.date], dict] = defaultdict(
        lambda: {"trading_pnl": 0, "resolution_pnl": 0, "realized_pnl": 0, "volume": 0, "n_fills": 0}
    )
    realized: dict[tuple[str, str], int] = defaultdict(int)
    for (wallet, tok), p in book.items():
        key = market_key(tok, tokens)
        realized[(wallet, key)] += p.realized
        for day, (pnl, volume, n) in p.days.items():
            row = out[(wallet, key, day)]
            row["trading_pnl"] += pnl
            row["realized_pnl"] += pnl
            row["volume"] += volume
            row["n_fills"] += n
        if p.resolved:
            row = out[(wallet, key, days_resolved[p.condition_id])]
            row["resolution_pnl"] += p.resolution_pnl
            row["realized_pnl"] += p.resolution_pnl
    summed: dict[tuple[str, str], int] = defaultdict(int)
    for (wallet, key, _), row in out.items():
        summed[(wallet, key)] += row["realized_pnl"]
    assert summed == dict(realized), "daily PnL does not add up to realized"
    return dict(out)


def wallet_daily_pnl(days: dict[tuple[str, str, dt.date], dict]) -> dict[tuple[str, dt.date], dict]:
    """fct_wallet_daily_pnl: (wallet, day) -> the day's sums over the wallet's markets."""
    out: dict[tuple[str, dt.date], dict] = defaultdict(
        lambda: {"realized_pnl": 0, "trading_pnl": 0, "resolution_pnl": 0, "volume": 0, "n_fills": 0}
    )
    for (wallet, _, day), row in days.items():
        for column, value in row.items():
            out[(wallet, day)][column] += value
    return dict(out)


def leaderboard(
    days: dict[tuple[str, str, dt.date], dict],
    market_categories: Mapping[str, str],
    as_of_day: dt.date,
    windows: Mapping[str, int] = WINDOWS,
) -> dict[tuple[str, str, str], dict]:
    """(time_window, category, wallet) -> sums over the window and the two ranks.

    A window of n days is [as_of_day - n + 1, as_of_day]; `all` (0) is every day. A wallet
    is on a board when it has a daily row in the window. category '' is all categories, else
    the market's current category (market_categories; unknown keys are Uncategorized). Ranks
    are row numbers by realized PnL (volume) descending, ties by wallet ascending."""
    sums: dict[tuple[str, str, str], dict] = defaultdict(
        lambda: {"realized_pnl": 0, "volume": 0, "n_fills": 0}
    )
    for name, n in windows.items():
        start = as_of_day - dt.timedelta(days=n - 1) if n else None
        for (wallet, key, day), row in days.items():
            if n and not (start <= day <= as_of_day):
                continue
            for category in ("", market_categories.get(key, UNCATEGORIZED)):
                s = sums[(name, category, wallet)]
                s["realized_pnl"] += row["realized_pnl"]
                s["volume"] += row["volume"]
                s["n_fills"] += row["n_fills"]
    boards: dict[tuple[str, str], list[str]] = defaultdict(list)
    for name, category, wallet in sums:
        boards[(name, category)].append(wallet)
    for (name, category), wallets in boards.items():
        by_pnl = sorted(wallets, key=lambda w: (-sums[(name, category, w)]["realized_pnl"], w))
        by_volume = sorted(wallets, key=lambda w: (-sums[(name, category, w)]["volume"], w))
        for rank, w in enumerate(by_pnl, 1):
            sums[(name, category, w)]["rank_pnl"] = rank
        for rank, w in enumerate(by_volume, 1):
            sums[(name, category, w)]["rank_volume"] = rank
    return dict(sums)


def last_fill_day(fills: dict[str, dict]) -> dt.date:
    return utc_day(max(int(f["timestamp"]) for f in fills.values()))


@dataclass
class Reference:
    """Everything the reference states about one set of inputs."""

    book: dict
    categories: dict  # (wallet, category) -> category mart row
    markets: dict  # (wallet, market_key) -> wallet x market row
    outcomes: dict  # (wallet, condition) -> resolution outcome row
    market_days: dict  # (wallet, market_key, day) -> daily row
    daily: dict  # (wallet, day) -> daily row
    leaderboard: dict  # (time_window, category, wallet) -> row
    as_of_day: dt.date
    resolved_days: dict  # condition -> day


def read_inputs(data_dir: Path) -> tuple[list[dict], dict, dict]:
    markets = [
        json.loads(line) for line in (data_dir / "markets.jsonl").read_text().splitlines() if line.strip()
    ]
    resolution_map = json.loads((data_dir / "expanded_resolution_map.json").read_text())
    definitions = json.loads((data_dir / "category_definitions.json").read_text())
    return markets, resolution_map, definitions


def compute(fills_dir: Path, data_dir: Path) -> tuple[dict, dict]:
    """Positions and the category mart."""
    markets, resolution_map, definitions = read_inputs(data_dir)
    tokens = token_map(markets)
    book = positions(read_fills(fills_dir), tokens, payout_prices(resolution_map))
    return book, category_pnl(book, tokens, canonical_categories(markets, definitions))


def compute_all(
    fills_dir: Path,
    data_dir: Path,
    first_seen: Mapping[str, dt.date] | dt.date,
    days_resolved: Mapping[str, dt.date] | None = None,
) -> Reference:
    """Every mart. `first_seen`: when the pipeline first saw a condition resolved that the
    map gives no `resolved_at` for; `days_resolved` overrides the whole condition -> day map
    (a resolved day is recorded once and never moves, so a scenario spanning nights passes
    the days as first recorded)."""
    markets, resolution_map, definitions = read_inputs(data_dir)
    fills = read_fills(fills_dir)
    tokens = token_map(markets)
    outcomes = resolved_outcomes(resolution_map)
    categories = canonical_categories(markets, definitions)
    book = positions(fills, tokens, payout_prices(resolution_map))
    rows = wallet_markets(book, tokens, categories, outcomes)
    resolved = dict(days_resolved) if days_resolved is not None else resolved_days(resolution_map, first_seen)
    days = market_days(book, tokens, resolved)
    as_of = last_fill_day(fills)
    market_ids = {}
    for m in markets:
        market_ids.setdefault(m["condition_id"], m["market_id"])
    return Reference(
        book=book,
        categories=category_pnl(book, tokens, categories),
        markets=rows,
        outcomes=resolution_outcomes(rows, market_ids),
        market_days=days,
        daily=wallet_daily_pnl(days),
        leaderboard=leaderboard(days, {k[1]: m["category"] for k, m in rows.items()}, as_of),
        as_of_day=as_of,
        resolved_days=resolved,
    )
