"""The marts equal an independent plain-Python implementation of the same rules, exactly,
and a second run with no new data changes nothing. The reference itself is checked first on
hand-worked cases (50-50, marks, truncation, daily days, leaderboard ties).

Issue 13's columns and marts (marks, unrealized and total PnL, open value, fct_wallet_daily_pnl,
fct_leaderboard) are compared against the contract in docs/pnl.md; on a tree without those
models the tests for them fail by design."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from nightly.run import run_nightly
from pipeline import names, warehouse
from tests.support import factories, mart_shapes, pnl_reference
from tests.support.compare import assert_same_rows, keyed_ints
from tests.support.settings import SAMPLE_NOW


def _reference(settings):
    return pnl_reference.compute(settings.sample_dir / "fills", settings.data_dir)


def test_sample_run_succeeds_and_fills_every_mart(sample_run):
    _settings, status, run = sample_run
    assert status == "success", run
    details = next(s for s in run["steps"] if s["name"] == "dbt_build")["details"]
    assert set(details["mart_rows"]) == set(names.MARTS)
    assert details["empty_marts"] == []


def test_the_build_counts_the_traded_tokens_no_source_maps(sample_run):
    """The dbt step warns about traded tokens without a condition (each its own market)."""
    settings, _, run = sample_run
    build = next(s for s in run["steps"] if s["name"] == "dbt_build")
    fills = pnl_reference.read_fills(settings.sample_dir / "fills")
    traded = {
        f["maker_asset_id"] if f["maker_asset_id"] != "0" else f["taker_asset_id"] for f in fills.values()
    }
    markets = [json.loads(line) for line in (settings.data_dir / "markets.jsonl").read_text().splitlines()]
    unmapped = traded - set(pnl_reference.token_map(markets))
    assert build["details"]["unknown_condition_tokens"] == len(unmapped) > 0
    assert any(f"{len(unmapped)} traded tokens map to no known condition" in w for w in build["warnings"])


@pytest.mark.parametrize("mart", sorted(mart_shapes.SHAPES))
def test_the_hand_made_marts_have_the_real_marts_columns(sample_run, mart):
    """Tests that build marts by hand (tests/support/mart_shapes.py) build what dbt builds."""
    settings, _, _ = sample_run
    with warehouse.connect(settings) as ch:
        real = ch.query(
            "SELECT name, type FROM system.columns WHERE database = {db:String} AND table = {t:String} "
            "ORDER BY position",
            parameters={"db": names.ANALYTICS, "t": mart},
        ).result_rows
    shape = mart_shapes.SHAPES[mart][0]
    assert [(n, t.replace(" ", "")) for n, t in real] == [(n, t.replace(" ", "")) for n, t in shape]


def test_positions_equal_reference_exactly(sample_run):
    settings, _, _ = sample_run
    book, _ = _reference(settings)
    with warehouse.connect(settings) as ch:
        rows = ch.query(
            "SELECT wallet, token_id, amount, open_amount, avg_price, realized_pnl, total_bought, "
            "n_fills, volume, buy_collateral, is_resolved FROM analytics.fct_wallet_positions"
        ).result_rows
    got = keyed_ints(rows, 2)
    want = {
        k: (
            p.amount,
            0 if p.resolved else p.amount,
            p.avg_price,
            p.realized,
            p.bought,
            p.n_fills,
            p.volume,
            p.buy_collateral,
            int(p.resolved),
        )
        for k, p in book.items()
    }
    assert_same_rows(got, want)
    # the sample exercises what the rules are about
    assert any(p.resolution_pnl < 0 for p in book.values())
    assert any(p.realized > 0 and not p.resolved for p in book.values())


def test_category_pnl_equals_reference_exactly(sample_run):
    settings, _, _ = sample_run
    _, categories = _reference(settings)
    with warehouse.connect(settings) as ch:
        rows = ch.query(
            "SELECT wallet, category, realized_pnl, volume, n_fills, n_markets, n_resolved_markets, "
            "wins, losses, realized_pnl_usd, win_rate FROM analytics.fct_wallet_category_pnl"
        ).result_rows
    got = keyed_ints(rows, 2, slice(2, 9))
    want = {
        k: (
            v["realized_pnl"],
            v["volume"],
            v["n_fills"],
            v["n_markets"],
            v["n_resolved_markets"],
            v["wins"],
            v["losses"],
        )
        for k, v in categories.items()
    }
    assert got == want
    for r in rows:
        assert r[9] * 1_000_000 == r[2]  # the USD column is exact
        assert (r[10] is None) == (r[7] + r[8] == 0)
    assert len({k[1] for k in got}) == 9  # eight canonical buckets and Uncategorized


def _snapshot(settings):
    with warehouse.connect(settings) as ch:
        marts = {
            t: sorted(map(repr, ch.query(f"SELECT * FROM analytics.{t}").result_rows))
            for t in (
                "fct_wallet_positions",
                "fct_wallet_category_pnl",
                "fct_resolution_outcomes",
                "dim_markets",
            )
        }
        return ch.command("SELECT count() FROM raw.order_filled"), marts


def test_rerun_without_new_data_changes_nothing(sample_run):
    settings, _, _ = sample_run
    rows_before, marts_before = _snapshot(settings)
    status, run = run_nightly(settings, now=SAMPLE_NOW)
    assert status == "success"
    ingest = next(s for s in run["steps"] if s["name"] == "ingest_fills")
    assert ingest["rows_out"] == 0 and ingest["details"]["files_loaded"] == 0
    rows_after, marts_after = _snapshot(settings)
    assert rows_after == rows_before
    assert marts_after == marts_before


# --- the reference itself, on hand-worked cases (no engine) ---------------------------------

DAY = 86_400
T0 = int(dt.datetime(2026, 11, 1, tzinfo=dt.UTC).timestamp())


def _book(rows, markets, entries):
    fills = {r["id"]: r for r in rows}
    tokens = pnl_reference.token_map(markets)
    prices = pnl_reference.payout_prices({"resolutions": entries})
    return fills, tokens, pnl_reference.positions(fills, tokens, prices)


def test_reference_resolves_only_the_three_payout_pairs():
    entries = [
        dict(factories.resolution(1, None), resolved_outcome="50-50", payout_yes=1, payout_no=1),
        dict(factories.resolution(2, None), resolved_outcome="YES", payout_yes=1, payout_no=1),
        dict(factories.resolution(3, None), resolved_outcome="50-50", payout_yes=1, payout_no=0),
        dict(factories.resolution(4, None), resolved_outcome="NO", payout_yes=None, payout_no=0),
        factories.resolution(5, "YES"),
        factories.resolution(6, "NO"),
    ]
    assert pnl_reference.payout_prices({"resolutions": entries}) == {
        factories.condition(1): [500_000, 500_000],
        factories.condition(5): [1_000_000, 0],
        factories.condition(6): [0, 1_000_000],
    }


def test_reference_closes_a_fifty_fifty_at_half():
    w = factories.wallet(1)
    yes, no = factories.token(1, 0), factories.token(1, 1)
    rows = [
        factories.fill(1, T0, w, "BUY", yes, 10_000_000, 3_000_000),  # at 0.30
        factories.fill(2, T0 + 1, w, "BUY", no, 4_000_000, 2_800_000),  # at 0.70
    ]
    entry = dict(factories.resolution(1, None), resolved_outcome="50-50", payout_yes=1, payout_no=1)
    _, _, book = _book(rows, [factories.market(1)], [entry])
    p_yes, p_no = book[(w, yes)], book[(w, no)]
    assert (p_yes.resolved, p_yes.mark_price, p_yes.resolution_pnl) == (True, 500_000, 2_000_000)
    assert (p_no.resolved, p_no.mark_price, p_no.resolution_pnl) == (True, 500_000, -800_000)
    for p in (p_yes, p_no):
        assert (p.open_amount, p.unrealized, p.current_value, p.total) == (0, 0, 0, p.realized)


def test_reference_marks_at_the_last_fill_by_time_then_id_and_truncates_toward_zero():
    w, v, u = factories.wallet(1), factories.wallet(2), factories.wallet(3)
    tok = factories.token(9, 0)  # listed nowhere: never resolves
    rows = [
        factories.fill(1, T0, w, "BUY", tok, 7, 3),  # price 428571
        factories.fill(2, T0, u, "BUY", tok, 2_000_000, 1_200_000),  # price 600000
        factories.fill(3, T0 + 50, v, "BUY", tok, 1_000_000, 400_000, id="0xb"),  # 400000: the mark
        factories.fill(4, T0 + 50, v, "BUY", tok, 1_000_000, 900_000, id="0xa"),  # same second, lower id
        factories.fill(5, T0 + 10, v, "BUY", tok, 1_000_000, 100_000),  # older (a late delivery)
    ]
    _, _, book = _book(rows, [], [])
    assert pnl_reference.marks({r["id"]: r for r in rows})[tok] == (400_000, T0 + 50)
    small, loser = book[(w, tok)], book[(u, tok)]
    # 7 * (400000 - 428571) / 10^6 = -0.199997: truncated toward zero, not floored to -1
    assert (small.mark_price, small.unrealized, small.current_value, small.total) == (400_000, 0, 2, 0)
    assert (loser.unrealized, loser.current_value, loser.total) == (-400_000, 800_000, -400_000)


def test_reference_books_daily_pnl_on_the_fill_day_and_the_resolved_day():
    w = factories.wallet(1)
    yes = factories.token(1, 0)
    rows = [
        factories.fill(1, T0, w, "BUY", yes, 10_000_000, 3_000_000),  # day 1 at 0.30
        factories.fill(2, T0 + DAY, w, "SELL", yes, 4_000_000, 2_000_000),  # day 2 at 0.50: +0.8
    ]
    entry = dict(factories.resolution(1, "YES"), resolved_at="2026-11-03T10:00:00.000Z")
    _, tokens, book = _book(rows, [factories.market(1)], [entry])
    resolved = pnl_reference.resolved_days({"resolutions": [entry]}, dt.date(2026, 12, 1))
    assert resolved == {factories.condition(1): dt.date(2026, 11, 3)}
    daily = pnl_reference.wallet_daily_pnl(pnl_reference.market_days(book, tokens, resolved))
    assert {
        d: (r["trading_pnl"], r["resolution_pnl"], r["volume"], r["n_fills"]) for (_, d), r in daily.items()
    } == {
        dt.date(2026, 11, 1): (0, 0, 3_000_000, 1),
        dt.date(2026, 11, 2): (800_000, 0, 2_000_000, 1),
        dt.date(2026, 11, 3): (0, 4_200_000, 0, 0),  # 6 tokens left redeem at 1.00
    }
    assert sum(r["realized_pnl"] for r in daily.values()) == book[(w, yes)].realized == 5_000_000
    # without a resolved_at, the day the pipeline first saw it
    first_seen = pnl_reference.resolved_days(
        {"resolutions": [factories.resolution(1, "YES")]}, dt.date(2026, 12, 1)
    )
    assert first_seen == {factories.condition(1): dt.date(2026, 12, 1)}


def test_reference_leaderboard_windows_and_ties():
    a, b, c = sorted(factories.wallet(n) for n in range(3))
    day = dt.date(2026, 11, 10)
    days = {
        (b, "m1", day): {"realized_pnl": 5, "volume": 10, "n_fills": 1},
        (a, "m2", day): {"realized_pnl": 5, "volume": 30, "n_fills": 2},
        (c, "m1", day - dt.timedelta(days=7)): {"realized_pnl": 100, "volume": 1, "n_fills": 1},
    }
    board = pnl_reference.leaderboard(days, {"m1": "Sports"}, day)
    ranks = {k: (v["rank_pnl"], v["rank_volume"]) for k, v in board.items()}
    assert ranks[("7d", "", a)] == (1, 1) and ranks[("7d", "", b)] == (2, 2)  # tie on pnl: by wallet
    assert ("7d", "", c) not in ranks and ranks[("30d", "", c)] == (1, 3)  # 8 days back
    assert ranks[("all", "Sports", c)] == (1, 2) and ranks[("1d", "Uncategorized", a)] == (1, 1)


# --- issue 13's columns on the sample ----------------------------------------------------------


def _first_seen(settings) -> dict[str, dt.date]:
    """The day the pipeline first saw each resolved condition the map gives no resolved_at
    for: an observation of the run, not derivable from the files, so read from the engine and
    checked to be the run's own day (the night's clock, SAMPLE_NOW)."""
    doc = json.loads((settings.data_dir / "expanded_resolution_map.json").read_text())
    undated = {e["condition_id"] for e in doc["resolutions"] if not e.get("resolved_at")} & set(
        pnl_reference.resolved_outcomes(doc)
    )
    with warehouse.connect(settings) as ch:
        rows = ch.query(
            "SELECT condition_id, resolved_day FROM analytics.int_condition_resolved_days"
        ).result_rows
    seen = {c: d for c, d in rows if c in undated}
    assert set(seen) == undated
    assert set(seen.values()) == {SAMPLE_NOW.date()}
    return seen


def _full_reference(settings) -> pnl_reference.Reference:
    return pnl_reference.compute_all(settings.sample_dir / "fills", settings.data_dir, _first_seen(settings))


def test_position_marks_equal_reference_exactly(sample_run):
    settings, _, _ = sample_run
    book, _ = _reference(settings)
    with warehouse.connect(settings) as ch:
        rows = ch.query(
            "SELECT wallet, token_id, mark_price, unrealized_pnl, total_pnl, current_value "
            "FROM analytics.fct_wallet_positions"
        ).result_rows
    got = keyed_ints(rows, 2)
    want = {k: (p.mark_price, p.unrealized, p.total, p.current_value) for k, p in book.items()}
    assert_same_rows(got, want)
    # the sample exercises the rules: losses and gains marked, truncation on both sides
    assert any(p.unrealized < 0 for p in book.values()) and any(p.unrealized > 0 for p in book.values())
    assert any(p.open_amount and p.open_amount * (p.mark_price - p.avg_price) % 10**6 for p in book.values())


def test_category_unrealized_equals_reference_exactly(sample_run):
    settings, _, _ = sample_run
    _, categories = _reference(settings)
    with warehouse.connect(settings) as ch:
        rows = ch.query(
            "SELECT wallet, category, unrealized_pnl, total_pnl, open_value, realized_pnl, "
            "unrealized_pnl_usd, total_pnl_usd, open_value_usd FROM analytics.fct_wallet_category_pnl"
        ).result_rows
    got = keyed_ints(rows, 2, slice(2, 5))
    want = {k: (v["unrealized_pnl"], v["total_pnl"], v["open_value"]) for k, v in categories.items()}
    assert got == want
    for r in rows:
        assert r[3] == r[5] + r[2]  # total = realized + unrealized
        assert (r[6] * 10**6, r[7] * 10**6, r[8] * 10**6) == (r[2], r[3], r[4])  # exact USD


def _read_from(plan: str, table: str) -> str:
    """The ReadFromMergeTree step of `table` in an EXPLAIN indexes = 1 plan: its line and
    the detail lines under it, up to the next step (a line drawing a branch, "──")."""
    lines = plan.splitlines()
    start = next(i for i, line in enumerate(lines) if "ReadFromMergeTree" in line and table in line)
    block = [lines[start]]
    for line in lines[start + 1 :]:
        if "──" in line:
            break
        block.append(line)
    return "\n".join(block)


def test_a_wallet_filter_on_the_category_mart_reads_positions_by_key(sample_run):
    """The API reads one wallet: its open positions are valued when read, so the filter must
    reach int_position_days' primary key, not scan every checkpoint."""
    settings, _, _ = sample_run
    with warehouse.connect(settings) as ch:
        wallet = ch.command("SELECT any(wallet) FROM analytics.fct_wallet_category_pnl")
        plan = "\n".join(
            r[0]
            for r in ch.query(
                "EXPLAIN indexes = 1 SELECT * FROM analytics.fct_wallet_category_pnl WHERE wallet = {w:String}",
                parameters={"w": wallet},
            ).result_rows
        )
    block = _read_from(plan, "int_position_days")
    assert "PrimaryKey" in block, block
    key = block.split("PrimaryKey", 1)[1]
    assert "wallet" in key.split("Condition", 1)[1].splitlines()[0], block
    assert "Condition: true" not in key, block


