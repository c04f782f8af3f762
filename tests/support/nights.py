"""Helpers for tests that run the nightly job over several deliveries (tests/test_grain_nights.py;
the same shapes as tests/test_incremental.py): a night's clock, gzip JSONL deliveries, marts
snapshots, and a full rebuild on a copy of the warehouse so the incremental one runs on."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import shutil
from pathlib import Path
from typing import Any

from pipeline import warehouse
from pipeline.config import Settings
from pipeline.dbt_chdb import run_dbt
from tests.support.settings import make_settings

FULL_REFRESH = ["build", "--full-refresh", "--quiet", "--exclude", "tag:needs_built_state"]


def night_clock(day: dt.date) -> dt.datetime:
    """The run's clock on the morning after `day`'s fills: a current night."""
    return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(8), dt.UTC)


def read_rows(path: Path) -> list[dict]:
    with gzip.open(path, "rt") as fh:
        return [json.loads(line) for line in fh]


def write_rows(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress("".join(json.dumps(r) + "\n" for r in rows).encode(), mtime=0))


def snapshot(
    settings: Settings, tables: list[str], skip: tuple[str, ...] = ("updated_at",)
) -> dict[str, Any]:
    """Each analytics table as {"columns", "rows" (sorted)}, or the error text when it cannot
    be read (a model that does not exist yet), so one missing mart fails its own tests only."""
    out: dict[str, Any] = {}
    with warehouse.connect(settings) as ch:
        for table in tables:
            try:
                cols = [
                    c
                    for c in ch.query(f"SELECT * FROM analytics.{table} LIMIT 0").column_names
                    if c not in skip
                ]
                rows = ch.query(f"SELECT {', '.join(cols)} FROM analytics.{table}").result_rows
            except Exception as ex:
                out[table] = f"{type(ex).__name__}: {ex}"[:500]
                continue
            out[table] = {"columns": cols, "rows": sorted(map(tuple, rows), key=repr)}
    return out


def rows_as_dicts(snap: dict[str, Any], table: str) -> list[dict]:
    got = snap[table]
    assert isinstance(got, dict), f"{table}: {got}"
    return [dict(zip(got["columns"], r, strict=True)) for r in got["rows"]]


def rebuilt_copy(settings: Settings, root: Path, tables: list[str]) -> tuple[bool, Any, dict[str, Any]]:
    """`dbt build --full-refresh` on a copy of the warehouse (engine data and dbt's state),
    leaving the original to go on incrementally. Returns (success, failures, snapshot)."""
    if root.exists():
        shutil.rmtree(root)
    shutil.copytree(settings.home, root / "home", symlinks=True)
    copy = make_settings(root, GOLDSKY_SOURCE="dataset", DATA_DIR=str(settings.data_dir))
    outcome = run_dbt(copy, FULL_REFRESH)
    snap = snapshot(copy, tables)
    return outcome.success, (outcome.failures if not outcome.success else None), snap
