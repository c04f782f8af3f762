"""The nightly job: which steps run, in what order, and how a run is recorded."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from health.quality import step_quality_checkpoint
from health.report import step_health_report
from health.steps import step_final_health, step_preflight_health
from ingest import goldsky_files, reference_files, refresh, subgraph
from ingest.tables import ensure_tables
from pipeline import history, warehouse
from pipeline.config import Settings
from pipeline.dbt_chdb import run_dbt
from pipeline.logs import run_log_file
from pipeline.runlock import run_lock
from pipeline.steps import INTERRUPTED, RunContext, SkipStep, Step, StepResult, new_run_id, run_steps, summary
from watchlist.migrations import step_migrate
from watchlist.publish import step_watchlist_publish

log = logging.getLogger(__name__)

REFERENCE_FILES = (
    reference_files.CATEGORY_DEFINITIONS,
    reference_files.MARKETS,
    reference_files.RESOLUTION_MAP,
)
# Loaded when present, after the files above. Nothing downstream needs them yet, so a
# rejected one is reported as a warning and does not fail the step (the marts still build).
OPTIONAL_REFERENCE_FILES = (
    reference_files.LOOKUPS,
    reference_files.BACKFILL,
)


def sample_anchor(now: dt.datetime) -> dt.date:
    """The sample's last day of fills: the last complete UTC day, so no fill lies in the
    future and the newest one is under 24 h old, as after a healthy night."""
    return (now.astimezone(dt.UTC) - dt.timedelta(days=1)).date()


def prepare_sample(settings: Settings, anchor: dt.date) -> dict[str, Any]:
    """Generate the sample world ending on `anchor`: fills files, and reference files when
    DATA_DIR holds no files of a user's (only generated ones, marked by `.sample`)."""
    from ingest import sample_data

    data_dir = settings.data_dir
    user_files = [n for n in REFERENCE_FILES if (data_dir / n).exists()]
    write_reference = not user_files or (data_dir / sample_data.SAMPLE_MARKER).exists()
    fills_dir = settings.sample_dir / "fills"
    if write_reference:
        summary_ = sample_data.generate_sample(
            fills_dir, data_dir, anchor, days=settings.sample_days, seed=settings.sample_seed
        )
        return {
            "anchor": str(summary_.anchor),
            "fill_files": len(summary_.fill_files),
            "reference_files": "generated",
        }
    files = sample_data.generate_fills(
        fills_dir, anchor, days=settings.sample_days, seed=settings.sample_seed
    )
    return {
        "anchor": str(anchor),
        "fill_files": len(files),
        "reference_files": f"kept the user's files in {data_dir}",
    }


def fills_directory(settings: Settings) -> Path:
    return (
        settings.sample_dir / "fills" if settings.goldsky_source == "sample" else settings.goldsky_dataset_dir
    )


def step_ingest_fills(
    ctx: RunContext, since: dt.datetime | None = None, until: dt.datetime | None = None
) -> StepResult:
    """New fills from the configured source; `since`/`until` bound a subgraph backfill."""
    settings = ctx.settings
    if settings.goldsky_source == "subgraph":
        return subgraph.step_ingest_subgraph(ctx, since=since, until=until)
    if since or until:
        raise ValueError("--since/--until bound the subgraph source only (GOLDSKY_SOURCE=subgraph)")
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
    details.update(
        files_loaded=sum(f.status == "loaded" for f in report.files),
        files_skipped=sum(f.status == "skipped" for f in report.files),
        files_rejected=[f.error for f in report.rejected],
        raw_rows=total,
    )
    result = StepResult(
        rows_in=report.rows_in,
        rows_out=report.rows_new,
        details=details,
        message=f"{details['files_loaded']} files loaded, {details['files_skipped']} "
        f"already loaded, {len(report.rejected)} rejected",
    )
    result.warnings += [f.error for f in report.rejected if f.error]
    if report.rejected:
        result.status = "failed"
        result.error = "; ".join(f.error for f in report.rejected if f.error)
    return result


