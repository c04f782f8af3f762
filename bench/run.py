"""Benchmark harness (issues 8 and 12): load, full build, nightly increment, pandas, healthcheck.

    python -m bench.run --rows 1000000 [--reps 3] [--write-docs]

One run generates (or reuses) the data set under .cascadian/bench/data-<rows>/, builds a
base warehouse once (our loader, the reference files, a full dbt build), checks the
yardstick against the marts, then measures every step REPS times, interleaved (the order
rotates each repetition), each in a fresh subprocess with its own CASCADIAN_HOME (chDB
admits one process per data directory), and reports medians and the peak RSS of each
step's process (from wait4). Steps:

    load_ours        dataset files -> raw.order_filled through ingest.goldsky_files.load_directory
    load_engine      the engine's own INSERT INTO raw.order_filled SELECT ... FROM file(...)
    build_dbt        run_dbt(build --full-refresh, models only), dbt start-up included
    build_yardstick  bench/yardstick.sql, engine start-up included
    increment        +1 day: load the delta files and the newer resolution map, then
                     run_dbt(build) (incremental), on a copy of the base warehouse
    pandas           bench/pandas_loop.py on a copy of the base warehouse
    health           `runner.py health` wall time (when the runner has that command)

With --write-docs the results go to the section "Scale benchmark (issue 8), <rows> rows" of
docs/performance.md (one section per size; every other section of the file is kept), and
`--from-results` re-renders that section from the last run's .cascadian/bench/run-<rows>/
results.json without measuring again. `--base-load engine` fills the base warehouse with the
engine's file load instead of ours (faster at 10M; the stage breakdown is then missing), and
`--steps` measures a subset (at 10M on this machine: the build, yardstick and increment;
`--steps ""` builds the base warehouse and stops).

History independence (issue 12): the nightly cost must follow the day's fills, not the
history. `--history-rows N` also builds a base warehouse on the newest history files holding at least
N rows of this run's own history, replays this run's own delta day on it and measures that
increment as the step `increment_history`, interleaved with the others, so the section
"History independence" compares the same night on two histories part by part from one run:

    python -m bench.run --rows 10000000 --history-rows 1000000 --write-docs

(A separate small run with `--delta-rows` equal to a large run's delta is still paired with
that run's results, as before: two runs, so the machine's load between them is in the ratio.)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ingest.fill_contract import OPTIONAL_COLUMNS, REQUIRED_COLUMNS

PROJECT_ROOT = Path(__file__).resolve().parent.parent
BENCH_ROOT = PROJECT_ROOT / ".cascadian" / "bench"
DOCS = PROJECT_ROOT / "docs" / "performance.md"
SECTION = "## Scale benchmark"  # + ", <rows> rows": one section per size
HISTORY_SECTION = "## History independence"

# Models only: dbt's data and unit tests are not part of the timed build (say so in the docs).
BUILD_FULL = ["build", "--full-refresh", "--exclude", "test_type:data", "test_type:unit"]
BUILD_INCREMENTAL = ["build", "--exclude", "test_type:data", "test_type:unit"]
STEPS = (
    "load_ours",
    "load_engine",
    "build_dbt",
    "build_yardstick",
    "increment",
    "increment_history",
    "pandas",
    "health",
)
REFERENCE_FILES = ("category_definitions.json", "markets.jsonl", "expanded_resolution_map.json")
# The raw table's columns the engine's own load fills: the dataset's and the contract version.
RAW_COLUMNS = (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS, "contract_version")
# Peak RSS of the pandas loop per fill row (with the 0.5 GB added below, an upper bound):
# 6.3 GB at 10M rows (646 B/row) on 2026-11-29 for positions and the category mart; 7.5 GB
# (748 B/row) on 2026-12-07 with the daily rows and the leaderboard too (the bench's
# `pandas` step, peak RSS of the process). Used to decide whether a size would fit in
# memory at all.
PANDAS_BYTES_PER_ROW = 750
GB = 1024**3

# Issue 12's targets (issue 8's, tightened), stated for 10M rows.
TARGETS = {
    "build": 1.3,  # full build <= 1.3 x yardstick (at 10M)
    "increment": 0.15,  # increment <= 0.15 x full build
    "history": 1.3,  # the same delta day on a 10M history <= 1.3 x on a 1M history
    "load": 0.9,  # our load >= 0.9 x the engine's file load (rows/s)
    "pandas": 4.0,  # >= 4 x faster than the pandas loop (at 10M), with less memory
    "memory_gb": 8.0,  # peak RSS of any step (at 10M)
    "health_s": 3.0,  # runner.py health
}


# ---------------------------------------------------------------------------------------
# child side: one measured step in this (fresh) process
# ---------------------------------------------------------------------------------------


def _child_settings():
    from pipeline.config import load_settings

    return load_settings()


def _load_references(ch, data_dir: Path) -> float:
    from ingest import reference_files

    started = time.monotonic()
    for name in REFERENCE_FILES:
        reference_files.load_reference_file(ch, data_dir / name)
    return time.monotonic() - started


def _dbt(settings, args: list[str]) -> dict[str, Any]:
    from pipeline.dbt_chdb import run_dbt

    started = time.monotonic()
    outcome = run_dbt(settings, args)
    result = {
        "seconds": time.monotonic() - started,
        "dbt_success": outcome.success,
        "dbt_counts": outcome.counts(),
        "dbt_failures": [f"{f['name']}: {f['message']}" for f in outcome.failures][:5],
        "dbt_error": outcome.error,
        "dbt_slowest": sorted(((r["seconds"], r["name"]) for r in outcome.results), reverse=True)[:6],
        "dbt_nodes_seconds": sum(r["seconds"] for r in outcome.results),
    }
    if not outcome.success:
        raise RuntimeError(f"dbt {' '.join(args)} failed: {result['dbt_failures'] or outcome.error}")
    return result


def _timed_load(ch, fills_dir: Path) -> dict[str, Any]:
    """Our loader (load_directory) with the seconds of each of its stages, summed over the
    files as load_file records them (FileLoad.phases): hash = file hash and manifest
    lookup; parse = the one pass that parses, validates, converts and writes the rows
    (sorted) into the staging table; dedup = rows, distinct ids and time range of the
    written rows (plus the first-occurrence pass when a file repeats ids); publish = the
    parts attached to raw.order_filled, or inserted minus the ids stored already; other =
    column check, row counts and the manifest row."""
    from ingest import goldsky_files as gf

    started = time.monotonic()
    report = gf.load_directory(ch, fills_dir)
    seconds = time.monotonic() - started
    if report.rejected:
        raise RuntimeError(f"rejected: {[f.error for f in report.rejected]}")
    phases: dict[str, float] = {}
    for f in report.files:
        for stage, secs in (getattr(f, "phases", None) or {}).items():
            phases[stage] = phases.get(stage, 0.0) + secs
    return {
        "seconds": seconds,
        "rows": report.rows_new,
        "phases": {k: round(v, 3) for k, v in phases.items()} or None,
        "routes": sorted({f.route for f in report.files if getattr(f, "route", None)}),
    }


def load_base(ch, fills_dir: Path, how: str) -> dict[str, Any]:
    """The history into a base warehouse's raw table, by our loader (its stage times) or by
    the engine's file load (`how` = "engine"); either way the base ends as our loader leaves
    it: with the fill-id index. Without it the first load into each clone of the base
    indexes the whole history (about 4 s at 10M), which an increment would then count."""
    from ingest import fill_store
    from ingest.tables import ensure_tables

    ensure_tables(ch)
    if how != "engine":
        return _timed_load(ch, fills_dir)
    started = time.monotonic()
    ch.command(engine_load_sql(fills_dir))
    seconds = time.monotonic() - started
    fill_store.sync(ch)
    return {"seconds": seconds, "phases": None, "how": "engine"}


def child_setup(data: Path) -> dict[str, Any]:
    """The base warehouse every build/increment/pandas step starts from: history loaded
    by our loader (stage times recorded; BENCH_BASE_LOAD=engine uses the engine's file load
    instead, the same rows), reference files, one full dbt build; then the yardstick is
    checked against the marts and the marts' checksums kept for pandas."""
    from bench import yardstick
    from pipeline import warehouse

    settings = _child_settings()
    out: dict[str, Any] = {}
    with warehouse.connect(settings) as ch:
        out["load"] = load_base(ch, data / "fills", os.environ.get("BENCH_BASE_LOAD", "ours"))
        out["references_seconds"] = _load_references(ch, settings.data_dir)
    out["build"] = _dbt(settings, BUILD_FULL)
    with warehouse.connect(settings) as ch:
        out["yardstick_seconds"] = yardstick.run(ch)
        out["yardstick_vs_marts"] = yardstick.compare(ch)
        out["mart_checksums"] = yardstick.checksums(ch)
        out["raw_rows"] = warehouse.count_rows(ch, "raw.order_filled")
        out["raw_bytes"] = int(
            ch.command(
                "SELECT sum(bytes_on_disk) FROM system.parts WHERE database = 'raw' "
                "AND table = 'order_filled' AND active"
            )
        )
        out["engine_version"] = ch.command("SELECT version()")
        yardstick.drop(ch)
    return out


