"""The shape every pipeline step has, and the loop that runs a sequence of them.

A step is a named function of the run context that returns a StepResult. It declares
whether it is critical (its failure stops the run), whether it is essential (the night has
failed if it did not do its work, as for the build that updates the marts), and which
earlier steps it needs (a step whose prerequisite did not do its work is skipped with that
reason). The loop times each step, logs it with its row counts, and derives the run's status
so that the status, and the exit code that follows from it, tell the truth:

- `failed`: a critical step failed, or an essential step did not do its work;
- `interrupted`: a shutdown was requested before every step ran;
- `partial`: a step failed or did part of its work, a step could not work because its input
  was missing, or the final healthcheck found the warehouse critical;
- `success`: everything else (steps skipped because they are not configured are fine).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from pipeline.config import Settings
from pipeline.logs import run_id_var, step_var
from pipeline.redact import redact_obj

log = logging.getLogger(__name__)

SUCCESS, PARTIAL, FAILED, SKIPPED, INTERRUPTED = "success", "partial", "failed", "skipped", "interrupted"
# What started a run, recorded with it: a person, the cron and systemd entries
# (pipeline/schedule.py), and the built-in scheduler's nightly and catch-up runs.
# `runner.py run --trigger` takes these only, so a run's record never carries a typo.
TRIGGERS = ("manual", "cron", "systemd", "schedule", "catchup")
# A step in one of these states produced output its dependants can use.
DID_ITS_WORK = (SUCCESS, PARTIAL)


class SkipStep(Exception):
    """Raised by a step that does not apply tonight (not configured, nothing to do): the step is
    skipped and the run is not worse for it."""


class MissingInput(SkipStep):
    """Raised by a step whose input is missing (no files where files are expected): the step is
    skipped, and the run cannot be a success."""


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
    missing_input: bool = False


@dataclass
class RunContext:
    settings: Settings
    run_id: str
    trigger: str
    started_at: dt.datetime
    results: dict[str, StepResult] = field(default_factory=dict)
    # Set by a SIGTERM/SIGINT handler: the running step finishes, later ones do not start.
    stop_requested: threading.Event = field(default_factory=threading.Event)
    # Called after each step (the run records its progress, so a killed run can be told).
    on_step_done: Callable[[RunContext], None] | None = None
    # The steps of this run, in order (set by run_steps), for the status so far.
    plan: list[Step] = field(default_factory=list)

    def status_so_far(self) -> str:
        """The run's status from the steps finished so far (the report renders it)."""
        return run_status(self.plan, self)


@dataclass(frozen=True)
class Step:
    name: str
    fn: Callable[[RunContext], StepResult]
    critical: bool = False
    needs: tuple[str, ...] = ()
    # At least one of these must have done its work (for example the build needs some input).
    needs_any: tuple[str, ...] = ()
    # The night has failed if this step did not do its work (the build that updates the marts).
    essential: bool = False
    # Runs even after a critical failure stopped the run (the final health and the report:
    # a failed night most needs its report).
    always: bool = False


def new_run_id(now: dt.datetime) -> str:
    return now.strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:6]


def _why(name: str, prior: StepResult | None) -> str:
    if prior is None:
        return f"{name}, which did not run"
    why = f" ({prior.message})" if prior.status == SKIPPED and prior.message else ""
    return f"{name}, which was {prior.status}{why}"


def _blocked_by(step: Step, ctx: RunContext) -> str | None:
    for need in step.needs:
        prior = ctx.results.get(need)
        if prior is None or prior.status not in DID_ITS_WORK:
            return "needs " + _why(need, prior)
    if step.needs_any and not any(
        (r := ctx.results.get(n)) is not None and r.status in DID_ITS_WORK for n in step.needs_any
    ):
        return "nothing to work on: " + "; ".join(_why(n, ctx.results.get(n)) for n in step.needs_any)
    return None


def _inherits_missing_input(step: Step, ctx: RunContext) -> bool:
    """A step skipped because what it needs was missing or failed is itself short of input."""
    for name in (*step.needs, *step.needs_any):
        prior = ctx.results.get(name)
        if prior is not None and (prior.missing_input or prior.status == FAILED):
            return True
    return False


