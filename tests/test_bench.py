"""The scale generator is deterministic and shaped like the exchange's events, and the
benchmark's hand-written yardstick computes exactly the marts' numbers (issue 8).
No timing is asserted here: bench/run.py measures, the tests only check correctness."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from bench import generate, pandas_loop, yardstick
from bench.run import BUILD_FULL
from pipeline import warehouse
from pipeline.dbt_chdb import run_dbt
from pipeline.steps import StepResult
from tests.support.settings import make_settings

ROWS = 20_000
UNIT = 10**6


def _digests(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != "manifest.json"
    }


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench-gen")
    manifest = generate.generate(out, ROWS, delta_day=True, file_rows=8_000)
    return out, manifest


def _events(paths: list[Path]) -> dict[str, np.ndarray]:
    tables = [pq.read_table(p) for p in paths]
    cols = {}
    for name in ("id", "maker", "maker_asset_id", "taker_asset_id"):
        cols[name] = np.concatenate(
            [t.column(name).cast("string").to_numpy(zero_copy_only=False) for t in tables]
        )
    for name in ("maker_amount_filled", "taker_amount_filled"):
        cols[name] = np.concatenate([pc.cast(t.column(name), "uint64").to_numpy() for t in tables])
    cols["timestamp"] = np.concatenate([t.column("timestamp").to_numpy() for t in tables])
    return cols


def test_generator_is_deterministic(generated, tmp_path):
    out, manifest = generated
    again = generate.generate(tmp_path / "again", ROWS, delta_day=True, file_rows=8_000)
    assert _digests(out) == _digests(tmp_path / "again")
    assert {k: v for k, v in manifest.items() if k not in ("seconds", "history", "delta")} == {
        k: v for k, v in again.items() if k not in ("seconds", "history", "delta")
    }
    other = generate.generate(tmp_path / "other", ROWS, seed=generate.DEFAULT_SEED + 1, file_rows=8_000)
    first = lambda root: (root / "fills" / "order_filled-0001.parquet").read_bytes()  # noqa: E731
    assert first(out) != first(tmp_path / "other") and other["rows"] == ROWS


def test_generated_fills_have_the_exchange_shape(generated):
    out, manifest = generated
    files = sorted((out / "fills").glob("*.parquet"))
    assert len(files) == 3 and sum(f["rows"] for f in manifest["history"]["files"]) == ROWS
    ev = _events(files)
    assert len(ev["id"]) == ROWS and len(set(ev["id"])) == ROWS
    buy = ev["maker_asset_id"] == "0"
    assert np.all(buy ^ (ev["taker_asset_id"] == "0"))  # exactly one collateral side
    assert np.all(ev["maker_amount_filled"] > 0) and np.all(ev["taker_amount_filled"] > 0)
    assert all(len(i) == 133 and i[66] == "_" for i in ev["id"][:100])
    maker = np.char.lower(ev["maker"].astype(str))
    assert (maker != ev["maker"].astype(str)).any()  # mixed-case addresses occur
    token = np.where(buy, ev["taker_asset_id"], ev["maker_asset_id"])
    qty = np.where(buy, ev["taker_amount_filled"], ev["maker_amount_filled"]).astype(object)
    coll = np.where(buy, ev["maker_amount_filled"], ev["taker_amount_filled"]).astype(object)

    # whale fills: price x quantity above 2^63 (the fold needs 128 bits)
    assert any((c * UNIT // q) * q > 2**63 for c, q in zip(coll, qty))

    # same-second ties within one (wallet, token), and sells beyond the tracked amount
    events = defaultdict(list)
    for i in range(len(maker)):
        events[(maker[i], token[i])].append((int(ev["timestamp"][i]), ev["id"][i], bool(buy[i]), int(qty[i])))
    ties = sum(len(e) - len({t for t, *_ in e}) for e in events.values())
    oversells = partial = 0
    for e in events.values():
        amount = 0
        for _, _, is_buy, q in sorted(e):
            if is_buy:
                amount += q
            else:
                oversells += q > amount
                partial += 0 < amount < q
                amount -= min(q, amount)
    assert ties > 20 and oversells > 100 and partial > 5
    # popularity and wallets are skewed: a few wallets carry much of the volume
    counts = np.sort(np.unique(maker, return_counts=True)[1])[::-1]
    assert counts[0] > 20 * np.median(counts)


def test_reference_files_and_delta(generated):
    out, manifest = generated
    hist = json.loads((out / "data" / "expanded_resolution_map.json").read_text())
    delta = json.loads((out / "delta" / "expanded_resolution_map.delta.json").read_text())
    resolved = lambda doc: {e["condition_id"] for e in doc["resolutions"] if e["resolved_outcome"]}  # noqa: E731
    assert len(resolved(hist)) >= 3000 and resolved(hist) < resolved(delta)
    assert 0.6 <= manifest["traded_resolved_share"] <= 0.8
    markets = [json.loads(line) for line in (out / "data" / "markets.jsonl").read_text().splitlines()]
    listed = {t for m in markets for t in m["token_ids"]}
    ev = _events(sorted((out / "fills").glob("*.parquet")))
    traded = set(np.where(ev["maker_asset_id"] == "0", ev["taker_asset_id"], ev["maker_asset_id"]))
    assert traded - listed and traded & listed  # a few tokens no market lists
    d = manifest["delta"]
    assert d["rows"] == ROWS // generate.DELTA_DIVISOR or d["rows"] == 200
    dev = _events(sorted((out / "delta" / "fills").glob("*.parquet")))
    day_start = int(np.datetime64(d["day"], "s").astype(np.int64))
    late = dev["timestamp"] < day_start
    assert late.sum() == d["late_rows"] > 0 and (dev["timestamp"][~late] < day_start + 86400).all()
    assert not set(dev["id"]) & set(ev["id"])


def _build_models(ctx) -> StepResult:
    """The nightly dbt step without dbt's data and unit tests (other tests run those): the
    models are what the yardstick is compared with, and this keeps the test fast."""
    outcome = run_dbt(ctx.settings, BUILD_FULL)
    if not outcome.success:
        return StepResult(status="failed", error=str(outcome.failures or outcome.error))
    return StepResult(message=str(outcome.counts()))


@pytest.fixture(scope="module")
def night_warehouse(tmp_path_factory):
    """The nightly job on a small generated set (models only): the warehouse the yardstick
    and the reads are measured on. Its settings."""
    from nightly.run import run_nightly
    from nightly.steps import steps

    root = tmp_path_factory.mktemp("bench-night")
    data = root / "gen"
    generate.generate(data, 4_000, delta_day=False)
    settings = make_settings(
        root,
        GOLDSKY_SOURCE="dataset",
        GOLDSKY_DATASET_DIR=str(data / "fills"),
        DATA_DIR=str(data / "data"),
    )
    step_list = [dataclasses.replace(s, fn=_build_models) if s.name == "dbt_build" else s for s in steps()]
    assert any(s.fn is _build_models for s in step_list)
    # the night after the generated history, so its freshness checks see a current night
    night = dt.datetime.combine(generate.HISTORY_END + dt.timedelta(days=1), dt.time(8), dt.UTC)
    status, run = run_nightly(settings, now=night, step_list=step_list)
    assert status == "success", [(s["name"], s.get("error")) for s in run["steps"]]
    return settings


@pytest.mark.slow
def test_yardstick_equals_the_marts(night_warehouse):
    """The nightly job on a small generated set, then the yardstick on the same warehouse:
    every row of both marts equal, every documented column."""
    settings = night_warehouse
    with warehouse.connect(settings) as ch:
        yardstick.run(ch)
        result = yardstick.compare(ch)
        whales = ch.command(
            "SELECT count() FROM bench.yardstick_positions WHERE total_bought > 10000000000000"
        )
        marts = yardstick.checksums(ch)
        by_pandas = pandas_loop.checksums(pandas_loop.compute(ch))
    assert int(whales) > 0
    assert set(result) == set(yardstick.MARTS) == {"positions", "category_pnl", "daily_pnl", "leaderboard"}
    for kind, cmp_ in result.items():
        assert cmp_["equal"], (kind, cmp_)
        assert cmp_["mart_rows"] > 100
        assert len(cmp_["columns"]) == len(yardstick.COLUMNS[kind])
    # the pandas loop computes the same four marts
    assert {k: v for k, v in by_pandas.items() if marts[k] != v} == {}
    assert marts["board_rows"] > 100 and marts["daily_rows"] > 100 and marts["unrealized_pnl"] != 0


@pytest.mark.slow
def test_night_tests_measures_each_kind_of_dbt_test_once(night_warehouse):
    """bench.run.night_tests on the generated night: the unit tests, the data tests every night
    runs and the whole history's run and pass, and the two data kinds are all of the data
    tests, each once."""
    from bench.run import night_tests

    tested = night_tests(night_warehouse)

    manifest = json.loads((night_warehouse.home / "dbt" / "target" / "manifest.json").read_text())
    data_tests = [n for n in manifest["nodes"].values() if n["resource_type"] == "test"]
    assert tested["every_night"]["tests"] + tested["whole_history"]["tests"] == len(data_tests)
    assert tested["every_night"]["tests"] >= 30 and tested["whole_history"]["tests"] >= 60
    assert tested["unit"]["tests"] >= 15
    assert all(t["seconds"] >= t["nodes_seconds"] > 0 for t in tested.values())


@pytest.mark.slow
def test_reads_measures_the_api_and_the_whole_marts(night_warehouse, tmp_path):
    """bench.reads reads what the API and analysts read: the wallet with the most markets and
    the median one (their category rows as the mart has them), the leaderboard's top, and
    the whole marts; then renders one docs section that replaces itself."""
    from bench import reads

    wallets = reads.wallet_sizes(night_warehouse)
    (largest, most), (median, middle) = wallets["largest"], wallets["median"]
    with warehouse.connect(night_warehouse) as ch:
        per_wallet = dict(
            ch.query(
                "SELECT wallet, sum(n_markets) FROM analytics.fct_wallet_category_pnl GROUP BY wallet"
            ).result_rows
        )
        rows_of = dict(
            ch.query(
                "SELECT wallet, count() FROM analytics.fct_wallet_category_pnl GROUP BY wallet"
            ).result_rows
        )
        marts = {
            t: int(ch.command(f"SELECT count() FROM analytics.{t}"))
            for t in ("fct_wallet_category_pnl", "fct_wallet_positions")
        }
        top = int(
            ch.command(
                "SELECT count() FROM analytics.fct_leaderboard "
                "WHERE time_window = '30d' AND category = '' AND rank_pnl <= 100"
            )
        )
    assert most == max(per_wallet.values()) > middle
    ranked = sorted(per_wallet.values())
    assert middle == ranked[len(ranked) // 2]
    results = reads.measure(night_warehouse, reps=2)
    got = {r["read"]: r for r in results}
    assert len(got) == 5 and top > 0 and all(r["median_s"] >= r["min_s"] > 0 for r in results)
    assert [r["rows"] for r in results] == [
        rows_of[largest],
        rows_of[median],
        top,
        marts["fct_wallet_category_pnl"],
        marts["fct_wallet_positions"],
    ]
    section = reads.render(4_000, 2, results, {"nproc": 2, "chdb": "x"}, "2026-12-07 08:00")
    doc = tmp_path / "performance.md"
    doc.write_text("# Performance\n\n## Other\n\nkept\n")
    reads.publish(section, False, doc)  # stdout only
    assert reads.SECTION not in doc.read_text()
    reads.publish(section, True, doc)
    reads.publish(section, True, doc)  # replaces its own section
    text = doc.read_text()
    assert text.count(f"{reads.SECTION}, 4,000 rows") == 1 and "kept" in text
    for r in results:
        assert r["read"] in text


def test_cloned_home_leaves_the_base_untouched(tmp_path):
    """The harness clones the base warehouse for every step by hard-linking part files: a
    step that inserts, merges and drops in its clone must not change the base."""
    from bench.run import fresh_home

    base, clone = tmp_path / "base", tmp_path / "clone"
    with warehouse.connect(make_settings(base, CASCADIAN_HOME=str(base))) as ch:
        ch.command("CREATE DATABASE IF NOT EXISTS t")
        ch.command("CREATE TABLE t.x (k UInt64, v String) ENGINE = ReplacingMergeTree ORDER BY k")
        ch.command("INSERT INTO t.x SELECT number, toString(number) FROM numbers(1000)")
        ch.command("INSERT INTO t.x SELECT number, 'second' FROM numbers(500)")
        before = ch.command("SELECT count(), sum(cityHash64(k, v)) FROM t.x")
    fresh_home(clone, tmp_path, base)
    linked = [p for p in (clone / "chdb" / "store").rglob("*") if p.is_file() and p.stat().st_nlink > 1]
    assert linked, "part files are expected to be hard-linked"
    with warehouse.connect(make_settings(clone, CASCADIAN_HOME=str(clone))) as ch:
        assert ch.command("SELECT count(), sum(cityHash64(k, v)) FROM t.x") == before
        ch.command("INSERT INTO t.x SELECT number, 'third' FROM numbers(2000)")
        ch.command("OPTIMIZE TABLE t.x FINAL")
        ch.command("ALTER TABLE t.x DELETE WHERE k < 10 SETTINGS mutations_sync = 1")
        assert ch.command("SELECT count() FROM t.x") == 1990
    with warehouse.connect(make_settings(base, CASCADIAN_HOME=str(base))) as ch:
        assert ch.command("SELECT count(), sum(cityHash64(k, v)) FROM t.x") == before


def test_a_fixed_delta_day_has_the_same_size_on_any_history(tmp_path):
    """The history-independence measure replays one delta size on two histories."""
    small = generate.generate(tmp_path / "small", ROWS, file_rows=8_000, delta_rows=300)
    large = generate.generate(tmp_path / "large", 2 * ROWS, file_rows=8_000, delta_rows=300)
    default = generate.generate(tmp_path / "default", 2 * ROWS, file_rows=8_000)
    assert small["delta"]["matches_requested"] == large["delta"]["matches_requested"] == 300
    assert default["delta"]["matches_requested"] == generate.default_delta_rows(2 * ROWS) == 400
    events = [m["delta"]["rows"] for m in (small, large)]
    assert min(events) >= 300 and max(events) / min(events) < 1.5, events


def _fake_run(rows: int, delta_rows: int | None, seconds: list[float]) -> dict:
    reps = [
        {"ok": True, "seconds": s, "peak_rss": GB_BYTES, "load_seconds": s / 4, "dbt_seconds": s / 2}
        for s in seconds
    ]
    return {
        "rows": rows,
        "delta_rows": delta_rows,
        "reps": len(seconds),
        "data": {"delta": {"rows": delta_rows or rows // 100}},
        "results": {"increment": reps},
    }


GB_BYTES = 1024**3


def test_history_independence_pairs_a_small_run_with_the_large_run_of_that_delta(tmp_path, monkeypatch):
    from bench import run as bench_run

    monkeypatch.setattr(bench_run, "BENCH_ROOT", tmp_path)
    large = _fake_run(1_000_000, None, [30.0, 36.0, 33.0])
    other = _fake_run(2_000_000, None, [99.0])  # its default delta is another size: not paired
    for name, report in (("1000000", large), ("2000000", other)):
        (tmp_path / f"run-{name}").mkdir()
        (tmp_path / f"run-{name}" / "results.json").write_text(json.dumps(report))
    small = _fake_run(100_000, 10_000, [20.0, 22.0, 40.0])
    cmp_ = bench_run.history_comparison(small)
    assert cmp_["large"]["rows"] == 1_000_000
    assert cmp_["median_s"] == (22.0, 33.0, 1.5)
    assert cmp_["median_dbt_seconds"] == (11.0, 16.5, 1.5)
    text = bench_run.render_history(cmp_)
    assert text.startswith(bench_run.HISTORY_SECTION) and "1.50x, missed" in text
    assert bench_run.history_comparison(_fake_run(100_000, 12_345, [1.0])) is None
    assert bench_run.history_comparison(_fake_run(100_000, None, [1.0])) is None


def test_history_rows_measures_both_histories_in_one_run():
    """With --history-rows the comparison and its target come from one report: the
    `increment_history` step's repetitions against the `increment` step's."""
    from bench import run as bench_run

    report = _fake_run(1_000_000, None, [30.0, 36.0, 33.0])
    report["history_rows"] = 100_000
    report["history_data"] = {"delta": {"rows": 10_400, "matches_requested": 10_000}}
    small = _fake_run(100_000, 10_000, [20.0, 22.0, 40.0])
    report["results"]["increment_history"] = small["results"]["increment"]
    cmp_ = bench_run.history_comparison(report)
    assert cmp_["median_s"] == (22.0, 33.0, 1.5)
    assert cmp_["reps"] == (3, 3) and "one run" in cmp_["how"]
    assert "100,000-row and on a 1,000,000-row history" in bench_run.render_history(cmp_)
    checks = bench_run.ratios(bench_run.summarize(report["results"]), report["rows"])
    (history,) = [c for c in checks if c["target"].startswith("same delta day")]
    assert history["value"].startswith("1.50x") and not history["met"]
    report["results"]["increment_history"] = _fake_run(100_000, 10_000, [30.0])["results"]["increment"]
    (history,) = [
        c
        for c in bench_run.ratios(bench_run.summarize(report["results"]), report["rows"])
        if c["target"].startswith("same delta day")
    ]
    assert history["met"]


def test_the_small_history_is_the_newest_part_of_the_large_one(generated, tmp_path, monkeypatch):
    """--history-rows replays the large run's own delta day on the newest rows of its own
    history: the same delta files, reference files, wallets and markets, so the two nights
    differ only by the older history (a separately generated small history had a tenth of
    the wallets, and the same-size day touched half as many pairs)."""
    from bench import run as bench_run

    monkeypatch.setattr(bench_run, "BENCH_ROOT", tmp_path)
    out, manifest = generated  # three history files of ~8,000 rows
    small, small_manifest = bench_run.newest_history(out, manifest, 10_000)
    files = manifest["history"]["files"]
    kept = small_manifest["history"]["files"]
    assert [Path(f["file"]).name for f in kept] == [Path(f["file"]).name for f in files[-2:]]
    assert sum(f["rows"] for f in kept) == small_manifest["rows"] >= 10_000
    assert small_manifest["newest_of"] == ROWS
    assert _digests(small / "fills") == {
        k.removeprefix("fills/"): v
        for k, v in _digests(out).items()
        if k.startswith("fills/") and k.removeprefix("fills/") in {Path(f["file"]).name for f in kept}
    }
    for sub in ("data", "delta"):
        assert _digests(small / sub) == _digests(out / sub)
    first_ts = pq.read_table(Path(kept[0]["file"]), columns=["timestamp"]).column("timestamp")
    assert (
        small_manifest["history"]["first_day"]
        == dt.datetime.fromtimestamp(int(pc.min(pc.cast(first_ts, "int64")).as_py()), dt.UTC)
        .date()
        .isoformat()
    )
    assert small_manifest["delta"] == manifest["delta"]
    # cached: a second call reuses the directory
    again, again_manifest = bench_run.newest_history(out, manifest, 10_000)
    assert again == small and again_manifest["cached"]
    # the comparison says what the small history is, and counts the pairs each night rewrote
    report = _fake_run(ROWS, None, [30.0, 36.0, 33.0])
    report["data"] = manifest
    report["history_rows"] = 10_000
    report["history_data"] = small_manifest
    report["results"]["increment_history"] = _fake_run(10_000, None, [20.0, 22.0, 40.0])["results"][
        "increment"
    ]
    for reps, pairs in ((report["results"]["increment"], 900), (report["results"]["increment_history"], 600)):
        for r in reps:
            r["grain_rows_written"] = pairs
    text = bench_run.render_history(bench_run.history_comparison(report))
    assert f"on its whole history and on the newest {small_manifest['rows']:,} rows of it" in text
    assert "| (wallet, market) pairs the night rewrote | 600 | 900 | 1.50x |" in text


def test_an_engine_loaded_base_has_the_fill_id_index(generated, tmp_path):
    """A base loaded by the engine's file load (`--base-load engine`) ends as our loader
    leaves one, with every stored fill id indexed: else the first load into each clone
    indexes the whole history and the increment counts it (about 4 s at 10M)."""
    from bench.run import load_base
    from ingest import fill_store

    out, _ = generated
    with warehouse.connect(make_settings(tmp_path, CASCADIAN_HOME=str(tmp_path))) as ch:
        warehouse.ensure_databases(ch)
        loaded = load_base(ch, out / "fills", "engine")
        assert loaded["how"] == "engine"
        assert warehouse.count_rows(ch, "raw.order_filled") == ROWS
        assert fill_store.sync(ch) == 0  # nothing left to index
