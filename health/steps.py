"""Pipeline steps that run the healthcheck inside a run and record it in the run's folder.

* `step_preflight_health`: before the run's work. It records the state the run starts from
  (`health_preflight.json`) and fails only when ClickHouse itself is unreachable: a stale last
  run, missing marts or old reference files are what the run is about to fix.
* `step_final_health`: after the run's work. It records `health.json` (what the report shows
  and the healthcheck's "last run" reads back) and always succeeds; critical checks are
  listed in its warnings. The run's criticality is the caller's decision.

Both documents follow schemas/health_report.schema.json.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from health.checks import CRITICAL, HEALTHY, NOT_CONFIGURED, WARNING, run_checks
from pipeline import history
from pipeline.redact import redact_obj
from pipeline.steps import FAILED, RunContext, StepResult

PREFLIGHT_FILE = "health_preflight.json"
FINAL_FILE = "health.json"


def _folder(ctx: RunContext) -> Path:
    folder = history.run_folder(ctx.settings, ctx.run_id, ctx.started_at.isoformat())
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _record(ctx: RunContext, name: str, report: dict[str, Any]) -> Path:
    """Write a health report with every configured secret masked (an error body may echo
    one)."""
    path = _folder(ctx) / name
    path.write_text(json.dumps(redact_obj(report), indent=2))
    return path


def _message(report: dict[str, Any]) -> str:
    bad = [
        f"{c['name']} {c['status']}" for c in report["checks"] if c["status"] not in (HEALTHY, NOT_CONFIGURED)
    ]
    unset = [c["name"] for c in report["checks"] if c["status"] == NOT_CONFIGURED]
    counts = report["counts"]
    return (
        f"{report['status']}: {counts['healthy']} healthy"
        + (f"; {', '.join(bad)}" if bad else "")
        + (f"; not configured: {', '.join(unset)}" if unset else "")
        + f" ({report['seconds']:.1f}s)"
    )


def _details(report: dict[str, Any], path: Path) -> dict[str, Any]:
    return {
        "file": str(path),
        "status": report["status"],
        "checks": {c["name"]: {"status": c["status"], "message": c["message"]} for c in report["checks"]},
    }


# What a first run cannot have yet: it is about to load and build them.
FIRST_RUN_CHECKS = ("tables", "trade_freshness", "last_run", "great_expectations", "resolution_integrity")


def first_run_waits(report: dict[str, Any]) -> list[str] | None:
    """On a first run (no run recorded, nothing loaded), the checks that only fail because
    nothing was loaded yet; None when this is not a first run."""
    checks = {c["name"]: c for c in report["checks"]}
    last_run, tables = checks.get("last_run"), checks.get("tables")
    if last_run is None or last_run["details"].get("runs_recorded") != 0:
        return None
    rows = [t.get("rows") for t in (tables or {}).get("details", {}).get("tables", {}).values()]
    if any(n for n in rows if n and n > 0):
        return None  # data was loaded (by hand, or by a run recorded elsewhere): not a first run
    waiting = [n for n in FIRST_RUN_CHECKS if n in checks and checks[n]["status"] in (WARNING, CRITICAL)]
    freshness = checks.get("reference_freshness")
    files = (freshness or {}).get("details", {}).get("files", {})
    if (
        freshness
        and freshness["status"] != HEALTHY
        and files
        and not any(f["exists"] for f in files.values())
    ):
        waiting.append("reference_freshness")  # files not delivered (or generated) yet
    return waiting


def _first_run_message(report: dict[str, Any], waiting: list[str]) -> str:
    others = [
        f"{c['name']} {c['status']}"
        for c in report["checks"]
        if c["status"] in (WARNING, CRITICAL) and c["name"] not in waiting
    ]
    return (
        "first run: nothing loaded yet"
        + (f" ({', '.join(waiting)} wait for this run)" if waiting else "")
        + (f"; {', '.join(others)}" if others else "")
        + f" ({report['seconds']:.1f}s)"
    )


def step_preflight_health(ctx: RunContext) -> StepResult:
    """Checks before the run (the previous run's state); fails only if ClickHouse is unreachable.
    On a first run the missing tables, fills and runs are what the run is about to make: the
    message says so instead of calling the start critical."""
    report = run_checks(ctx.settings, ctx.settings.health, now=ctx.started_at, run=None)
    path = _record(ctx, PREFLIGHT_FILE, report)
    result = StepResult(message=_message(report), details=_details(report, path))
    waiting = first_run_waits(report)
    if waiting is not None:
        result.message = _first_run_message(report, waiting)
        result.details.update(first_run=True, waiting_for_first_run=waiting)
    clickhouse = next(c for c in report["checks"] if c["name"] == "clickhouse")
    if clickhouse["status"] == CRITICAL:
        result.status = FAILED
        result.error = f"ClickHouse unreachable: {clickhouse['message']}"
    return result


def step_final_health(ctx: RunContext) -> StepResult:
    """Checks after the run's work, recorded as the run's `health.json`; never fails the run."""
    report = run_checks(ctx.settings, ctx.settings.health, now=ctx.started_at, run=ctx)
    path = _record(ctx, FINAL_FILE, report)
    # the run's status reads this: a critical warehouse is never a successful night
    details = {**_details(report, path), "health_status": report["status"]}
    result = StepResult(message=_message(report), details=details)
    result.warnings += critical_warnings(report)
    return result


def critical_warnings(report: dict[str, Any]) -> list[str]:
    """One warning per critical finding: the checks an unreachable warehouse left unchecked
    are named with the ClickHouse check, not repeated one by one."""
    critical = [c for c in report["checks"] if c["status"] == CRITICAL]
    unchecked = [c["name"] for c in critical if c["details"].get("unreachable")]
    out = []
    for c in critical:
        if c["details"].get("unreachable"):
            continue
        names = c["name"] + (f" (and unchecked: {', '.join(unchecked)})" if c["name"] == "clickhouse" else "")
        out.append(f"health {names} critical: {c['message']}")
    return out