def run_step(step: Step, ctx: RunContext) -> StepResult:
    token = step_var.set(step.name)
    started = time.monotonic()
    started_at = dt.datetime.now(dt.UTC)
    try:
        reason = _blocked_by(step, ctx)
        if reason:
            result = StepResult(
                status=SKIPPED, message=reason, missing_input=_inherits_missing_input(step, ctx)
            )
        else:
            log.info("step started")
            try:
                result = step.fn(ctx)
            except MissingInput as exc:
                result = StepResult(status=SKIPPED, message=str(exc), missing_input=True)
            except SkipStep as exc:
                result = StepResult(status=SKIPPED, message=str(exc))
            except Exception as exc:  # a failing step is recorded, the run decides what next
                result = StepResult(
                    status=FAILED,
                    error=f"{type(exc).__name__}: {exc}",
                    message=str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
                )
                log.debug("step failed: traceback", extra={"ctx": {"trace": traceback.format_exc(limit=8)}})
        result.started_at = started_at
        result.seconds = round(time.monotonic() - started, 3)
        ctx.results[step.name] = result
        failed = result.status == FAILED and bool(result.error)
        # a step's warnings go to the log too (run.log holds every line the report does)
        level = (
            logging.ERROR if result.status == FAILED else logging.WARNING if result.warnings else logging.INFO
        )
        log.log(
            level,
            "step %s",
            result.status,
            extra={
                "ctx": {
                    "seconds": result.seconds,
                    "rows_in": result.rows_in,
                    "rows_out": result.rows_out,
                    # a failed step: one `error` field, not its message twice
                    "message": None if failed and result.message in result.error else result.message or None,
                    "error": result.error if failed else None,
                    "warnings": result.warnings or None,
                }
            },
        )
        return result
    finally:
        step_var.reset(token)


def run_status(steps: list[Step], ctx: RunContext) -> str:
    """The run's status from its steps' results (see the module's docstring)."""
    pairs = [(s, ctx.results.get(s.name)) for s in steps]
    if any(r is not None and r.status == FAILED and s.critical for s, r in pairs):
        return FAILED
    if any(r is not None and r.status == INTERRUPTED for _, r in pairs):
        return INTERRUPTED
    if any(s.essential and r is not None and r.status not in DID_ITS_WORK for s, r in pairs):
        return FAILED
    if any(r is not None and (r.status in (FAILED, PARTIAL) or r.missing_input) for _, r in pairs):
        return PARTIAL
    if any(r is not None and r.details.get("health_status") == "critical" for _, r in pairs):
        return PARTIAL
    return SUCCESS


def not_successful(steps: list[dict[str, Any]]) -> list[str]:
    """A recorded run's steps that kept it from `success` (as `run_status` judges), each
    "name status": a partial run is partial because of a partial step as often as a failed
    one, and naming only the failed ones left it unexplained."""
    return [
        f"{s.get('name', '?')} {s.get('status')}"
        + (" (missing input)" if s.get("missing_input") and s.get("status") == SKIPPED else "")
        for s in steps
        if s.get("status") in (FAILED, PARTIAL, INTERRUPTED) or s.get("missing_input")
    ]


def run_steps(steps: list[Step], ctx: RunContext) -> str:
    """Run `steps` in order; a critical failure stops the run. Returns the run status."""
    token = run_id_var.set(ctx.run_id)
    ctx.plan = list(steps)
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
            if ctx.on_step_done is not None:
                ctx.on_step_done(ctx)
        return run_status(steps, ctx)
    finally:
        run_id_var.reset(token)


def summary(ctx: RunContext, status: str, finished_at: dt.datetime | None) -> dict[str, Any]:
    """The run's record (summary.json, ops.runs), secrets masked. `finished_at` None: running."""

    def _step(name: str, r: StepResult) -> dict[str, Any]:
        d = asdict(r)
        d["name"] = name
        d["started_at"] = r.started_at.isoformat() if r.started_at else None
        return d

    return redact_obj(
        {
            "run_id": ctx.run_id,
            "trigger": ctx.trigger,
            "status": status,
            "pid": os.getpid(),
            "started_at": ctx.started_at.isoformat(),
            "finished_at": finished_at.isoformat() if finished_at else None,
            "seconds": round((finished_at - ctx.started_at).total_seconds(), 3) if finished_at else None,
            "settings": ctx.settings.describe(),
            "steps": [_step(n, r) for n, r in ctx.results.items()],
            "warnings": [w for r in ctx.results.values() for w in r.warnings],
        }
    )