def child_load_ours(data: Path) -> dict[str, Any]:
    from ingest.tables import ensure_tables
    from pipeline import warehouse

    with warehouse.connect(_child_settings()) as ch:
        ensure_tables(ch)
        return _timed_load(ch, data / "fills")


def engine_load_sql(fills_dir: Path) -> str:
    """The engine's own file load of the same files into the same table, with only the
    conversions the raw contract needs (lower-case hex, integer amounts, UTC time)."""
    pattern = str(fills_dir / "*.parquet").replace("'", "\\'")
    return (
        f"INSERT INTO raw.order_filled ({', '.join(RAW_COLUMNS)}) "
        "SELECT id, toDateTime64(timestamp, 3, 'UTC'), lower(transaction_hash), lower(order_hash), "
        "lower(maker), lower(taker), maker_asset_id, taker_asset_id, "
        "toUInt64(maker_amount_filled), toUInt64(taker_amount_filled), toUInt64(fee), "
        "toUInt64(block_number), 'v1' "
        f"FROM file('{pattern}', 'Parquet') SETTINGS max_partitions_per_insert_block = 0"
    )


def child_load_engine(data: Path) -> dict[str, Any]:
    from ingest.tables import ensure_tables
    from pipeline import warehouse

    with warehouse.connect(_child_settings()) as ch:
        ensure_tables(ch)
        started = time.monotonic()
        ch.command(engine_load_sql(data / "fills"))
        seconds = time.monotonic() - started
        rows = warehouse.count_rows(ch, "raw.order_filled")
    return {"seconds": seconds, "rows": rows}


def child_build_dbt(data: Path) -> dict[str, Any]:
    return _dbt(_child_settings(), BUILD_FULL)


def child_build_yardstick(data: Path) -> dict[str, Any]:
    from bench import yardstick
    from pipeline import warehouse

    started = time.monotonic()  # engine start-up included, as dbt's is
    with warehouse.connect(_child_settings()) as ch:
        statements = yardstick.run(ch)
    return {"seconds": time.monotonic() - started, "statements": statements}


def child_increment(data: Path) -> dict[str, Any]:
    """The nightly increment on a copy of the base: the delta day's files through our
    loader, the three reference files (with the newer resolution map), an incremental
    dbt build."""
    from ingest import goldsky_files
    from pipeline import warehouse

    settings = _child_settings()
    started = time.monotonic()
    with warehouse.connect(settings) as ch:
        report = goldsky_files.load_directory(ch, data / "delta" / "fills")
        loaded = time.monotonic()
        shutil.copyfile(
            data / "delta" / "expanded_resolution_map.delta.json",
            settings.data_dir / "expanded_resolution_map.json",
        )
        refs = _load_references(ch, settings.data_dir)
    build = _dbt(settings, BUILD_INCREMENTAL)
    elapsed = time.monotonic() - started  # the count below is not part of the night
    with warehouse.connect(settings) as ch:
        # the grain's nightly work: the (wallet, market) rows the delta night wrote, of all pairs
        grain_written, grain_pairs = ch.query(
            "SELECT countIf(row_version = (SELECT max(row_version) FROM analytics.int_wallet_markets)), "
            "uniqExact(wallet, market_key) FROM analytics.int_wallet_markets"
        ).result_rows[0]
    return {
        "grain_rows_written": int(grain_written),
        "grain_pairs": int(grain_pairs),
        "seconds": elapsed,
        "load_seconds": loaded - started,
        "references_seconds": refs,
        "dbt_seconds": build["seconds"],
        "rows": report.rows_new,
        "dbt_slowest": build["dbt_slowest"],
        "dbt_nodes_seconds": build["dbt_nodes_seconds"],
    }


def child_verify(data: Path) -> dict[str, Any]:
    """After an increment (in its own process, so the increment's peak memory is its own):
    the marts against the yardstick on the same raw tables, i.e. against a full rebuild."""
    from bench import yardstick
    from pipeline import warehouse

    with warehouse.connect(_child_settings()) as ch:
        yardstick.run(ch)
        return {"seconds": 0.0, "equal_to_full_rebuild": yardstick.compare(ch)}


def child_pandas(data: Path) -> dict[str, Any]:
    from bench import pandas_loop
    from pipeline import warehouse

    started = time.monotonic()
    with warehouse.connect(_child_settings()) as ch:
        marts = pandas_loop.compute(ch)
    seconds = time.monotonic() - started
    return {"seconds": seconds, "checksums": pandas_loop.checksums(marts)}


