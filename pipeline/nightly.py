"""The nightly job: which steps run, in what order, and how a run is recorded."""
from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path
from typing import Any

from ingest import goldsky_files, reference_files
from ingest.tables import ensure_tables
from pipeline import warehouse
from pipeline.config import Settings
from pipeline.dbt_chdb import run_dbt
from pipeline.steps import RunContext, SkipStep, Step, StepResult, new_run_id, run_steps, summary

log = logging.getLogger(__name__)

REFERENCE_FILES = (
    reference_files.CATEGORY_DEFINITIONS,
    reference_files.MARKETS,
    reference_files.RESOLUTION_MAP,
)

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


def sample_anchor(now: dt.datetime) -> dt.date:
    """The sample's last day of fills: the last complete UTC day, so no fill lies in the
    future and the newest one is under 24 h old, as after a healthy night."""
    return (now.astimezone(dt.timezone.utc) - dt.timedelta(days=1)).date()


def prepare_sample(settings: Settings, anchor: dt.date) -> dict[str, Any]:
    """Generate the sample world ending on `anchor`: fills files, and reference files when
    DATA_DIR holds no files of a user's (only generated ones, marked by `.sample`)."""
    from ingest import sample_data

    data_dir = settings.data_dir
    user_files = [n for n in REFERENCE_FILES if (data_dir / n).exists()]
    write_reference = not user_files or (data_dir / sample_data.SAMPLE_MARKER).exists()
    fills_dir = settings.sample_dir / "fills"
    if write_reference:
        summary_ = sample_data.generate_sample(fills_dir, data_dir, anchor,
                                               days=settings.sample_days, seed=settings.sample_seed)
        return {"anchor": str(summary_.anchor), "fill_files": len(summary_.fill_files),
                "reference_files": "generated"}
    files = sample_data.generate_fills(fills_dir, anchor, days=settings.sample_days,
                                       seed=settings.sample_seed)
    return {"anchor": str(anchor), "fill_files": len(files),
            "reference_files": f"kept the user's files in {data_dir}"}


def fills_directory(settings: Settings) -> Path:
    return settings.sample_dir / "fills" if settings.goldsky_source == "sample" else settings.goldsky_dataset_dir


def step_ingest_fills(ctx: RunContext) -> StepResult:
    settings = ctx.settings
    details: dict[str, Any] = {"source": settings.goldsky_source}
    if settings.goldsky_source == "sample":
        details["sample"] = prepare_sample(settings, sample_anchor(ctx.started_at))
    directory = fills_directory(settings)
    if not goldsky_files.discover(directory):
        raise SkipStep(f"no dataset files under {directory}")
    with warehouse.connect(settings) as ch:
        ensure_tables(ch)
        report = goldsky_files.load_directory(ch, directory)
        total = warehouse.count_rows(ch, "raw.order_filled")
    details.update(files_loaded=sum(f.status == "loaded" for f in report.files),
                   files_skipped=sum(f.status == "skipped" for f in report.files),
                   files_rejected=[f.error for f in report.rejected], raw_rows=total)
    result = StepResult(rows_in=report.rows_in, rows_out=report.rows_new, details=details,
                        message=f"{details['files_loaded']} files loaded, {details['files_skipped']} "
                                f"already loaded, {len(report.rejected)} rejected")
    result.warnings += [f.error for f in report.rejected if f.error]
    if report.rejected:
        result.status = "failed"
        result.error = "; ".join(f.error for f in report.rejected if f.error)
    return result


def step_load_reference(ctx: RunContext) -> StepResult:
    present = [ctx.settings.data_dir / n for n in REFERENCE_FILES if (ctx.settings.data_dir / n).exists()]
    if not present:
        raise SkipStep(f"no reference files in {ctx.settings.data_dir}")
    loads, errors = [], []
    with warehouse.connect(ctx.settings) as ch:
        ensure_tables(ch)
        for path in present:
            try:
                loads.append(reference_files.load_reference_file(ch, path))
            except reference_files.ReferenceFileError as exc:
                errors.append(str(exc))
    result = StepResult(
        rows_in=sum(l.entries for l in loads), rows_out=sum(l.entries for l in loads),
        details={l.file_name: {"entries": l.entries, "resolved": l.resolved, "claimed": l.claimed}
                 for l in loads},
        warnings=[w for l in loads for w in l.warnings] + errors,
        message=f"{len(loads)} reference files loaded",
    )
    if errors:
        result.status, result.error = "failed", "; ".join(errors)
    return result


