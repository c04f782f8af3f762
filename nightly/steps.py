"""The night's steps: which run, in what order, what each needs, and what the run's status
makes of them (pipeline/steps.py). docs/runbook.md describes the same sequence for operators.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from health.quality import step_quality_checkpoint
from health.report import step_health_report
from health.steps import step_final_health, step_preflight_health
from ingest import reference_files, refresh, subgraph
from ingest.dataset_step import step_ingest_dataset
from ingest.tables import ensure_tables
from pipeline import history, names, warehouse
from pipeline.config import Settings
from pipeline.dbt_chdb import run_dbt
from pipeline.logs import counted
from pipeline.steps import PARTIAL, MissingInput, RunContext, Step, StepResult
from watchlist.migrations import step_migrate
from watchlist.publish import step_watchlist_publish

# dbt's unit tests check the models' SQL on given rows, which no night changes: the test
# suite runs them (tests/test_dbt_project.py), the night does not (about 0.5 s each at the
# 10M bench, as dbt advises for production builds).
DBT_BUILD_ARGS = ["build", "--quiet", "--exclude", "test_type:unit"]
# The data tests of the models that grow with the history (dbt_project.yml, tag
# whole_history): run on the full-check night only (SCHEDULE_FULL_CHECKS).
WHOLE_HISTORY_TESTS = "test_type:data,tag:whole_history"


def dbt_build_args(settings: Settings, started_at: dt.datetime) -> list[str]:
    """The night's dbt build: every model and the data tests that follow the night's work;
    on the full-check night also the tests that read the whole history."""
    if settings.schedule.full_checks_on(started_at):
        return list(DBT_BUILD_ARGS)
    return [*DBT_BUILD_ARGS, WHOLE_HISTORY_TESTS]


def steps() -> list[Step]:
    """The nightly sequence. `critical` steps stop the run when they fail (infrastructure:
    fail fast); `essential` ones fail the night when they do not do their work; other
    failures leave the run `partial` and skip only their dependants."""
    return [
        Step("preflight", step_preflight, critical=True),
        Step("preflight_health", step_preflight_health),
        Step("refresh_resolutions", refresh.step_refresh_resolutions, needs=("preflight",)),
        Step("ingest_fills", step_ingest_fills, needs=("preflight",)),
        Step("load_reference", step_load_reference, needs=("preflight",)),
        # builds on whatever loaded (a rejected file keeps its last good version): it only
        # needs some input, and the night has failed if the marts were not updated
        Step(
            "dbt_build",
            step_dbt_build,
            needs=("preflight",),
            needs_any=("ingest_fills", "load_reference"),
            essential=True,
        ),
        Step("quality_checkpoint", step_quality_checkpoint, needs=("dbt_build",)),
        Step("migrate_app_db", step_migrate, critical=True, needs=("preflight",)),
        Step("watchlist_publish", step_watchlist_publish, needs=("dbt_build", "migrate_app_db")),
        Step("final_health", step_final_health, always=True),
        Step("health_report", step_health_report, always=True),
    ]


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


def sample_anchor(now: dt.datetime) -> dt.date:
    """The sample's last day of fills: the last complete UTC day, so no fill lies in the
    future and the newest one is under 24 h old, as after a healthy night."""
    return (now.astimezone(dt.UTC) - dt.timedelta(days=1)).date()


def prepare_sample(settings: Settings, anchor: dt.date) -> dict[str, Any]:
    """Generate the sample world ending on `anchor`: fills files, and reference files when
    DATA_DIR holds no files of a user's (only generated ones, marked by `.sample`)."""
    from ingest import sample_data

    data_dir = settings.data_dir
    user_files = [n for n in names.REFERENCE_FILES if (data_dir / n).exists()]
    write_reference = not user_files or (data_dir / sample_data.SAMPLE_MARKER).exists()
    fills_dir = settings.sample_dir / "fills"
    if write_reference:
        made = sample_data.generate_sample(
            fills_dir, data_dir, anchor, days=settings.sample_days, seed=settings.sample_seed
        )
        return {
            "anchor": str(made.anchor),
            "fill_files": len(made.fill_files),
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
    """New fills from the configured source; `since`/`until` bound a subgraph backfill. A
    rejected file is named in the warnings and the others load: the step is then partial."""
    settings = ctx.settings
    if settings.goldsky_source == "subgraph":
        return subgraph.step_ingest_subgraph(ctx, since=since, until=until)
    if since or until:
        raise ValueError("--since/--until bound the subgraph source only (GOLDSKY_SOURCE=subgraph)")
    details: dict[str, Any] = {"source": settings.goldsky_source}
    if settings.goldsky_source == "sample":
        details["sample"] = prepare_sample(settings, sample_anchor(ctx.started_at))
    return step_ingest_dataset(ctx, fills_directory(settings), details)


def step_load_reference(ctx: RunContext) -> StepResult:
    """Each reference file is loaded whole or rejected whole; a rejected file keeps its last
    good version in the warehouse, is named in the warnings, and the step is partial, so the
    build still runs on the last good data and the night's new fills reach the marts."""
    data_dir = ctx.settings.data_dir
    wanted = names.REFERENCE_FILES + names.OPTIONAL_REFERENCE_FILES
    present = [data_dir / n for n in wanted if (data_dir / n).exists()]
    if not present:
        raise MissingInput(f"no reference files in {data_dir}")
    loads, rejected, optional_rejected = [], [], []
    with warehouse.connect(ctx.settings) as ch:
        ensure_tables(ch)
        for path in present:
            try:
                loads.append(reference_files.load_reference_file(ch, path))
            except reference_files.ReferenceFileError as exc:
                (optional_rejected if path.name in names.OPTIONAL_REFERENCE_FILES else rejected).append(
                    f"{exc} (its last good version stays in use)"
                )
    fresh = [load for load in loads if not load.unchanged]
    missing = [n for n in names.REFERENCE_FILES if not (data_dir / n).exists()]
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
        warnings=[w for load in loads for w in load.warnings]
        + optional_rejected
        + rejected
        + [f"{n} is missing from {data_dir}" for n in missing],
        message=f"{counted(len(fresh), 'reference file')} loaded, {len(loads) - len(fresh)} unchanged"
        + (f", {len(rejected)} rejected" if rejected else "")
        + (f", {len(missing)} missing" if missing else ""),
    )
    if rejected:
        result.status = PARTIAL
        result.error = "; ".join(rejected)
    return result


