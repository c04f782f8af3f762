"""Where runs are recorded and how to read them back.

Each run writes `REPORTS_DIR/<YYYY-MM-DD>/<run_id>/summary.json` (the record of last resort:
it exists even when the warehouse is what failed) and rows in `ops.runs` / `ops.run_steps`.
Readers that must not open the embedded engine (the healthcheck while a run holds it, the
report notebook) read the files.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path
from typing import Any

from clickhouse_connect.driver.client import Client

from pipeline import warehouse
from pipeline.config import Settings
from pipeline.redact import redact_obj
from pipeline.runlock import process_alive

log = logging.getLogger(__name__)

RUNS_DDL = """
CREATE TABLE IF NOT EXISTS ops.runs
(
    run_id      String,
    trigger     LowCardinality(String),
    status      LowCardinality(String),
    started_at  DateTime64(3, 'UTC'),
    finished_at DateTime64(3, 'UTC'),
    summary     String
)
ENGINE = MergeTree
ORDER BY started_at
"""
RUN_STEPS_DDL = """
CREATE TABLE IF NOT EXISTS ops.run_steps
(
    run_id     String,
    step       LowCardinality(String),
    status     LowCardinality(String),
    started_at Nullable(DateTime64(3, 'UTC')),
    seconds    Float64,
    rows_in    Nullable(Int64),
    rows_out   Nullable(Int64),
    message    String,
    error      Nullable(String)
)
ENGINE = MergeTree
ORDER BY (run_id, step)
"""


def ensure_tables(client: Client) -> None:
    warehouse.ensure_databases(client)
    client.command(RUNS_DDL)
    client.command(RUN_STEPS_DDL)


def run_folder(settings: Settings, run_id: str, started_at_iso: str) -> Path:
    return settings.reports_dir / started_at_iso[:10] / run_id


RUNNING = "running"


def summary_path(settings: Settings, run_id: str, started_at_iso: str) -> Path:
    return run_folder(settings, run_id, started_at_iso) / "summary.json"


def summary_exists(settings: Settings, run_id: str, started_at_iso: str) -> bool:
    return summary_path(settings, run_id, started_at_iso).exists()


def read_summary(settings: Settings, run_id: str, started_at_iso: str) -> dict[str, Any] | None:
    try:
        return json.loads(summary_path(settings, run_id, started_at_iso).read_text())
    except (OSError, json.JSONDecodeError):
        return None


def summary_files(settings: Settings) -> list[Path]:
    """Every run's summary file, oldest first (run ids start with their UTC start time)."""
    if not settings.reports_dir.is_dir():
        return []
    return sorted(settings.reports_dir.glob("*/*/summary.json"), key=lambda p: p.parent.name)


def _as_seen_now(run: dict[str, Any]) -> dict[str, Any]:
    """A `running` record whose process is gone is shown as interrupted (the next run
    records it so for good)."""
    if run.get("status") == RUNNING and not process_alive(run.get("pid")):
        return {**run, "status": "interrupted", "error": run.get("error") or "its process is gone"}
    return run


def recent_runs(settings: Settings, limit: int = 20, finished_only: bool = False) -> list[dict[str, Any]]:
    """The newest `limit` run summaries, newest first (a run in progress included, unless
    `finished_only`)."""
    runs = []
    for path in reversed(summary_files(settings)):
        try:
            run = _as_seen_now(json.loads(path.read_text()))
        except (OSError, json.JSONDecodeError):
            continue  # a damaged file: not a run to report
        if finished_only and run.get("status") == RUNNING:
            continue
        runs.append(run)
        if len(runs) >= limit:
            break
    return runs


def last_run(settings: Settings) -> dict[str, Any] | None:
    """The newest finished run (a run in progress is not the last run)."""
    runs = recent_runs(settings, limit=1, finished_only=True)
    return runs[0] if runs else None


def write_summary(settings: Settings, run: dict[str, Any]) -> Path:
    """Write `summary.json` atomically (readers never see half a file), secrets masked."""
    folder = run_folder(settings, run["run_id"], run["started_at"])
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "summary.json"
    partial = path.with_suffix(".json.tmp")
    partial.write_text(json.dumps(redact_obj(run), indent=2, default=str))
    partial.replace(path)
    return path


def record_run(settings: Settings, run: dict[str, Any]) -> Path:
    """Write the run's summary file, then its rows in `ops` (best effort: the file is the
    record of last resort when the warehouse is what failed)."""
    run = redact_obj(run)
    path = write_summary(settings, run)
    try:
        with warehouse.connect(settings) as ch:
            ensure_tables(ch)
            ch.insert(
                "ops.runs",
                [
                    [
                        run["run_id"],
                        run["trigger"],
                        run["status"],
                        dt.datetime.fromisoformat(run["started_at"]),
                        dt.datetime.fromisoformat(run["finished_at"]),
                        json.dumps(run, default=str),
                    ]
                ],
                column_names=["run_id", "trigger", "status", "started_at", "finished_at", "summary"],
            )
            if run["steps"]:
                ch.insert(
                    "ops.run_steps",
                    [
                        [
                            run["run_id"],
                            s["name"],
                            s["status"],
                            dt.datetime.fromisoformat(s["started_at"]) if s["started_at"] else None,
                            s["seconds"],
                            s["rows_in"],
                            s["rows_out"],
                            s["message"] or "",
                            s["error"],
                        ]
                        for s in run["steps"]
                    ],
                    column_names=[
                        "run_id",
                        "step",
                        "status",
                        "started_at",
                        "seconds",
                        "rows_in",
                        "rows_out",
                        "message",
                        "error",
                    ],
                )
    except Exception as exc:
        log.error(
            "run not recorded in the warehouse", extra={"ctx": {"error": str(exc), "summary": str(path)}}
        )
    return path