def step_dbt_build(ctx: RunContext) -> StepResult:
    outcome = run_dbt(ctx.settings, ["build", "--quiet"])
    with warehouse.connect(ctx.settings) as ch:
        marts = {t: warehouse.count_rows(ch, f"analytics.{t}") for t in MARTS
                 if warehouse.table_exists(ch, "analytics", t)}
        unknown = ch.query(
            "SELECT uniqExact(token_id), count() FROM analytics.fct_wallet_positions "
            "WHERE condition_id IS NULL").result_rows[0] if "fct_wallet_positions" in marts else (0, 0)
    details = {"dbt": outcome.counts(), "mart_rows": marts,
               "unknown_condition_tokens": int(unknown[0]), "unknown_condition_positions": int(unknown[1])}
    result = StepResult(rows_out=sum(marts.values()), details=details,
                        message=", ".join(f"{k} {v}" for k, v in sorted(outcome.counts().items())))
    if unknown[0]:
        result.warnings.append(f"{unknown[0]} traded tokens map to no known condition "
                               f"({unknown[1]} positions counted as Uncategorized)")
    if not outcome.success:
        result.status = "failed"
        failed = [f"{f['name']}: {f['message']}" for f in outcome.failures]
        result.error = "; ".join(failed) or outcome.error or "dbt build failed"
    return result


MARTS = ("fct_wallet_positions", "fct_resolution_outcomes", "fct_wallet_category_pnl", "dim_markets")


def steps() -> list[Step]:
    return [
        Step("ingest_fills", step_ingest_fills),
        Step("load_reference", step_load_reference),
        Step("dbt_build", step_dbt_build, needs=("load_reference",)),
    ]


def record_run(settings: Settings, run: dict[str, Any]) -> Path:
    """Write the run's summary file, then its rows in `ops` (best effort: the file is the
    record of last resort when the warehouse is what failed)."""
    folder = settings.reports_dir / run["started_at"][:10] / run["run_id"]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "summary.json"
    path.write_text(json.dumps(run, indent=2, default=str))
    try:
        with warehouse.connect(settings) as ch:
            warehouse.ensure_databases(ch)
            ch.command(RUNS_DDL)
            ch.command(RUN_STEPS_DDL)
            ch.insert("ops.runs", [[run["run_id"], run["trigger"], run["status"],
                                    dt.datetime.fromisoformat(run["started_at"]),
                                    dt.datetime.fromisoformat(run["finished_at"]),
                                    json.dumps(run, default=str)]],
                      column_names=["run_id", "trigger", "status", "started_at", "finished_at", "summary"])
            ch.insert("ops.run_steps", [[run["run_id"], s["name"], s["status"],
                                         dt.datetime.fromisoformat(s["started_at"]) if s["started_at"] else None,
                                         s["seconds"], s["rows_in"], s["rows_out"], s["message"] or "",
                                         s["error"]] for s in run["steps"]],
                      column_names=["run_id", "step", "status", "started_at", "seconds", "rows_in",
                                    "rows_out", "message", "error"])
    except Exception as exc:
        log.error("run not recorded in the warehouse", extra={"ctx": {"error": str(exc), "summary": str(path)}})
    return path


EXIT_CODES = {"success": 0, "partial": 1, "failed": 2}


def run_nightly(settings: Settings, trigger: str = "manual",
                now: dt.datetime | None = None) -> tuple[str, dict[str, Any]]:
    started = now or dt.datetime.now(dt.timezone.utc)
    ctx = RunContext(settings=settings, run_id=new_run_id(started), trigger=trigger, started_at=started)
    log.info("run started", extra={"ctx": {"run_id": ctx.run_id, "trigger": trigger, **settings.describe()}})
    status = run_steps(steps(), ctx)
    run = summary(ctx, status, dt.datetime.now(dt.timezone.utc))
    path = record_run(settings, run)
    log.info("run finished", extra={"ctx": {"run_id": ctx.run_id, "status": status, "summary": str(path)}})
    return status, run