def night_tests(settings: Any) -> dict[str, dict[str, float]]:
    """dbt's tests as nights run them, on a warehouse after a night (nightly/steps.py): the
    unit tests, which nights no longer run; the data tests every night runs; those of the
    whole history, the full-check night's. Per kind: tests, seconds of dbt's nodes (what they
    add inside the night's build) and of the invocation (dbt's start-up included)."""
    from nightly.steps import WHOLE_HISTORY_TESTS

    kinds = {
        "unit": ["test", "--select", "test_type:unit", "--exclude", "tag:needs_built_state"],
        "every_night": ["test", "--exclude", "test_type:unit", WHOLE_HISTORY_TESTS],
        "whole_history": ["test", "--select", WHOLE_HISTORY_TESTS],
    }
    out = {}
    for kind, args in kinds.items():
        run = _dbt(settings, args)
        out[kind] = {
            "tests": sum(run["dbt_counts"].values()),
            "nodes_seconds": round(run["dbt_nodes_seconds"], 2),
            "seconds": round(run["seconds"], 2),
        }
    return out


def child_night_tests(data: Path) -> dict[str, Any]:
    tests = night_tests(_child_settings())
    return {"seconds": sum(t["seconds"] for t in tests.values()), "night_tests": tests}


CHILDREN = {
    "setup": child_setup,
    "load_ours": child_load_ours,
    "load_engine": child_load_engine,
    "build_dbt": child_build_dbt,
    "build_yardstick": child_build_yardstick,
    "increment": child_increment,
    "pandas": child_pandas,
    "verify": child_verify,
    "night_tests": child_night_tests,
}


def child_main(step: str, data: Path, result: Path) -> int:
    os.environ["TZ"] = "UTC"
    time.tzset()
    fn = CHILDREN[step]
    try:
        out = fn(data)
        out["ok"] = True
    except Exception as exc:  # the parent reports it; the traceback is in the step's log
        import traceback

        traceback.print_exc()
        out = {"ok": False, "error": f"{type(exc).__name__}: {str(exc)[:500]}"}
    result.write_text(json.dumps(out, indent=2, default=str))
    return 0 if out["ok"] else 1


# ---------------------------------------------------------------------------------------
# parent side
# ---------------------------------------------------------------------------------------


def run_name(rows: int, delta_rows: int | None = None) -> str:
    """`<rows>`, or `<rows>-delta<n>` for a delta day of a fixed size."""
    return f"{rows}" if delta_rows is None else f"{rows}-delta{delta_rows}"


def ensure_data(rows: int, seed: int, delta_rows: int | None = None) -> tuple[Path, dict]:
    """The generated data set for `rows` (and the delta size), cached under .cascadian/bench/."""
    from bench import generate

    out = BENCH_ROOT / f"data-{run_name(rows, delta_rows)}"
    manifest_path = out / "manifest.json"
    if manifest_path.exists():
        manifest = json.loads(manifest_path.read_text())
        if (
            manifest.get("generator_version") == generate.GENERATOR_VERSION
            and manifest.get("seed") == seed
            and manifest.get("rows") == rows
            and "delta" in manifest
            and manifest["delta"].get("matches_requested")
            == (delta_rows or generate.default_delta_rows(rows))
            and all(Path(f["file"]).exists() for f in manifest["history"]["files"])
        ):
            manifest["cached"] = True
            return out, manifest
    if out.exists():
        shutil.rmtree(out)
    print(f"generating {rows:,} rows into {out} ...", flush=True)
    manifest = generate.generate(out, rows, seed=seed, delta_day=True, delta_rows=delta_rows)
    manifest["cached"] = False
    return out, manifest


def _link_tree(src: Path, dst: Path) -> None:
    """`dst` as a copy of `src` whose files are hard links (the data sets are gigabytes)."""
    shutil.copytree(src, dst, copy_function=os.link)


def newest_history(data: Path, manifest: dict, rows: int) -> tuple[Path, dict]:
    """A smaller history for the history-independence measure: the newest history files of
    `data` holding at least `rows` rows, with `data`'s own reference files and delta day.

    Replaying the same delta files on the newest part of the same history means the two
    nights differ only by the older history, which is what the measure is about. A history
    generated separately at the smaller size has its own universe (the generator makes one
    wallet per six rows), so the same-size day would touch a different number of pairs.
    Cached under .cascadian/bench/ next to `data`; the files are hard links."""
    files = manifest["history"]["files"]
    kept: list[dict] = []
    for f in reversed(files):
        if sum(k["rows"] for k in kept) >= rows:
            break
        kept.insert(0, f)
    out = BENCH_ROOT / f"{data.name}-newest{rows}"
    manifest_path = out / "manifest.json"
    if manifest_path.exists():
        cached = json.loads(manifest_path.read_text())
        if cached.get("newest_of") == manifest["rows"] and cached.get("source") == {
            k: manifest.get(k) for k in ("generator_version", "seed", "history", "delta")
        }:
            cached["cached"] = True
            return out, cached
    if out.exists():
        shutil.rmtree(out)
    (out / "fills").mkdir(parents=True)
    for f in kept:
        os.link(f["file"], out / "fills" / Path(f["file"]).name)
    for sub in ("data", "delta"):
        _link_tree(data / sub, out / sub)

    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    first = pq.read_table(kept[0]["file"], columns=["timestamp"]).column("timestamp")
    first_day = time.strftime("%Y-%m-%d", time.gmtime(pc.min(first).as_py()))
    small = {
        **{k: v for k, v in manifest.items() if k not in ("history", "rows", "seconds", "cached")},
        "rows": sum(f["rows"] for f in kept),
        "newest_of": manifest["rows"],
        "source": {k: manifest.get(k) for k in ("generator_version", "seed", "history", "delta")},
        "history": {
            "first_day": first_day,
            "last_day": manifest["history"]["last_day"],
            "files": [{"file": str(out / "fills" / Path(f["file"]).name), "rows": f["rows"]} for f in kept],
        },
    }
    manifest_path.write_text(json.dumps(small, indent=2) + "\n")
    small["cached"] = False
    return out, small