UNMAPPED_TOKENS_SQL = (
    f"SELECT uniqExact(token_id) FROM {names.ANALYTICS}.{names.INT_TOKEN_MARKS} WHERE token_id NOT IN "
    f"(SELECT token_id FROM {names.ANALYTICS}.{names.INT_TOKEN_CONDITIONS} WHERE condition_id IS NOT NULL)"
)


def step_dbt_build(ctx: RunContext) -> StepResult:
    full_checks = ctx.settings.schedule.full_checks_on(ctx.started_at)
    outcome = run_dbt(ctx.settings, dbt_build_args(ctx.settings, ctx.started_at), run_at=ctx.started_at)
    with warehouse.connect(ctx.settings) as ch:
        marts = warehouse.table_rows(ch, names.ANALYTICS, names.MARTS)
        # a view's rows are only known by computing it: probe for one row instead
        empty = [
            m
            for m, n in marts.items()
            if n == 0 or (n is None and not warehouse.has_rows(ch, f"{names.ANALYTICS}.{m}"))
        ]
        # traded tokens (one mark each) that no source maps to a condition: a lookup over the
        # tokens, not a scan of the positions
        unknown = (
            int(ch.command(UNMAPPED_TOKENS_SQL))
            if warehouse.table_exists(ch, names.ANALYTICS, names.INT_TOKEN_MARKS)
            else 0
        )
    details = {
        "dbt": outcome.counts(),
        # the whole history's data tests ran tonight, or wait for the full-check night
        "whole_history_tests": "ran" if full_checks else f"on {ctx.settings.schedule.full_checks}",
        "mart_rows": marts,
        "empty_marts": empty,
        "unknown_condition_tokens": unknown,
    }
    result = StepResult(
        rows_out=sum(v for v in marts.values() if v is not None),
        details=details,
        message=", ".join(f"{k} {v}" for k, v in sorted(outcome.counts().items()))
        + ("" if full_checks else f"; whole-history tests on {ctx.settings.schedule.full_checks}"),
    )
    if empty:
        result.warnings.append(f"empty marts after the build: {', '.join(empty)}")
    if unknown:
        result.warnings.append(
            f"{unknown} traded tokens map to no known condition "
            f"(each counted as its own market, {names.UNCATEGORIZED})"
        )
    if not outcome.success:
        result.status = "failed"
        failed = [f"{f['name']}: {f['message']}" for f in outcome.failures]
        result.error = "; ".join(failed) or outcome.error or "dbt build failed"
    return result
