"""The nightly incremental path gives exactly what a full rebuild gives: with late fills,
newly resolved conditions, a re-categorised market and a retracted resolution along the
way (the retraction takes away the resolution day of the markets' daily rows: a stored day
that vanishes)."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import random
import shutil

import pytest

from ingest import sample_data
from nightly.run import run_nightly
from pipeline import warehouse
from pipeline.dbt_chdb import run_dbt
from tests.support import pnl_reference
from tests.support.nights import FULL_REFRESH
from tests.support.settings import make_settings

pytestmark = pytest.mark.slow

ANCHOR = dt.date(2026, 11, 20)


def _night(day: dt.date) -> dt.datetime:
    """The run's clock on the morning after `day`'s fills: a current night."""
    return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(8), dt.UTC)


MARTS = {
    "fct_wallet_positions": "wallet, token_id",
    "fct_wallet_category_pnl": "wallet, category",
    "fct_resolution_outcomes": "wallet, condition_id",
    "fct_wallet_daily_pnl": "wallet, day",
    "grain": "wallet, market_key",
}
# The live rows of the wallet x market grain, without the build's bookkeeping columns.
GRAIN = (
    "(SELECT * EXCEPT (updated_at, row_version, positions_through, prev_is_live, "
    "prev_category, prev_is_resolved, prev_realized_pnl, prev_volume, prev_buy_collateral, prev_n_fills) "
    "FROM analytics.int_wallet_markets FINAL WHERE is_deleted = 0)"
)


def _snapshot(settings) -> dict[str, list]:
    with warehouse.connect(settings) as ch:
        out = {}
        for table, key in MARTS.items():
            relation = GRAIN if table == "grain" else f"analytics.{table}"
            cols = [
                c for c in ch.query(f"SELECT * FROM {relation} LIMIT 0").column_names if c != "updated_at"
            ]
            out[table] = ch.query(f"SELECT {', '.join(cols)} FROM {relation} ORDER BY {key}").result_rows
        return out


def _rows(path):
    with gzip.open(path, "rt") as fh:
        return [json.loads(line) for line in fh]


def _write(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress("".join(json.dumps(r) + "\n" for r in rows).encode(), mtime=0))


@pytest.fixture(scope="module")
def nights(tmp_path_factory):
    """Four nights of deliveries, then the marts as the increments left them."""
    root = tmp_path_factory.mktemp("incremental")
    settings = make_settings(root, GOLDSKY_SOURCE="dataset")
    source = root / "generated"
    summary = sample_data.generate_sample(source / "fills", source / "data", ANCHOR, days=6)
    days = [_rows(p) for p in summary.fill_files]
    rng = random.Random(7)
    held_back = [r for r in days[1] + days[2] if rng.random() < 0.15]
    held_ids = {r["id"] for r in held_back}
    inbox = settings.goldsky_dataset_dir
    resolution_map = json.loads((source / "data" / "expanded_resolution_map.json").read_text())
    markets = [json.loads(line) for line in (source / "data" / "markets.jsonl").read_text().splitlines()]
    traded = {t for d in days for r in d for t in (r["maker_asset_id"], r["taker_asset_id"])}
    traded_conditions = {m["condition_id"] for m in markets if set(m["token_ids"]) & traded}
    late_resolved = {
        e["condition_id"]
        for e in resolution_map["resolutions"]
        if e["condition_id"] in traded_conditions and e["resolved_outcome"]
    }
    late_resolved = set(sorted(late_resolved)[:25])

    def deliver_reference(unresolved: set[str], recategorise: bool) -> None:
        data = settings.data_dir
        data.mkdir(parents=True, exist_ok=True)
        shutil.copy(source / "data" / "category_definitions.json", data)
        entries = [
            dict(e, resolved_outcome=None, payout_yes=None, payout_no=None)
            if e["condition_id"] in unresolved
            else e
            for e in resolution_map["resolutions"]
        ]
        doc = dict(
            resolution_map,
            resolutions=entries,
            resolved_conditions=sum(e["resolved_outcome"] is not None for e in entries),
        )
        (data / "expanded_resolution_map.json").write_text(json.dumps(doc))
        moved = [
            dict(m, category="Sports", tags=[])
            if recategorise and m["condition_id"] in sorted(traded_conditions)[:5]
            else m
            for m in markets
        ]
        (data / "markets.jsonl").write_text("".join(json.dumps(m) + "\n" for m in moved))

    # night 1: days 1-3 without the held-back events; 25 traded conditions not yet resolved
    for i in range(3):
        _write(inbox / f"day{i}.jsonl.gz", [r for r in days[i] if r["id"] not in held_ids])
    deliver_reference(late_resolved, recategorise=False)
    status, run = run_nightly(settings, now=_night(ANCHOR - dt.timedelta(days=3)))
    assert status == "success", [(s["name"], s["error"]) for s in run["steps"] if s["error"]]
    # night 2: day 4, the held-back events arrive late, the 25 conditions resolve
    _write(inbox / "day3.jsonl.gz", days[3])
    _write(inbox / "late.jsonl.gz", held_back)
    deliver_reference(set(), recategorise=False)
    status, run = run_nightly(settings, now=_night(ANCHOR - dt.timedelta(days=2)))
    assert status == "success", [(s["name"], s["error"]) for s in run["steps"] if s["error"]]
    # night 3: days 5-6, and five markets move to another category
    _write(inbox / "day4.jsonl.gz", days[4])
    _write(inbox / "day5.jsonl.gz", days[5])
    deliver_reference(set(), recategorise=True)
    status, run = run_nightly(settings, now=_night(ANCHOR))
    assert status == "success", [(s["name"], s["error"]) for s in run["steps"] if s["error"]]
    # night 4, later the same morning: no new fills; five of the 25 resolutions are retracted
    retracted = set(sorted(late_resolved)[:5])
    deliver_reference(retracted, recategorise=True)
    with warehouse.connect(settings) as ch:
        resolution_days = ch.command(
            "SELECT count() FROM analytics.int_wallet_market_days FINAL "
            "WHERE is_deleted = 0 AND resolution_pnl != 0 AND market_key IN {c:Array(String)}",
            parameters={"c": sorted(retracted)},
        )
    assert resolution_days > 0  # the days the retraction must take away
    status, run = run_nightly(settings, now=_night(ANCHOR) + dt.timedelta(hours=2))
    assert status == "success", [(s["name"], s["error"]) for s in run["steps"] if s["error"]]
    return settings, _snapshot(settings), held_back


def test_the_increments_really_were_incremental(nights):
    settings, _, held_back = nights
    assert len(held_back) > 20
    with warehouse.connect(settings) as ch:
        versions = ch.command("SELECT uniqExact(state_version) FROM analytics.int_position_days")
        stored, live = ch.query(
            "SELECT count(), uniqExact(wallet, token_id, day) FROM analytics.int_position_days"
        ).result_rows[0]
        grain_versions, grain_rows, grain_live = ch.query(
            "SELECT uniqExact(row_version), count(), uniqExact(wallet, market_key) "
            "FROM analytics.int_wallet_markets"
        ).result_rows[0]
        logged = ch.command("SELECT uniqExact(seen_at) FROM analytics.int_market_state_log")
    assert versions == 3  # the three nights with fills each appended states...
    assert stored > live  # ...for some keys and days only (late fills re-wrote days)
    assert grain_versions == 4 and grain_rows > grain_live  # the grain: changed pairs only
    assert logged == 4  # resolutions and categories changed on nights 2, 3 and 4


def test_incremental_marts_equal_a_full_refresh(nights):
    settings, incremental, _ = nights
    outcome = run_dbt(settings, FULL_REFRESH)
    assert outcome.success, outcome.failures
    rebuilt = _snapshot(settings)
    for table in MARTS:
        assert len(incremental[table]) == len(rebuilt[table]) > 0, table
        assert incremental[table] == rebuilt[table], table


def test_incremental_marts_equal_the_reference_rules(nights):
    settings, incremental, _ = nights
    book, categories = pnl_reference.compute(settings.goldsky_dataset_dir, settings.data_dir)
    got = {(r[0], r[1]): int(r[7]) for r in incremental["fct_wallet_positions"]}  # realized_pnl
    assert got == {k: p.realized for k, p in book.items()}
    assert len(incremental["fct_wallet_category_pnl"]) == len(categories)


def test_incremental_unit_test_runs_once_the_state_exists(nights):
    settings, _, _ = nights
    outcome = run_dbt(settings, ["test", "--select", "tag:needs_built_state", "--quiet"])
    assert outcome.success and outcome.results, outcome.failures
