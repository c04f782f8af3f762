"""The marts equal an independent plain-Python implementation of the same rules, exactly,
and a second run with no new data changes nothing."""

from __future__ import annotations

from nightly.run import run_nightly
from pipeline import names, warehouse
from tests.support import pnl_reference
from tests.support.settings import SAMPLE_NOW


def _reference(settings):
    return pnl_reference.compute(settings.sample_dir / "fills", settings.data_dir)


def test_sample_run_succeeds_and_fills_every_mart(sample_run):
    _settings, status, run = sample_run
    assert status == "success", run
    details = next(s for s in run["steps"] if s["name"] == "dbt_build")["details"]
    assert set(details["mart_rows"]) == set(names.MARTS)
    assert details["empty_marts"] == []


def test_positions_equal_reference_exactly(sample_run):
    settings, _, _ = sample_run
    book, _ = _reference(settings)
    with warehouse.connect(settings) as ch:
        rows = ch.query(
            "SELECT wallet, token_id, amount, open_amount, avg_price, realized_pnl, total_bought, "
            "n_fills, volume, buy_collateral, is_resolved FROM analytics.fct_wallet_positions"
        ).result_rows
    got = {(r[0], r[1]): tuple(int(v) for v in r[2:]) for r in rows}
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
    assert len(got) == len(want)
    mismatches = {k: (got.get(k), want[k]) for k in want if got.get(k) != want[k]}
    assert not mismatches, list(mismatches.items())[:5]
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
    got = {(r[0], r[1]): tuple(int(v) for v in r[2:9]) for r in rows}
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
