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

from health.checks import CRITICAL, HEALTHY, NOT_CONFIGURED, run_checks
from pipeline import history
from pipeline.steps import FAILED, RunContext, StepResult

PREFLIGHT_FILE = "health_preflight.json"
FINAL_FILE = "health.json"


def _folder(ctx: RunContext) -> Path:
    folder = history.run_folder(ctx.settings, ctx.run_id, ctx.started_at.isoformat())
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _record(ctx: RunContext, name: str, report: dict[str, Any]) -> Path:
    path = _folder(ctx) / name
    path.write_text(json.dumps(report, indent=2))
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


def step_preflight_health(ctx: RunContext) -> StepResult:
    """Checks before the run (the previous run's state); fails only if ClickHouse is unreachable."""
    report = run_checks(ctx.settings, ctx.settings.health, now=ctx.started_at, run=None)
    path = _record(ctx, PREFLIGHT_FILE, report)
    result = StepResult(message=_message(report), details=_details(report, path))
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