def step_load_reference(ctx: RunContext) -> StepResult:
    names = REFERENCE_FILES + OPTIONAL_REFERENCE_FILES
    present = [ctx.settings.data_dir / n for n in names if (ctx.settings.data_dir / n).exists()]
    if not present:
        raise SkipStep(f"no reference files in {ctx.settings.data_dir}")
    loads, errors, optional_rejected = [], [], []
    with warehouse.connect(ctx.settings) as ch:
        ensure_tables(ch)
        for path in present:
            try:
                loads.append(reference_files.load_reference_file(ch, path))
            except reference_files.ReferenceFileError as exc:
                (optional_rejected if path.name in OPTIONAL_REFERENCE_FILES else errors).append(str(exc))
    fresh = [load for load in loads if not load.unchanged]
    result = StepResult(
        rows_in=sum(load.entries for load in loads),
        rows_out=sum(load.entries for load in fresh),
        details={
            load.file_name: {
                "entries": load.entries,
                "resolved": load.resolved,
                "claimed": load.claimed,
                "unchanged": load.unchanged,
            }
            for load in loads
        },
        warnings=[w for load in loads for w in load.warnings] + optional_rejected + errors,
        message=f"{len(fresh)} reference files loaded, {len(loads) - len(fresh)} unchanged",
    )
    if errors:
        result.status, result.error = "failed", "; ".join(errors)
    return result


# Unit tests of incremental branches need the model's table to exist (see
# dbt_project/models/intermediate/_unit_tests.yml); the test suite runs them.
DBT_BUILD_ARGS = ["build", "--quiet", "--exclude", "tag:needs_built_state"]


def step_dbt_build(ctx: RunContext) -> StepResult:
    outcome = run_dbt(ctx.settings, DBT_BUILD_ARGS)
    with warehouse.connect(ctx.settings) as ch:
        marts = {
            t: warehouse.count_rows(ch, f"analytics.{t}")
            for t in MARTS
            if warehouse.table_exists(ch, "analytics", t)
        }
        unknown = (
            ch.query(
                "SELECT uniqExact(token_id), count() FROM analytics.fct_wallet_positions "
                "WHERE condition_id IS NULL"
            ).result_rows[0]
            if "fct_wallet_positions" in marts
            else (0, 0)
        )
    details = {
        "dbt": outcome.counts(),
        "mart_rows": marts,
        "unknown_condition_tokens": int(unknown[0]),
        "unknown_condition_positions": int(unknown[1]),
    }
    result = StepResult(
        rows_out=sum(marts.values()),
        details=details,
        message=", ".join(f"{k} {v}" for k, v in sorted(outcome.counts().items())),
    )
    if unknown[0]:
        result.warnings.append(
            f"{unknown[0]} traded tokens map to no known condition "
            f"({unknown[1]} positions counted as Uncategorized)"
        )
    if not outcome.success:
        result.status = "failed"
        failed = [f"{f['name']}: {f['message']}" for f in outcome.failures]
        result.error = "; ".join(failed) or outcome.error or "dbt build failed"
    return result


MARTS = ("fct_wallet_positions", "fct_resolution_outcomes", "fct_wallet_category_pnl", "dim_markets")


def steps() -> list[Step]:
    """The nightly sequence. `critical` steps stop the run when they fail (infrastructure:
    fail fast); other failures leave the run `partial` and skip only their dependants."""
    return [
        Step("preflight", step_preflight, critical=True),
        Step("preflight_health", step_preflight_health),
        Step("refresh_resolutions", refresh.step_refresh_resolutions, needs=("preflight",)),
        Step("ingest_fills", step_ingest_fills, needs=("preflight",)),
        Step("load_reference", step_load_reference, needs=("preflight",)),
        Step("dbt_build", step_dbt_build, needs=("load_reference",)),
        Step("quality_checkpoint", step_quality_checkpoint, needs=("dbt_build",)),
        Step("migrate_app_db", step_migrate, critical=True, needs=("preflight",)),
        Step("watchlist_publish", step_watchlist_publish, needs=("dbt_build", "migrate_app_db")),
        Step("final_health", step_final_health, always=True),
        Step("health_report", step_health_report, always=True),
    ]


