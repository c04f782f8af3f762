"""The shape every pipeline step has, and the loop that runs a sequence of them.

A step is a named function of the run context that returns a StepResult. It declares
whether it is critical (its failure stops the run) and which earlier steps it needs (a
step whose prerequisite failed or was skipped is skipped with that reason). The loop
times each step, logs it with its row counts, and derives the run's status.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from pipeline.config import Settings
from pipeline.logs import run_id_var, step_var

log = logging.getLogger(__name__)

SUCCESS, FAILED, SKIPPED, INTERRUPTED = "success", "failed", "skipped", "interrupted"


class SkipStep(Exception):
    """Raised by a step whose input is missing: the step is skipped, not failed."""


@dataclass
class StepResult:
    status: str = SUCCESS
    rows_in: int | None = None
    rows_out: int | None = None
    message: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    error: str | None = None
    started_at: dt.datetime | None = None
    seconds: float = 0.0


@dataclass
class RunContext:
    settings: Settings
    run_id: str
    trigger: str
    started_at: dt.datetime
    results: dict[str, StepResult] = field(default_factory=dict)
    # Set by a SIGTERM/SIGINT handler: the running step finishes, later ones do not start.
    stop_requested: threading.Event = field(default_factory=threading.Event)


@dataclass(frozen=True)
class Step:
    name: str
    fn: Callable[[RunContext], StepResult]
    critical: bool = False
    needs: tuple[str, ...] = ()
    # Runs even after a critical failure stopped the run (the final health and the report:
    # a failed night most needs its report).
    always: bool = False


def new_run_id(now: dt.datetime) -> str:
    return now.strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:6]


def _blocked_by(step: Step, ctx: RunContext) -> str | None:
    for need in step.needs:
        prior = ctx.results.get(need)
        if prior is None or prior.status != SUCCESS:
            if prior is None:
                return f"needs {need}, which did not run"
            why = f" ({prior.message})" if prior.status == SKIPPED and prior.message else ""
            return f"needs {need}, which was {prior.status}{why}"
    return None


def run_step(step: Step, ctx: RunContext) -> StepResult:
    token = step_var.set(step.name)
    started = time.monotonic()
    started_at = dt.datetime.now(dt.UTC)
    try:
        reason = _blocked_by(step, ctx)
        if reason:
            result = StepResult(status=SKIPPED, message=reason)
        else:
            log.info("step started")
            try:
                result = step.fn(ctx)
            except SkipStep as exc:
                result = StepResult(status=SKIPPED, message=str(exc))
            except Exception as exc:  # a failing step is recorded, the run decides what next
                result = StepResult(
                    status=FAILED,
                    error=f"{type(exc).__name__}: {exc}",
                    message=str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
                )
                log.error(
                    "step failed",
                    extra={"ctx": {"error": result.error, "trace": traceback.format_exc(limit=6)}},
                )
        result.started_at = started_at
        result.seconds = round(time.monotonic() - started, 3)
        ctx.results[step.name] = result
        level = logging.ERROR if result.status == FAILED else logging.INFO
        log.log(
            level,
            "step %s",
            result.status,
            extra={
                "ctx": {
                    "seconds": result.seconds,
                    "rows_in": result.rows_in,
                    "rows_out": result.rows_out,
                    "message": result.message or None,
                }
            },
        )
        return result
    finally:
        step_var.reset(token)


def run_status(steps: list[Step], ctx: RunContext) -> str:
    statuses = {s.name: ctx.results.get(s.name) for s in steps}
    if any(r and r.status == FAILED and s.critical for s, r in zip(steps, statuses.values())):
        return FAILED
    if any(r and r.status == INTERRUPTED for r in statuses.values()):
        return INTERRUPTED
    if any(r and r.status == FAILED for r in statuses.values()):
        return "partial"
    return SUCCESS


def run_steps(steps: list[Step], ctx: RunContext) -> str:
    """Run `steps` in order; a critical failure stops the run. Returns the run status."""
    token = run_id_var.set(ctx.run_id)
    try:
        stopped_by: str | None = None
        for step in steps:
            if ctx.stop_requested.is_set():
                ctx.results[step.name] = StepResult(
                    status=INTERRUPTED, message="shutdown requested before this step"
                )
                continue
            if stopped_by and not step.always:
                continue
            result = run_step(step, ctx)
            if result.status == FAILED and step.critical and not stopped_by:
                stopped_by = step.name
                log.error("critical step failed: stopping the run", extra={"ctx": {"failed_step": step.name}})
        return run_status(steps, ctx)
    finally:
        run_id_var.reset(token)


def summary(ctx: RunContext, status: str, finished_at: dt.datetime) -> dict[str, Any]:
    def _step(name: str, r: StepResult) -> dict[str, Any]:
        d = asdict(r)
        d["name"] = name
        d["started_at"] = r.started_at.isoformat() if r.started_at else None
        return d

    return {
        "run_id": ctx.run_id,
        "trigger": ctx.trigger,
        "status": status,
        "started_at": ctx.started_at.isoformat(),
        "finished_at": finished_at.isoformat(),
        "seconds": round((finished_at - ctx.started_at).total_seconds(), 3),
        "settings": ctx.settings.describe(),
        "steps": [_step(n, r) for n, r in ctx.results.items()],
        "warnings": [w for r in ctx.results.values() for w in r.warnings],
    }
