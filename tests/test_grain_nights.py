"""Nights that change what the wallet x market grain depends on, each checked three ways:
the incremental marts == `dbt build --full-refresh` on a copy == the independent reference
(tests/support/pnl_reference.py).

- night 1: days 1-2 without some events held back; condition A resolved YES (dated), F open;
- night 2: day 3, the held-back events arrive late (token T's are all older than its mark),
  A corrected to NO (a later resolved_at that must not move its recorded day), F resolves
  50-50 with no resolved_at (first-seen day), market M1 moves to another category;
- night 3: day 4 and one new fill of T (newer than everything: the mark moves for every
  holder of T), market M2 moves to Uncategorized (a raw category no rule maps).

On a tree without issue 13's models (mark columns, fct_wallet_daily_pnl, fct_leaderboard,
int_condition_resolved_days) the tests reading them fail by design.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import shutil
from dataclasses import dataclass
from typing import Any

import pytest

from ingest import sample_data
from nightly.run import run_nightly
from pipeline import warehouse
from tests.support import pnl_reference
from tests.support.nights import night_clock, read_rows, rebuilt_copy, rows_as_dicts, snapshot, write_rows
from tests.support.settings import make_settings

pytestmark = pytest.mark.slow

ANCHOR = dt.date(2026, 11, 20)
N_DAYS = 4
DAYS = [ANCHOR - dt.timedelta(days=N_DAYS - 1 - i) for i in range(N_DAYS)]
MARTS = [
    "fct_wallet_positions",
    "fct_wallet_category_pnl",
    "fct_resolution_outcomes",
    "fct_wallet_daily_pnl",
    "fct_leaderboard",
]
UNMAPPED_CATEGORY = "no rule maps this"
# both builds are compared with the reference: when they differ, this says which one is wrong
BUILDS = ["incremental", "rebuilt"]


@dataclass
class Night:
    clock: dt.datetime
    status: str
    errors: list
    incremental: dict[str, Any]
    rebuilt: dict[str, Any]
    rebuild_failures: Any
    ref: pnl_reference.Reference
    grain_written: set[tuple[str, str]]  # the (wallet, market_key) pairs the night rewrote


@dataclass
class World:
    nights: list[Night]
    a: str  # condition resolved YES, then corrected to NO
    f: str  # condition resolved 50-50
    m1: str  # market moved to another category
    m1_to: str
    m2: str  # market moved to Uncategorized
    t: str  # token whose late fills are older than its mark; a new fill moves it
    t_price: int  # the new fill's price
    held_back: list[dict]
    settings: Any  # the warehouse after the last night


def _ts(day: dt.date, hour: int) -> int:
    return int(dt.datetime.combine(day, dt.time(hour), dt.UTC).timestamp())


def _iso(day: dt.date, hour: int) -> str:
    return (
        dt.datetime.combine(day, dt.time(hour), dt.UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


def _key(row: dict) -> tuple[int, str]:
    return int(row["timestamp"]), row["id"]


def _pick(fills: list[dict], markets: list[dict], resolution_map: dict, definitions: dict) -> dict:
    """The scenario's actors, chosen from the generated data by rule (deterministically)."""
    tokens = pnl_reference.token_map(markets)
    prices = pnl_reference.payout_prices(resolution_map)
    early = [r for r in fills if pnl_reference.utc_day(int(r["timestamp"])) <= DAYS[1]]
    book = pnl_reference.positions({r["id"]: r for r in early}, tokens, {})
    categories = pnl_reference.canonical_categories(markets, definitions)
    holders: dict[str, set[str]] = {}
    for (wallet, tok), p in book.items():
        if p.amount > 0 and tok in tokens:
            holders.setdefault(tok, set()).add(wallet)
    by_token: dict[str, list[dict]] = {}
    for r in fills:
        tok = r["taker_asset_id"] if r["maker_asset_id"] == "0" else r["maker_asset_id"]
        by_token.setdefault(tok, []).append(r)
    # T: unresolved, traded on days 1-2 only (3+ fills), held open by 2+ wallets
    t = next(
        tok
        for tok in sorted(holders)
        if tokens[tok][0] not in prices
        and len(holders[tok]) >= 2
        and len(by_token[tok]) >= 3
        and all(pnl_reference.utc_day(int(r["timestamp"])) <= DAYS[1] for r in by_token[tok])
    )
    held = sorted({tokens[tok][0] for tok in holders if len(holders[tok]) >= 2} - {tokens[t][0]})
    categorised = [c for c in held if categories.get(c, "Uncategorized") != "Uncategorized"]
    a, f = [c for c in held if c not in categorised[:2]][:2]
    m1, m2 = categorised[:2]
    m1_to = next(c for c in definitions["categories"] if c["name"] != categories[m1] and c.get("categories"))
    return {"t": t, "a": a, "f": f, "m1": m1, "m2": m2, "m1_to": m1_to}


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    root = tmp_path_factory.mktemp("grain_nights")
    settings = make_settings(root, GOLDSKY_SOURCE="dataset")
    source = root / "generated"
    summary = sample_data.generate_sample(source / "fills", source / "data", ANCHOR, days=N_DAYS)
    days = [read_rows(p) for p in summary.fill_files]
    resolution_map = json.loads((source / "data" / "expanded_resolution_map.json").read_text())
    markets = [json.loads(line) for line in (source / "data" / "markets.jsonl").read_text().splitlines()]
    definitions = json.loads((source / "data" / "category_definitions.json").read_text())
    actors = _pick([r for d in days for r in d], markets, resolution_map, definitions)
    t = actors["t"]

    def token_of(r: dict) -> str:
        return r["taker_asset_id"] if r["maker_asset_id"] == "0" else r["maker_asset_id"]

    # late: 15 % of days 1-2, and every fill of T but its last (so all older than its mark)
    rng = random.Random(11)
    t_rows = sorted((r for r in days[0] + days[1] if token_of(r) == t), key=_key)
    held_back = [r for r in days[0] + days[1] if token_of(r) != t and rng.random() < 0.15] + t_rows[:-1]
    held_ids = {r["id"] for r in held_back}
    # the new fill of T on day 4: a later second than any fill, a price no fill of T had
    template = t_rows[-1]
    buyer = sorted({r["maker"] for r in t_rows})[0]
    t_price = 123_457
    qty = 2_000_000
    new_fill = dict(
        template,
        id=template["id"][:-4] + "beef",
        timestamp=_ts(DAYS[3], 23) + 3599,
        maker=buyer,
        maker_asset_id="0",
        taker_asset_id=t,
        maker_amount_filled=str(qty * t_price // 10**6),
        taker_amount_filled=str(qty),
    )
    t_price = int(new_fill["maker_amount_filled"]) * 10**6 // qty

    inbox = settings.goldsky_dataset_dir
    data = settings.data_dir

    def deliver_reference(night: int) -> None:
        data.mkdir(parents=True, exist_ok=True)
        shutil.copy(source / "data" / "category_definitions.json", data)
        entries = []
        for e in resolution_map["resolutions"]:
            if e["condition_id"] == actors["a"]:
                outcome, at = ("YES", _iso(DAYS[1], 12)) if night == 1 else ("NO", _iso(DAYS[2], 12))
                e = dict(
                    e,
                    resolved_outcome=outcome,
                    payout_yes=int(outcome == "YES"),
                    payout_no=int(outcome == "NO"),
                    resolved_at=at,
                )
            elif e["condition_id"] == actors["f"]:
                resolved = night >= 2
                e = dict(
                    e,
                    resolved_outcome="50-50" if resolved else None,
                    payout_yes=1 if resolved else None,
                    payout_no=1 if resolved else None,
                    resolved_at=None,
                )
            entries.append(e)
        doc = dict(
            resolution_map,
            resolutions=entries,
            resolved_conditions=sum(e["resolved_outcome"] is not None for e in entries),
        )
        (data / "expanded_resolution_map.json").write_text(json.dumps(doc))
        moved = []
        for m in markets:
            if m["condition_id"] == actors["m1"] and night >= 2:
                m = dict(m, category=actors["m1_to"]["categories"][0], tags=[])
            elif m["condition_id"] == actors["m2"] and night >= 3:
                m = dict(m, category=UNMAPPED_CATEGORY, tags=[])
            moved.append(m)
        (data / "markets.jsonl").write_text("".join(json.dumps(m) + "\n" for m in moved))

    deliveries = {
        1: {f"day{i}.jsonl.gz": [r for r in days[i] if r["id"] not in held_ids] for i in (0, 1)},
        2: {"day2.jsonl.gz": days[2], "late.jsonl.gz": held_back},
        3: {"day3.jsonl.gz": days[3], "new_t.jsonl.gz": [new_fill]},
    }
    recorded: dict[str, dt.date] = {}  # resolved day per condition, as first recorded
    nights = []
    for night, files in deliveries.items():
        for name, rows in files.items():
            write_rows(inbox / name, rows)
        deliver_reference(night)
        clock = night_clock(DAYS[night])
        status, run = run_nightly(settings, now=clock)
        errors = [(s["name"], s["error"]) for s in run["steps"] if s["error"]]
        incremental = snapshot(settings, MARTS)
        with warehouse.connect(settings) as ch:
            written = set(
                map(
                    tuple,
                    ch.query(
                        "SELECT wallet, market_key FROM analytics.int_wallet_markets "
                        "WHERE row_version = (SELECT max(row_version) FROM analytics.int_wallet_markets)"
                    ).result_rows,
                )
            )
        doc = json.loads((data / "expanded_resolution_map.json").read_text())
        dated = pnl_reference.resolved_days(doc, clock.date())  # the map's days; else the clock's
        for cid, day in dated.items():
            recorded.setdefault(cid, day)  # recorded once, on the first night it is resolved
        ok, failures, rebuilt = rebuilt_copy(settings, root / f"rebuilt{night}", MARTS)
        ref = pnl_reference.compute_all(inbox, data, clock.date(), days_resolved=recorded)
        nights.append(
            Night(clock, status, errors, incremental, rebuilt, failures if not ok else None, ref, written)
        )
    return World(
        nights=nights,
        t_price=t_price,
        held_back=held_back,
        **{k: actors[k] for k in ("a", "f", "m1", "m2", "t")},
        m1_to=actors["m1_to"]["name"],
        settings=settings,
    )


# --- every night ran, and incremental == full refresh -----------------------------------------


def test_every_night_ran_including_the_fifty_fifty_map(world):
    for n, night in enumerate(world.nights, 1):
        assert night.status == "success", (n, night.errors)
        assert night.rebuild_failures is None, (n, night.rebuild_failures)
    assert len(world.held_back) > 20


@pytest.mark.parametrize("mart", MARTS)
def test_incremental_equals_a_full_refresh_every_night(world, mart):
    for n, night in enumerate(world.nights, 1):
        inc, full = night.incremental[mart], night.rebuilt[mart]
        assert isinstance(inc, dict) and isinstance(full, dict), (n, inc, full)
        assert inc["columns"] == full["columns"], n
        assert len(inc["rows"]) == len(full["rows"]) > 0, (n, mart)
        diff = set(inc["rows"]) ^ set(full["rows"])
        assert inc["rows"] == full["rows"], (n, mart, sorted(diff, key=repr)[:4])


# --- == the reference ---------------------------------------------------------------------------


def _positions(night: Night, built: str = "incremental") -> dict:
    return {
        (r["wallet"], r["token_id"]): r for r in rows_as_dicts(getattr(night, built), "fct_wallet_positions")
    }


@pytest.mark.parametrize("built", BUILDS)
def test_positions_equal_the_reference_every_night(world, built):
    cols = ("amount", "open_amount", "avg_price", "realized_pnl", "is_resolved")
    marked = ("mark_price", "unrealized_pnl", "total_pnl", "current_value")
    for n, night in enumerate(world.nights, 1):
        got = {k: tuple(int(r[c]) for c in cols + marked) for k, r in _positions(night, built).items()}
        want = {
            k: (
                p.amount,
                p.open_amount,
                p.avg_price,
                p.realized,
                int(p.resolved),
                p.mark_price,
                p.unrealized,
                p.total,
                p.current_value,
            )
            for k, p in night.ref.book.items()
        }
        bad = {k: (got.get(k), v) for k, v in want.items() if got.get(k) != v}
        assert len(got) == len(want) and not bad, (n, list(bad.items())[:4])


@pytest.mark.parametrize("built", BUILDS)
def test_category_mart_equals_the_reference_every_night(world, built):
    cols = (
        "realized_pnl",
        "volume",
        "n_fills",
        "n_markets",
        "n_resolved_markets",
        "wins",
        "losses",
        "unrealized_pnl",
        "total_pnl",
        "open_value",
    )
    for n, night in enumerate(world.nights, 1):
        got = {
            (r["wallet"], r["category"]): tuple(int(r[c]) for c in cols)
            for r in rows_as_dicts(getattr(night, built), "fct_wallet_category_pnl")
        }
        want = {k: tuple(v[c] for c in cols) for k, v in night.ref.categories.items()}
        bad = {k: (got.get(k), want.get(k)) for k in set(got) | set(want) if got.get(k) != want.get(k)}
        assert not bad, (n, list(bad.items())[:4])


@pytest.mark.parametrize("built", BUILDS)
def test_resolution_outcomes_equal_the_reference_every_night(world, built):
    cols = (
        "market_id",
        "category",
        "final_side",
        "yes_amount",
        "no_amount",
        "resolved_outcome",
        "won",
        "held_winner",
        "realized_pnl",
        "n_fills",
        "volume",
    )
    for n, night in enumerate(world.nights, 1):
        got = {
            (r["wallet"], r["condition_id"]): tuple(
                r[c] if isinstance(r[c], str) else int(r[c]) for c in cols
            )
            for r in rows_as_dicts(getattr(night, built), "fct_resolution_outcomes")
        }
        want = {
            k: tuple(v[c] if isinstance(v[c], str) else int(v[c]) for c in cols)
            for k, v in night.ref.outcomes.items()
        }
        bad = {k: (got.get(k), want.get(k)) for k in set(got) | set(want) if got.get(k) != want.get(k)}
        assert not bad, (n, list(bad.items())[:4])


@pytest.mark.parametrize("built", BUILDS)
def test_daily_pnl_equals_the_reference_every_night(world, built):
    cols = ("realized_pnl", "trading_pnl", "resolution_pnl", "volume", "n_fills")
    for n, night in enumerate(world.nights, 1):
        got = {
            (r["wallet"], r["day"]): tuple(int(r[c]) for c in cols)
            for r in rows_as_dicts(getattr(night, built), "fct_wallet_daily_pnl")
        }
        want = {k: tuple(v[c] for c in cols) for k, v in night.ref.daily.items()}
        nonzero = {k: v for k, v in want.items() if any(v)}
        bad = {k: (got.get(k), v) for k, v in nonzero.items() if got.get(k) != v}
        assert not bad, (n, list(bad.items())[:4])
        assert {k for k, v in got.items() if any(v)} == set(nonzero), n
        per_wallet: dict[str, int] = {}
        for (wallet, _), v in got.items():
            per_wallet[wallet] = per_wallet.get(wallet, 0) + v[0]
        realized: dict[str, int] = {}
        for (wallet, _), p in night.ref.book.items():
            realized[wallet] = realized.get(wallet, 0) + p.realized
        assert per_wallet == realized, n


@pytest.mark.parametrize("built", BUILDS)
def test_leaderboard_equals_the_reference_every_night(world, built):
    cols = ("realized_pnl", "volume", "n_fills", "rank_pnl", "rank_volume")
    for n, night in enumerate(world.nights, 1):
        rows = rows_as_dicts(getattr(night, built), "fct_leaderboard")
        assert {r["as_of_day"] for r in rows} == {night.ref.as_of_day}, n
        got = {(r["time_window"], r["category"], r["wallet"]): tuple(int(r[c]) for c in cols) for r in rows}
        want = {k: tuple(v[c] for c in cols) for k, v in night.ref.leaderboard.items()}
        bad = {k: (got.get(k), want.get(k)) for k in set(got) | set(want) if got.get(k) != want.get(k)}
        assert not bad, (n, len(bad), list(bad.items())[:4])


# --- each scenario happened, and the marts show it -------------------------------------------------


def test_a_resolution_corrected_from_yes_to_no(world):
    first, second = world.nights[0], world.nights[1]
    for night, outcome in ((first, "YES"), (second, "NO")):
        rows = [
            r
            for r in rows_as_dicts(night.incremental, "fct_resolution_outcomes")
            if r["condition_id"] == world.a
        ]
        assert rows and {r["resolved_outcome"] for r in rows} == {outcome}
        want = {k[0]: v["realized_pnl"] for k, v in night.ref.outcomes.items() if k[1] == world.a}
        assert {r["wallet"]: int(r["realized_pnl"]) for r in rows} == want
    assert any(
        first.ref.outcomes[k]["realized_pnl"] != v["realized_pnl"]
        for k, v in second.ref.outcomes.items()
        if k[1] == world.a
    )
    # the correction's later resolved_at does not move the day its PnL was booked
    assert second.ref.resolved_days[world.a] == DAYS[1]


def test_markets_moved_to_another_category_and_to_uncategorized(world):
    def category_of(night: Night, cid: str) -> set[str]:
        return {m["category"] for k, m in night.ref.markets.items() if k[1] == cid}

    assert category_of(world.nights[1], world.m1) == {world.m1_to} != category_of(world.nights[0], world.m1)
    assert (
        category_of(world.nights[2], world.m2) == {"Uncategorized"} != category_of(world.nights[1], world.m2)
    )
    for n, cid, category in ((1, world.m1, world.m1_to), (2, world.m2, "Uncategorized")):
        night = world.nights[n]
        wallets = {k[0] for k in night.ref.markets if k[1] == cid}
        rows = {
            (r["wallet"], r["category"]) for r in rows_as_dicts(night.incremental, "fct_wallet_category_pnl")
        }
        assert {(w, category) for w in wallets} <= rows


def test_a_fifty_fifty_resolution_closes_its_positions(world):
    before, after = _positions(world.nights[0]), _positions(world.nights[1])
    held = {k: r for k, r in after.items() if r["condition_id"] == world.f}
    assert held and any(int(before[k]["open_amount"]) > 0 for k in held)
    for r in held.values():
        assert (
            bool(r["is_resolved"]),
            int(r["mark_price"]),
            int(r["open_amount"]),
            int(r["unrealized_pnl"]),
        ) == (True, 500_000, 0, 0)
    outcomes = [
        r
        for r in rows_as_dicts(world.nights[1].incremental, "fct_resolution_outcomes")
        if r["condition_id"] == world.f
    ]
    assert outcomes and {(r["resolved_outcome"], bool(r["held_winner"])) for r in outcomes} == {
        ("50-50", False)
    }


def test_late_older_fills_keep_the_mark_and_a_new_fill_moves_it(world):
    def marks(night: Night) -> dict[str, int]:
        return {k[0]: int(r["mark_price"]) for k, r in _positions(night).items() if k[1] == world.t}

    def unrealized(night: Night) -> dict[str, int]:
        return {k[0]: int(r["unrealized_pnl"]) for k, r in _positions(night).items() if k[1] == world.t}

    n1, n2, n3 = world.nights
    first = world.nights[0].ref.book
    mark = next(p.mark_price for (_, tok), p in first.items() if tok == world.t)
    assert set(marks(n1).values()) == set(marks(n2).values()) == {mark}
    assert len(marks(n2)) > len(marks(n1)) or unrealized(n2) != unrealized(n1)  # the late fills counted
    assert set(marks(n3).values()) == {world.t_price} != {mark}
    # holders with no fill tonight are re-marked too
    quiet = {
        w for w in unrealized(n2) if n3.ref.book[(w, world.t)].n_fills == n2.ref.book[(w, world.t)].n_fills
    }
    assert quiet and all(unrealized(n3)[w] == n3.ref.book[(w, world.t)].unrealized for w in quiet)
    assert any(unrealized(n3)[w] != unrealized(n2)[w] for w in quiet)


def test_a_moved_mark_rewrites_no_grain_row(world):
    """Mark-dependent values are computed when read: the holders of T with no fill in T's
    market on night 3 keep their grain rows although T's mark moved (and their unrealized
    PnL with it, checked against the reference above)."""
    n2, n3 = world.nights[1], world.nights[2]
    positions = _positions(n3)
    market = {str(positions[k]["condition_id"] or k[1]) for k in positions if k[1] == world.t}
    assert len(market) == 1 and market != {world.m2}
    market_key = market.pop()
    tokens = {k[1] for k, r in positions.items() if str(r["condition_id"] or k[1]) == market_key}

    def fills(night: Night, wallet: str) -> list[int]:
        return [
            night.ref.book[(wallet, tok)].n_fills if (wallet, tok) in night.ref.book else 0 for tok in tokens
        ]

    quiet = {
        w
        for (w, tok), r in positions.items()
        if tok == world.t and int(r["open_amount"]) > 0 and fills(n2, w) == fills(n3, w)
    }
    assert quiet
    assert any(
        int(n3.ref.book[(w, world.t)].unrealized) != int(n2.ref.book[(w, world.t)].unrealized) for w in quiet
    )
    assert not {(w, market_key) for w in quiet} & n3.grain_written
    assert n3.grain_written  # the night did rewrite the pairs with new fills


def test_the_marts_read_the_same_after_the_engine_merges_every_part(world, tmp_path):
    """dbt writes without merging each insert block (optimize_on_insert = 0 in the profile,
    12 % of the 10M full build): every reader of a table that keeps versions collapses them
    itself (FINAL, argMax, sums), so the marts do not depend on when the engine merges.
    Forced here on a copy of the last night's warehouse: every table merged to one part per
    partition (OPTIMIZE FINAL), and no mart moves."""
    shutil.copytree(world.settings.home, tmp_path / "home", symlinks=True)
    copy = make_settings(tmp_path, GOLDSKY_SOURCE="dataset", DATA_DIR=str(world.settings.data_dir))
    with warehouse.connect(copy) as ch:
        tables = ch.query(
            "SELECT name, engine FROM system.tables WHERE database = 'analytics' AND engine LIKE '%MergeTree'"
        ).result_rows
        # the nights left versions to collapse: more rows than keys in the grain
        rows, keys = ch.query(
            "SELECT count(), uniqExact(wallet, market_key) FROM analytics.int_wallet_markets"
        ).result_rows[0]
        assert rows > keys
        assert {"ReplacingMergeTree", "AggregatingMergeTree"} <= {engine for _, engine in tables}
        for name, _ in tables:
            ch.command(f"OPTIMIZE TABLE analytics.{name} FINAL")
        assert ch.command("SELECT count() FROM analytics.int_wallet_markets") == ch.command(
            "SELECT uniqExact(wallet, market_key) FROM analytics.int_wallet_markets"
        )
    merged = snapshot(copy, MARTS)
    for mart in MARTS:
        assert merged[mart] == world.nights[-1].incremental[mart], mart