def child_env(home: Path, data: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CLICKHOUSE_", "GOLDSKY_", "CASCADIAN_", "DBT_"))
        and k not in ("DATA_DIR", "REPORTS_DIR", "POSTGRES_URL")
    }
    env.update(
        {
            "TZ": "UTC",
            "CASCADIAN_HOME": str(home),
            "DATA_DIR": str(home / "data"),
            "REPORTS_DIR": str(home / "reports"),
            "GOLDSKY_SOURCE": "dataset",
            "GOLDSKY_DATASET_DIR": str(data / "fills"),
            "LOG_LEVEL": "WARNING",
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
            "GX_ANALYTICS_ENABLED": "false",
            "PYTHONPATH": str(PROJECT_ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
        }
    )
    return env


def _is_part_file(path: Path, base: Path) -> bool:
    """A file inside a MergeTree data part (<home>/chdb/store/<xyz>/<table uuid>/<part>/...)."""
    parts = path.relative_to(base).parts
    return len(parts) >= 6 and parts[0] == "chdb" and parts[1] == "store"


def fresh_home(home: Path, data: Path, base: Path | None = None) -> None:
    """A step's CASCADIAN_HOME: empty (data files only), or a clone of the base warehouse.
    A clone hard-links the files of data parts, which the engine never edits in place (it
    writes new parts and unlinks old ones), and copies everything else (metadata, the lock
    file): cloning the 10M base then takes a second instead of copying 8 GB."""
    if home.exists():
        shutil.rmtree(home)
    if base is not None:

        def clone(src: str, dst: str) -> None:
            if _is_part_file(Path(src), base):
                os.link(src, dst)
            else:
                shutil.copy2(src, dst)

        shutil.copytree(base, home, symlinks=True, copy_function=clone)
    else:
        (home / "data").mkdir(parents=True)
        for name in REFERENCE_FILES:
            shutil.copyfile(data / "data" / name, home / "data" / name)


def run_process(cmd: list[str], env: dict[str, str], log: Path) -> tuple[int, float, int]:
    """Run `cmd`; returns (exit code, wall seconds, peak RSS in bytes of that process)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as fh:
        started = time.monotonic()
        proc = subprocess.Popen(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT, cwd=PROJECT_ROOT)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.monotonic() - started
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped by wait4 already
    return proc.returncode, wall, usage.ru_maxrss * 1024


def run_child(step: str, home: Path, data: Path, root: Path, tag: str) -> dict:
    result = root / "results" / f"{tag}.json"
    result.parent.mkdir(parents=True, exist_ok=True)
    result.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "bench.run", "--child", step, "--data", str(data), "--result", str(result)]
    code, wall, rss = run_process(cmd, child_env(home, data), root / "logs" / f"{tag}.log")
    out = json.loads(result.read_text()) if result.exists() else {"ok": False, "error": f"exit {code}"}
    out.update(wall=wall, peak_rss=rss, exit_code=code, log=str(root / "logs" / f"{tag}.log"))
    return out


def health_available(env: dict[str, str]) -> bool:
    proc = subprocess.run(
        [sys.executable, "runner.py", "health", "--help"],
        env=env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return proc.returncode == 0


def run_health(home: Path, data: Path, root: Path, tag: str) -> dict:
    log = root / "logs" / f"{tag}.log"
    code, wall, rss = run_process([sys.executable, "runner.py", "health"], child_env(home, data), log)
    # exit 0 healthy, 1 warning, 2 critical: each is a finished healthcheck
    import re

    found = re.findall(r"overall: (\w+).* in ([0-9.]+)s", log.read_text(errors="replace"))
    return {
        "ok": code in (0, 1, 2),
        "seconds": wall,
        "wall": wall,
        "peak_rss": rss,
        "exit_code": code,
        "log": str(log),
        "overall": found[-1][0] if found else None,
        "checks_seconds": float(found[-1][1]) if found else None,
    }


def mem_available() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {"nproc": os.cpu_count(), "python": platform.python_version()}
    try:
        text = Path("/proc/cpuinfo").read_text()
        info["cpu"] = next(
            line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("model name")
        )
    except (OSError, StopIteration):
        info["cpu"] = platform.processor() or "unknown"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                info["memory_gb"] = round(int(line.split()[1]) / 1024**2, 1)
    except OSError:
        pass
    for pkg in ("chdb", "dbt-core", "dbt-clickhouse", "clickhouse-connect", "pandas", "pyarrow"):
        try:
            from importlib.metadata import version

            info[pkg] = version(pkg)
        except Exception:
            info[pkg] = "?"
    info["load_average"] = os.getloadavg()
    return info


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def summarize(results: dict[str, list[dict]]) -> dict[str, dict]:
    out = {}
    for step, reps in results.items():
        ok = [r for r in reps if r.get("ok")]
        secs = [r["seconds"] for r in ok]
        entry = {
            "reps": len(ok),
            "failed": len(reps) - len(ok),
            "median_s": _median(secs),
            "min_s": min(secs) if secs else None,
            "max_s": max(secs) if secs else None,
            "peak_rss_gb": max((r["peak_rss"] for r in reps), default=0) / GB,
            "errors": [r.get("error") for r in reps if not r.get("ok")][:2],
        }
        rows = [r.get("rows") for r in ok if r.get("rows")]
        if step.startswith("load_") and rows and entry["median_s"]:
            entry["rows"] = rows[0]
            entry["rows_per_s"] = rows[0] / entry["median_s"]
        for key in ("load_seconds", "references_seconds", "dbt_seconds"):
            vals = [r[key] for r in ok if key in r]
            if vals:
                entry[f"median_{key}"] = _median(vals)
        stages = [r["phases"] for r in ok if r.get("phases")]
        if stages:  # our loader's stages, median over the repetitions
            entry["median_phases"] = {
                k: round(_median([p.get(k, 0.0) for p in stages]), 3) for k in stages[0]
            }
        out[step] = entry
    return out


def ratios(summary: dict[str, dict], rows: int) -> list[dict]:
    """Each target (issue 12): the measured ratio, met or missed and by how much."""

    def s(step, key="median_s"):
        return (summary.get(step) or {}).get(key)

    checks = []

    def add(name, target, value, ok, how, note=""):
        checks.append({"target": name, "goal": target, "value": value, "met": ok, "how": how, "note": note})

    def at_most(name: str, key: str, r: float, value: str, over: str = "") -> None:
        """A ratio whose target, TARGETS[key], is an upper bound."""
        goal = TARGETS[key]
        add(name, f"<= {goal}x", value, r <= goal, "met" if r <= goal else f"missed by {r / goal:.2f}x{over}")

    build, yard = s("build_dbt"), s("build_yardstick")
    if build and yard:
        r = build / yard
        over = f" ({build - TARGETS['build'] * yard:.1f} s over)"
        at_most(f"full build <= {TARGETS['build']} x yardstick", "build", r, f"{r:.2f}x", over)
    inc = s("increment")
    if inc and build:
        r = inc / build
        rd = s("increment", "median_dbt_seconds") / build if s("increment", "median_dbt_seconds") else None
        value = f"{r:.2f}x" + (f" (dbt alone {rd:.2f}x)" if rd else "")
        at_most(f"increment <= {TARGETS['increment']} x full build", "increment", r, value)
    small = s("increment_history")
    if inc and small:
        r = inc / small
        value = f"{r:.2f}x ({inc:.1f} s vs {small:.1f} s)"
        at_most(
            f"same delta day, this history <= {TARGETS['history']} x on the small history",
            "history",
            r,
            value,
        )
    ours, eng = s("load_ours", "rows_per_s"), s("load_engine", "rows_per_s")
    if ours and eng:
        r = ours / eng
        add(
            "load >= 0.9 x engine file load",
            ">= 0.9x",
            f"{r:.2f}x ({ours:,.0f} vs {eng:,.0f} rows/s)",
            r >= TARGETS["load"],
            "met" if r >= TARGETS["load"] else f"missed: {r:.2f}x < {TARGETS['load']}x",
        )
    pd_s = s("pandas")
    if pd_s and build and "build_dbt" in summary:
        r = pd_s / build
        mem_ok = summary["build_dbt"]["peak_rss_gb"] < summary["pandas"]["peak_rss_gb"]
        ok = r >= TARGETS["pandas"] and mem_ok
        add(
            ">= 4 x faster than pandas, less memory",
            ">= 4x, less RSS",
            f"{r:.2f}x; RSS {summary['build_dbt']['peak_rss_gb']:.2f} vs {summary['pandas']['peak_rss_gb']:.2f} GB",
            ok,
            "met" if ok else (f"missed: {r:.2f}x < 4x" if r < TARGETS["pandas"] else "missed on memory"),
        )
    peaks = {k: v["peak_rss_gb"] for k, v in summary.items() if v.get("peak_rss_gb")}
    if peaks:
        top = max(peaks, key=peaks.get)
        ok = peaks[top] <= TARGETS["memory_gb"]
        add(
            "peak memory <= 8 GB per step",
            "<= 8 GB",
            f"{peaks[top]:.2f} GB ({top})",
            ok,
            "met" if ok else f"missed by {peaks[top] - TARGETS['memory_gb']:.2f} GB",
        )
    h = s("health")
    if h:
        ok = h <= TARGETS["health_s"]
        add(
            "runner.py health <= 3 s",
            "<= 3 s",
            f"{h:.2f} s",
            ok,
            "met" if ok else f"missed by {h - TARGETS['health_s']:.2f} s",
        )
    return checks


def _fmt(v: float | None, spec: str = ".2f") -> str:
    return "–" if v is None else format(v, spec)


STEP_TEXT = {
    "load_ours": "dataset files → raw.order_filled, our loader (`load_directory`)",
    "load_engine": "same files, engine's own `INSERT … SELECT FROM file()`",
    "build_dbt": "full dbt build (`--full-refresh`, models only), dbt start-up included",
    "build_yardstick": "the same marts by hand-written statements (bench/yardstick.sql), engine start-up included",
    "increment": "+1 day: delta files + reference files + incremental `dbt build`",
    "increment_history": "the same-size +1 day on the small history (`--history-rows`)",
    "pandas": "the same marts by pandas + one Python loop per (wallet, token)",
    "health": "`runner.py health` (whole process)",
}


def table(summary: dict[str, dict]) -> str:
    lines = [
        "| step | what | median s | min–max s | rows/s | peak RSS GB | reps |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for step in STEPS:
        e = summary.get(step)
        if not e:
            continue
        extra = ""
        if step.startswith("increment") and e.get("median_dbt_seconds") is not None:
            extra = (
                f" (load {_fmt(e.get('median_load_seconds'), '.1f')} + refs "
                f"{_fmt(e.get('median_references_seconds'), '.1f')} + dbt {_fmt(e['median_dbt_seconds'], '.1f')})"
            )
        lines.append(
            f"| {step} | {STEP_TEXT[step]}{extra} | {_fmt(e['median_s'])} | "
            f"{_fmt(e['min_s'], '.1f')}–{_fmt(e['max_s'], '.1f')} | "
            f"{_fmt(e.get('rows_per_s'), ',.0f') if e.get('rows_per_s') else ''} | "
            f"{e['peak_rss_gb']:.2f} | {e['reps']}{' (' + str(e['failed']) + ' failed)' if e['failed'] else ''} |"
        )
    return "\n".join(lines)


def section_heading(report: dict) -> str:
    heading = f"{SECTION}, {report['rows']:,} rows"
    if report.get("delta_rows"):
        heading += f", delta day of {report['delta_rows']:,} matches"
    return heading


def history_comparison(report: dict) -> dict | None:
    """The same-size delta day on a small and on a large history. From one run when it was
    made with `--history-rows` (its `increment_history` step); else `report` is a small run
    made with `--delta-rows` equal to a larger run's default delta, and that larger run's
    results are looked up under .cascadian/bench/. None when there is no such pair."""
    from bench import generate

    if (report.get("results") or {}).get("increment_history"):
        small = {
            "rows": report["history_data"].get("rows", report["history_rows"]),
            "delta_rows": report["history_data"]["delta"]["matches_requested"],
            "data": report["history_data"],
            "results": {"increment": report["results"]["increment_history"]},
        }
        large, how = report, "one run, interleaved repetitions: the `increment_history` step above"
    else:
        small, delta = report, report.get("delta_rows")
        if not delta:
            return None
        for path in sorted(BENCH_ROOT.glob("run-*/results.json")):
            large = json.loads(path.read_text())
            if (
                not large.get("delta_rows")
                and large["rows"] > small["rows"]
                and generate.default_delta_rows(large["rows"]) == delta
            ):
                break
        else:
            return None
        how = (
            f"two runs: `python -m bench.run --rows {small['rows']} --delta-rows {delta} "
            f"--steps increment --write-docs` and the {large['rows']:,}-row run above"
        )
    out = {"small": small, "large": large, "how": how}
    for key in ("median_s", "median_load_seconds", "median_references_seconds", "median_dbt_seconds"):
        a = (summarize(small["results"]).get("increment") or {}).get(key)
        b = (summarize(large["results"]).get("increment") or {}).get(key)
        out[key] = (a, b, b / a if a and b else None)
    out["reps"] = tuple(sum(r.get("ok", False) for r in x["results"]["increment"]) for x in (small, large))
    return out


def render_history(cmp_: dict) -> str:
    small, large = cmp_["small"], cmp_["large"]
    ratio = cmp_["median_s"][2]
    ok = ratio is not None and ratio <= TARGETS["history"]
    rows = [
        ("whole increment", "median_s"),
        ("load of the delta files", "median_load_seconds"),
        ("reference files", "median_references_seconds"),
        ("incremental dbt build", "median_dbt_seconds"),
    ]
    if small["data"].get("newest_of") == large["rows"]:
        h = small["data"]["history"]
        what = (
            f"The {large['rows']:,}-row run's own delta day ({small['delta_rows']:,} matches, "
            f"{large['data']['delta']['rows']:,} fill rows, late fills and newly resolved conditions "
            f"included) replayed on its whole history and on the newest {small['rows']:,} rows of it "
            f"(its last {len(h['files'])} file(s), {h['first_day']} … {h['last_day']}: the same wallets, "
            "markets, reference files and delta files, so the two nights differ only by the older "
            "history)."
        )
    else:
        what = (
            f"The same-size delta day ({small['delta_rows']:,} matches: "
            f"{small['data']['delta']['rows']:,} vs {large['data']['delta']['rows']:,} fill rows, late "
            f"fills and newly resolved conditions included) replayed on a {small['rows']:,}-row and on "
            f"a {large['rows']:,}-row history."
        )
    lines = [
        HISTORY_SECTION,
        "",
        f"{what} Medians of {cmp_['reps'][0]} and {cmp_['reps'][1]} repetitions, from {cmp_['how']}.",
        "",
        f"| part | {small['rows']:,} history s | {large['rows']:,} history s | ratio |",
        "|---|---:|---:|---:|",
    ]
    for label, key in rows:
        a, b, r = cmp_[key]
        lines.append(f"| {label} | {_fmt(a)} | {_fmt(b)} | {_fmt(r)}x |")
    pairs = [
        _median([r["grain_rows_written"] for r in x["results"]["increment"] if "grain_rows_written" in r])
        for x in (small, large)
    ]
    if all(pairs):
        a, b = pairs
        lines.append(f"| (wallet, market) pairs the night rewrote | {a:,.0f} | {b:,.0f} | {_fmt(b / a)}x |")
    lines += [
        "",
        f"Target: the increment on the 10M history <= {TARGETS['history']}x the same day on the 1M "
        f"history: **{_fmt(ratio)}x, {'met' if ok else 'missed'}**.",
        "",
    ]
    return "\n".join(lines)


def write_history(report: dict) -> None:
    cmp_ = history_comparison(report)
    if cmp_ is not None:
        write_docs(render_history(cmp_))


def render_section(report: dict) -> str:
    m, rows = report["machine"], report["rows"]
    setup = report.get("setup", {})
    lines = [
        section_heading(report),
        "",
        f"Measured by `python -m bench.run --rows {rows} --reps {report['reps']}{report.get('options', '')}"
        f"{' --write-docs' if report.get('write_docs') else ''}` on {report['finished'][:16].replace('T', ' ')} UTC "
        f"({report['seconds'] / 60:.1f} min in all).",
        "",
        f"**Machine:** {m['nproc']} cores ({m.get('cpu', '?')}), {m.get('memory_gb', '?')} GB RAM, "
        f"Python {m['python']}, chDB {m['chdb']} (ClickHouse {setup.get('engine_version', '?')}), "
        f"dbt-core {m['dbt-core']} + dbt-clickhouse {m['dbt-clickhouse']}, pandas {m['pandas']}, "
        f"pyarrow {m['pyarrow']}. Load average {m['load_average'][0]:.1f} at the start and "
        f"{report['load_average_end'][0]:.1f} at the end: the cores were shared with other work, "
        "so absolute times are noisy; the ratios come from interleaved repetitions of one run.",
        "",
    ]
    d = report["data"]
    lines += [
        f"**Data** (`python -m bench.generate --rows {rows} --out DIR --delta-day"
        f"{' --delta-rows ' + str(report['delta_rows']) if report.get('delta_rows') else ''}`, "
        f"{d.get('seconds', '?')} s): {rows:,} fill events in "
        f"{len(d['history']['files'])} Parquet file(s) over {d['history']['first_day']} … "
        f"{d['history']['last_day']}, {d['wallets_in_universe']:,} wallets (Zipf), "
        f"{d['traded_conditions']:,} traded conditions (lognormal popularity), "
        f"{d['resolved_conditions']:,} resolved in the map "
        f"({d['traded_resolved_share']:.0%} of the traded); "
        f"{d['history']['whale_matches']} whale matches. Delta: {d['delta']['rows']:,} rows on "
        f"{d['delta']['day']} ({d['delta']['late_rows']:,} of them late, timestamped inside the "
        f"history) and {d['delta']['newly_resolved_conditions']} newly resolved conditions.",
        "",
    ]
    lines += [
        "**Commands**",
        "",
        "```bash",
        f".venv/bin/python -m bench.run --rows {rows} --reps {report['reps']}{report.get('options', '')} --write-docs",
        "# each measured step runs in its own process and CASCADIAN_HOME (copies of one base warehouse):",
        "#   load_ours        ingest.goldsky_files.load_directory(<data>/fills)",
        "#   load_engine      INSERT INTO raw.order_filled (...) SELECT ... FROM file('<data>/fills/*.parquet', 'Parquet')",
        "#   build_dbt        pipeline.dbt_chdb.run_dbt(settings, " + json.dumps(BUILD_FULL) + ")",
        "#   build_yardstick  bench/yardstick.sql (the same marts: CREATE TABLE ... AS SELECT, one view)",
        "#   increment        load_directory(<data>/delta/fills); reference files with the delta map; "
        "run_dbt(settings, " + json.dumps(BUILD_INCREMENTAL) + ")",
        "#   increment_history  the same increment on a copy of the --history-rows base warehouse",
        "#   pandas           bench/pandas_loop.py (one query, sort, one Python loop per (wallet, token))",
        "#   health           runner.py health",
        "```",
        "",
        (
            f"Medians of {report['reps']} interleaved repetitions (the step order rotates each repetition)"
            if report["reps"] > 1
            else "One repetition per step (the time budget of a 10M run on this machine): single "
            "measurements, not medians"
        )
        + "; peak RSS is the largest of the step's processes (wait4 `ru_maxrss`).",
        "",
        table(report["summary"]),
        "",
    ]
    lines += [
        "**Targets of issue 12**"
        + ("" if rows >= 10_000_000 else f" (the targets are stated for 10M rows; this run is {rows:,})"),
        "",
        "| target | measured | result |",
        "|---|---|---|",
    ]
    for c in report["checks"]:
        lines.append(f"| {c['target']} | {c['value']} | {'met' if c['met'] else '**' + c['how'] + '**'} |")
    lines.append("")
    notes = report.get("notes") or []
    if notes:
        lines += ["**Notes**", ""] + [f"- {n}" for n in notes] + [""]
    return "\n".join(lines)


def publish(section: str, write: bool, path: Path = DOCS) -> None:
    """How every bench module reports: its docs section on stdout, and with --write-docs in
    docs/performance.md too (write_docs: only that section is replaced)."""
    print(section)
    if write:
        write_docs(section, path)
        print(f"wrote {path}")


def write_docs(section: str, path: Path = DOCS) -> None:
    """Replace (or append) this size's section; every other `## ` section of the file (other
    sizes, other authors' sections) is kept."""
    heading = section.splitlines()[0].strip()
    text = path.read_text() if path.exists() else "# Performance\n"
    blocks: list[str] = []
    current: list[str] = []
    for line in text.splitlines(keepends=True):
        if line.startswith("## ") and current:
            blocks.append("".join(current))
            current = []
        current.append(line)
    if current:
        blocks.append("".join(current))
    replaced = False
    for i, block in enumerate(blocks):
        if block.splitlines()[0].strip() == heading:
            blocks[i] = section.rstrip() + "\n\n"
            replaced = True
    if not replaced:
        if blocks and not blocks[-1].endswith("\n\n"):
            blocks[-1] = blocks[-1].rstrip("\n") + "\n\n"
        blocks.append(section.rstrip() + "\n")
    path.write_text("".join(blocks).rstrip("\n") + "\n")


# What the stages of our loader's breakdown (FileLoad.phases) are.
LOAD_STAGES_TEXT = (
    "`hash` is the file's SHA-256 and the manifest lookup; `parse` is the one pass over each file "
    "that parses it, checks every row against the contract, converts the rows and writes them sorted "
    "by (maker, token_id, id) into a staging table shaped like raw.order_filled; `dedup` counts the "
    "written rows, their distinct ids and time range (and re-reads a file that repeats ids, keeping "
    "each id's first row); `publish` attaches the parts to raw.order_filled, or inserts them minus "
    "the ids stored already when the table has rows in the file's time range; `other` is the column "
    "check, row counts and the manifest row."
)
# The same for results.json files of the earlier three-pass loader (stage/validate/insert).
LOAD_STAGES_TEXT_V1 = (
    "`stage` parses each file with the engine into a table of nullable strings, `validate` runs the "
    "contract's checks over every row (and takes the file's time range), `insert` converts, drops ids "
    "already stored in the file's time window and writes the rows sorted by (maker, token_id, id); "
    "`other` is the file hash, the manifest and the column check."
)


def auto_notes(report: dict) -> list[str]:
    """What the numbers themselves say about misses (the 'why')."""
    notes = []
    setup = report.get("setup") or {}
    cmp_ = setup.get("yardstick_vs_marts") or {}
    if cmp_:
        eq = all(v.get("equal") for v in cmp_.values())
        notes.append(
            "The yardstick equals the marts exactly after the base build ("
            + ", ".join(f"{kind} {v['mart_rows']:,} rows" for kind, v in cmp_.items())
            + ", every documented column): "
            + ("yes." if eq else f"**NO**: {json.dumps(cmp_)}")
        )
    inc = report.get("increment_check")
    if inc and "error" in inc:
        notes.append(f"The check of the increment against a full rebuild failed to run: {inc['error']}")
    elif inc:
        eq = all(v.get("equal") for v in inc.values())
        notes.append(
            "After the increment the marts equal a full rebuild (the yardstick on the same raw "
            "tables, late fills and new resolutions included): "
            + ("yes." if eq else f"**NO**: {json.dumps(inc)}")
        )
    tested = report.get("night_tests")
    if tested and "error" in tested:
        notes.append(f"The night's dbt tests failed to run: {tested['error']}")
    elif tested:
        said = {
            "unit": "dbt's unit tests (nights no longer run them; the test suite does)",
            "every_night": "the data tests every night runs",
            "whole_history": "the whole history's data tests (the full-check night only)",
        }
        notes.append(
            "dbt's tests on the increment's warehouse, as a night would run them (once, after the "
            "first increment; seconds of the tests' queries, with dbt's start-up in brackets): "
            + "; ".join(
                f"{said[kind]}: {t['tests']} tests, {t['nodes_seconds']:.1f} s ({t['seconds']:.1f} s)"
                for kind, t in tested.items()
            )
            + "."
        )
    pc_ = report.get("pandas_check")
    if pc_ is not None:
        notes.append(
            "The pandas loop reproduces the marts' checksums (positions, PnL, amounts, marks, "
            "category counts, daily rows, leaderboard ranks): "
            + ("yes." if pc_ else "**NO** (see results.json).")
        )
    load_median = ((report.get("summary") or {}).get("load_ours") or {}).get("median_phases")
    phases = load_median or ((setup.get("load") or {}).get("phases"))
    if phases:
        total = sum(phases.values()) or 1
        where = "median of the measured `load_ours` repetitions" if load_median else "base load, one pass"
        notes.append(
            f"Where our loader's time goes ({where}): "
            + ", ".join(f"{k} {v:.1f} s ({v / total:.0%})" for k, v in phases.items())
            + f" ({total:.1f} s in all). "
            + (LOAD_STAGES_TEXT if "parse" in phases else LOAD_STAGES_TEXT_V1)
        )
    measured = [r for r in (report.get("results") or {}).get("build_dbt", []) if r.get("ok")]
    build = measured[0] if measured else (setup.get("build") or {})
    if build.get("dbt_slowest"):
        notes.append(
            (
                "Slowest dbt nodes in the measured full build (repetition 1): "
                if measured
                else "Slowest dbt nodes in the base full build: "
            )
            + ", ".join(f"{n} {s:.1f} s" for s, n in build["dbt_slowest"])
            + f"; dbt's own overhead (import, parse, per-node work outside the queries) was "
            f"{build['seconds'] - build.get('dbt_nodes_seconds', 0):.1f} s of its "
            f"{build['seconds']:.1f} s."
        )
    yard = [r for r in (report.get("results") or {}).get("build_yardstick", []) if r.get("ok")]
    ys = yard[0]["statements"] if yard else setup.get("yardstick_seconds")
    if ys:
        from bench import yardstick

        names = yardstick.statement_names()
        notes.append(
            f"The yardstick's {len(ys)} statements ("
            + ("repetition 1" if yard else "base")
            + "): "
            + ", ".join(
                f"{name.removeprefix('yardstick_')} {sec:.1f} s"
                for name, sec in zip(names, ys)
                if len(names) == len(ys)
            )
            + "."
        )
    inc = [r for r in (report.get("results") or {}).get("increment", []) if r.get("ok")]
    if inc:
        r = inc[0]
        notes.append(
            "Increment, repetition 1: slowest dbt nodes "
            + ", ".join(f"{n} {s:.1f} s" for s, n in r.get("dbt_slowest", []))
            + f"; dbt overhead {r['dbt_seconds'] - r.get('dbt_nodes_seconds', 0):.1f} s."
        )
    health = [r for r in (report.get("results") or {}).get("health", []) if r.get("checks_seconds")]
    if health:
        notes.append(
            "`runner.py health`: the checks themselves took "
            f"{statistics.median(r['checks_seconds'] for r in health):.2f} s (median, as the "
            "command reports it); the rest of the wall time is the Python process starting and "
            f"importing. Overall status here: {health[0]['overall']} (the benchmark warehouse has "
            "no recorded pipeline run, Postgres is not configured)."
        )
    for text in report.get("extra_notes", []):
        notes.append(text)
    return notes


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument(
        "--steps",
        default=",".join(STEPS),
        help="comma-separated subset of " + ",".join(STEPS) + ' ("": build the base warehouse only)',
    )
    parser.add_argument("--write-docs", action="store_true", help="write docs/performance.md's section")
    parser.add_argument(
        "--pandas-reps",
        type=int,
        default=None,
        help="repetitions of the pandas step (default: --reps; it is the slowest step by far)",
    )
    parser.add_argument(
        "--delta-rows",
        type=int,
        default=None,
        help="delta-day matches (default rows/100); with the size of a larger run's delta, "
        "also writes the history-independence comparison with that run",
    )
    parser.add_argument(
        "--history-rows",
        type=int,
        default=None,
        help="also measure this run's delta day on a history of this many rows (the step "
        "increment_history) and write the history-independence comparison from this run",
    )
    parser.add_argument("--keep", action="store_true", help="keep the per-step homes (disk!)")
    parser.add_argument(
        "--from-results",
        action="store_true",
        help="re-render the last run's results of this size (no measuring)",
    )
    parser.add_argument(
        "--base-load",
        choices=("ours", "engine"),
        default="ours",
        help="how the base warehouse is loaded (engine: faster, no stage breakdown)",
    )
    # internal: one measured step in this process
    parser.add_argument("--child", choices=sorted(CHILDREN), help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child_main(args.child, args.data, args.result)
    name = run_name(args.rows, args.delta_rows)

    if args.from_results:
        report = json.loads((BENCH_ROOT / f"run-{name}" / "results.json").read_text())
        report["summary"] = summarize(report["results"])
        report["checks"] = ratios(report["summary"], args.rows)
        report["notes"] = auto_notes(report)
        publish(render_section(report), args.write_docs)
        if args.write_docs:
            write_history(report)
        return 0

    from bench import generate

    seed = generate.DEFAULT_SEED if args.seed is None else args.seed
    steps = [s for s in args.steps.split(",") if s]
    unknown = set(steps) - set(STEPS)
    if unknown:
        parser.error(f"unknown steps: {', '.join(sorted(unknown))}")
    if args.history_rows is None:
        steps = [s for s in steps if s != "increment_history"]
    elif not 0 < args.history_rows < args.rows:
        parser.error("--history-rows must be smaller than --rows")
    left_out = [s for s in STEPS if s not in steps and s != "increment_history"]
    began = time.monotonic()
    report: dict[str, Any] = {
        "rows": args.rows,
        "delta_rows": args.delta_rows,
        "reps": args.reps,
        "history_rows": args.history_rows,
        "machine": machine(),
        "write_docs": args.write_docs,
        "extra_notes": [],
        "options": (f" --base-load {args.base_load}" if args.base_load != "ours" else "")
        + (f" --pandas-reps {args.pandas_reps}" if args.pandas_reps is not None else "")
        + (f" --steps {args.steps}" if args.steps != ",".join(STEPS) else "")
        + (f" --delta-rows {args.delta_rows}" if args.delta_rows else "")
        + (f" --history-rows {args.history_rows}" if args.history_rows else ""),
    }
    if left_out:
        report["extra_notes"].append(f"Not measured in this run (`--steps`): {', '.join(left_out)}.")
    data, report["data"] = ensure_data(args.rows, seed, args.delta_rows)
    root = BENCH_ROOT / f"run-{name}"
    if root.exists():
        shutil.rmtree(root)
    base = root / "base"
    fresh_home(base, data)
    print(
        f"setup: base warehouse in {base} ({'our' if args.base_load == 'ours' else 'engine'} load, "
        "reference files, full dbt build, checks) ...",
        flush=True,
    )
    os.environ["BENCH_BASE_LOAD"] = args.base_load
    setup = run_child("setup", base, data, root, "setup")
    report["setup"] = setup
    if not setup.get("ok"):
        print(f"setup failed: {setup.get('error')} (log: {setup['log']})", file=sys.stderr)
        return 2
    print(
        f"  yardstick equals marts: {all(v['equal'] for v in setup['yardstick_vs_marts'].values())}",
        flush=True,
    )
    # the small history: the newest part of this history with this run's delta day, its own
    # base warehouse, built the same way
    homes = dict.fromkeys(steps, (data, base))
    if "increment_history" in steps:
        small_data, report["history_data"] = newest_history(data, report["data"], args.history_rows)
        small_base = root / "base-history"
        fresh_home(small_base, small_data)
        print(
            f"setup: the {args.history_rows:,}-row history's base warehouse in {small_base} ...", flush=True
        )
        small_setup = run_child("setup", small_base, small_data, root, "setup-history")
        if not small_setup.get("ok"):
            print(f"setup failed: {small_setup.get('error')} (log: {small_setup['log']})", file=sys.stderr)
            return 2
        homes["increment_history"] = (small_data, small_base)

    if "health" in steps and not health_available(child_env(base, data)):
        steps.remove("health")
        report["extra_notes"].append("`runner.py health` is not available in this checkout: not measured.")
    pandas_reps = args.reps if args.pandas_reps is None else args.pandas_reps
    if "pandas" in steps:
        need = PANDAS_BYTES_PER_ROW * args.rows + GB // 2
        if need > 0.8 * mem_available():
            steps.remove("pandas")
            report["extra_notes"].append(
                f"pandas loop not run at {args.rows:,} rows: it would need about {need / GB:.0f} GB "
                f"({PANDAS_BYTES_PER_ROW} bytes of peak RSS per fill row, measured at 1M-10M), more than "
                f"80 % of the {mem_available() / GB:.0f} GB available on this shared machine."
            )
        elif pandas_reps < args.reps:
            report["extra_notes"].append(
                f"pandas loop: {pandas_reps} repetition(s) only (it is the slowest step)."
            )

    if not steps:  # `--steps ""`: the base warehouses only, e.g. for profiling a night by hand
        print(f"no step to measure: the base warehouse is ready in {base}")
        return 0
    results: dict[str, list[dict]] = {s: [] for s in steps}
    for rep in range(args.reps):
        order = steps[rep % len(steps) :] + steps[: rep % len(steps)]
        for step in order:
            if step == "pandas" and rep >= pandas_reps:
                continue
            tag = f"{step}-{rep + 1}"
            home = root / tag
            step_data, step_base = homes[step]
            fresh_home(home, step_data, None if step.startswith("load_") else step_base)
            os.sync()  # the copy's (and the last step's) writeback must not land in this step's time
            if step == "health":
                res = run_health(home, step_data, root, tag)
            else:
                child = "increment" if step == "increment_history" else step
                res = run_child(child, home, step_data, root, tag)
            results[step].append(res)
            if step == "increment" and res.get("ok") and "increment_check" not in report:
                check = run_child("verify", home, data, root, f"verify-{rep + 1}")
                report["increment_check"] = check.get("equal_to_full_rebuild") or {
                    "error": check.get("error")
                }
                tested = run_child("night_tests", home, data, root, f"night-tests-{rep + 1}")
                report["night_tests"] = tested.get("night_tests") or {"error": tested.get("error")}
            if step == "pandas" and res.get("ok"):
                report["pandas_check"] = res["checksums"] == setup["mart_checksums"]
            status = (
                f"{res['seconds']:.2f} s"
                if res.get("ok")
                else f"FAILED ({res.get('error')}; log {res['log']})"
            )
            print(
                f"  rep {rep + 1}/{args.reps} {step:<16} {status:<12} peak RSS {res['peak_rss'] / GB:.2f} GB",
                flush=True,
            )
            if not args.keep:
                shutil.rmtree(home, ignore_errors=True)

    report["summary"] = summarize(results)
    report["checks"] = ratios(report["summary"], args.rows)
    report["load_average_end"] = os.getloadavg()
    report["seconds"] = time.monotonic() - began
    report["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
    report["results"] = results
    report["notes"] = auto_notes(report)
    (root / "results.json").write_text(json.dumps(report, indent=2, default=str))
    print()
    publish(render_section(report), args.write_docs)
    if args.write_docs:
        write_history(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