EXIT_CODES = {"success": 0, "partial": 1, "interrupted": 1, "failed": 2}


def step_preflight(ctx: RunContext) -> StepResult:
    """Critical infrastructure first: the warehouse opens and has its tables, and a
    configured Postgres answers. Either failing stops the run before any work."""
    details: dict[str, Any] = {}
    with warehouse.connect(ctx.settings) as ch:
        ensure_tables(ch)
        history.ensure_tables(ch)
        details["clickhouse"] = ch.command("SELECT version()")
    if ctx.settings.postgres_url:
        import psycopg

        with psycopg.connect(ctx.settings.postgres_url, connect_timeout=10) as pg:
            details["postgres"] = pg.execute("SHOW server_version").fetchone()[0]
    else:
        details["postgres"] = "not configured: Postgres steps will be skipped"
    return StepResult(
        details=details, message=f"ClickHouse {details['clickhouse']}, Postgres {details['postgres']}"
    )


def _record_takeover(settings: Settings, previous: dict[str, Any], taker: str) -> None:
    """A run whose process died holding the lock never wrote its summary: write it now."""
    if not previous.get("run_id") or not previous.get("started_at"):
        return
    now = dt.datetime.now(dt.UTC).isoformat()
    log.warning(
        "previous run died without finishing; taking over its lock",
        extra={"ctx": {"previous_run": previous.get("run_id"), "pid": previous.get("pid")}},
    )
    if history.summary_exists(settings, previous["run_id"], previous["started_at"]):
        return
    history.record_run(
        settings,
        {
            "run_id": previous["run_id"],
            "trigger": "unknown",
            "status": INTERRUPTED,
            "started_at": previous["started_at"],
            "finished_at": now,
            "seconds": None,
            "settings": settings.describe(),
            "steps": [],
            "warnings": [],
            "error": f"process {previous.get('pid')} died before the run finished; "
            f"lock taken over by run {taker}",
        },
    )


@contextlib.contextmanager
def _graceful_shutdown(ctx: RunContext) -> Iterator[None]:
    """SIGTERM/SIGINT let the running step finish and stop the run before the next one;
    a second signal stops at once."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def request_stop(signum, _frame):
        if ctx.stop_requested.is_set():
            raise KeyboardInterrupt
        log.warning(
            "shutdown requested: finishing the current step",
            extra={"ctx": {"signal": signal.Signals(signum).name}},
        )
        ctx.stop_requested.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run_nightly(
    settings: Settings,
    trigger: str = "manual",
    now: dt.datetime | None = None,
    step_list: list[Step] | None = None,
) -> tuple[str, dict[str, Any]]:
    """One run: take the run lock (RunLockHeld if another run has it), run the steps,
    record the run. `now` is the run's clock (tests and the scheduler set it)."""
    started = now or dt.datetime.now(dt.UTC)
    began = time.monotonic()
    ctx = RunContext(settings=settings, run_id=new_run_id(started), trigger=trigger, started_at=started)
    with run_lock(settings, ctx.run_id, started.isoformat()) as grant:
        if grant.previous:
            _record_takeover(settings, grant.previous, ctx.run_id)
        folder = history.run_folder(settings, ctx.run_id, started.isoformat())
        with run_log_file(folder / "run.log", settings), _graceful_shutdown(ctx):
            log.info(
                "run started",
                extra={"ctx": {"run_id": ctx.run_id, "trigger": trigger, **settings.describe()}},
            )
            status = run_steps(step_list if step_list is not None else steps(), ctx)
            # finished on the run's own clock, so simulated nights stay consistent
            run = summary(ctx, status, started + dt.timedelta(seconds=time.monotonic() - began))
            path = history.record_run(settings, run)
            log.info(
                "run finished", extra={"ctx": {"run_id": ctx.run_id, "status": status, "summary": str(path)}}
            )
    return status, run