def _daily_rows(settings) -> dict:
    with warehouse.connect(settings) as ch:
        rows = ch.query(
            "SELECT wallet, day, realized_pnl, trading_pnl, resolution_pnl, volume, n_fills, "
            "realized_pnl_usd, volume_usd FROM analytics.fct_wallet_daily_pnl"
        ).result_rows
    for r in rows:
        assert (r[7] * 10**6, r[8] * 10**6) == (r[2], r[5])  # exact USD
    return {(r[0], r[1]): tuple(int(v) for v in r[2:7]) for r in rows}


def _daily_want(ref: pnl_reference.Reference) -> dict:
    cols = ("realized_pnl", "trading_pnl", "resolution_pnl", "volume", "n_fills")
    return {k: tuple(v[c] for c in cols) for k, v in ref.daily.items()}


def test_daily_pnl_equals_reference_exactly(sample_run):
    settings, _, _ = sample_run
    ref = _full_reference(settings)
    got, want = _daily_rows(settings), _daily_want(ref)
    nonzero = {k: v for k, v in want.items() if any(v)}
    assert_same_rows({k: v for k, v in got.items() if any(v)}, nonzero)
    # the identity: a wallet's days add up to its realized PnL over all its positions
    realized: dict[str, int] = {}
    for (wallet, _), p in ref.book.items():
        realized[wallet] = realized.get(wallet, 0) + p.realized
    summed: dict[str, int] = {}
    for (wallet, _), v in got.items():
        summed[wallet] = summed.get(wallet, 0) + v[0]
    assert summed == realized
    # the sample books resolutions on several days, some of them days without fills
    assert len({d for (_, d), v in nonzero.items() if v[2]}) > 1


def test_daily_pnl_has_a_row_for_each_resolution_held_or_not(sample_run):
    """The contract's edge: a resolved pair adds a row on its resolved day even when its
    resolution PnL is 0 (it sold out before), so the day's rows say which markets resolved."""
    settings, _, _ = sample_run
    want = _daily_want(_full_reference(settings))
    assert any(not any(v) for v in want.values())
    assert set(_daily_rows(settings)) == set(want)


def test_leaderboard_equals_reference_exactly(sample_run):
    settings, _, _ = sample_run
    ref = _full_reference(settings)
    with warehouse.connect(settings) as ch:
        rows = ch.query(
            "SELECT time_window, category, wallet, window_days, as_of_day, window_start, realized_pnl, "
            "volume, n_fills, rank_pnl, rank_volume, realized_pnl_usd, volume_usd "
            "FROM analytics.fct_leaderboard WHERE time_window IN ('7d', 'all')"
        ).result_rows
    for r in rows:
        assert (r[11] * 10**6, r[12] * 10**6) == (r[6], r[7])
        assert r[3] == pnl_reference.WINDOWS[r[0]] and r[4] == ref.as_of_day
        if r[0] == "7d":
            assert r[5] == ref.as_of_day - dt.timedelta(days=6)
    got = keyed_ints(rows, 3, slice(6, 11))
    want = {
        k: (v["realized_pnl"], v["volume"], v["n_fills"], v["rank_pnl"], v["rank_volume"])
        for k, v in ref.leaderboard.items()
        if k[0] in ("7d", "all")
    }
    assert_same_rows(got, want)
    assert {k[1] for k in want} - {""}  # per-category boards as well as the overall one
