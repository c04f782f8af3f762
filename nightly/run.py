"""One night: take the run lock, hold the embedded engine, run the steps, record the run.

The run records its progress after every step (`summary.json` with status `running`), so a
run killed halfway is told by the next one as `interrupted`, with its trigger and the steps
it finished. The embedded engine is opened once, before the first step, and held until the
run is recorded: no other process can open it meanwhile, so none can make a step fail
(readers get a clear busy answer instead).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

from nightly.steps import steps as night_steps
from pipeline import history, warehouse
from pipeline.config import Settings
from pipeline.logs import run_log_file
from pipeline.runlock import run_lock
from pipeline.steps import INTERRUPTED, RunContext, Step, new_run_id, run_steps, summary

log = logging.getLogger(__name__)


def _record_takeover(settings: Settings, previous: dict[str, Any], taker: str) -> None:
    """A run whose process died holding the lock never finished its record: finish it now,
    from the progress it wrote (its trigger and the steps it finished), as interrupted."""
    run_id, started_at = previous.get("run_id"), previous.get("started_at")
    if not run_id or not started_at:
        return
    log.warning(
        "previous run died without finishing; taking over its lock",
        extra={"ctx": {"previous_run": run_id, "pid": previous.get("pid")}},
    )
    written = history.read_summary(settings, run_id, started_at) or {}
    if written.get("status") not in (None, history.RUNNING):
        return  # it finished its record before it died
    history.record_run(
        settings,
        {
            "run_id": run_id,
            "trigger": written.get("trigger") or previous.get("trigger") or "unknown",
            "status": INTERRUPTED,
            "pid": previous.get("pid"),
            "started_at": started_at,
            "finished_at": dt.datetime.now(dt.UTC).isoformat(),
            "seconds": None,
            "settings": written.get("settings") or settings.describe(),
            "steps": written.get("steps", []),
            "warnings": written.get("warnings", []),
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
    """One run: take the run lock (RunLockHeld if another run has it), hold the embedded
    engine (WarehouseBusy if another process keeps it past CLICKHOUSE_WAIT_S), run the steps,
    record the run. `now` is the run's clock (tests and the scheduler set it)."""
    started = now or dt.datetime.now(dt.UTC)
    began = time.monotonic()
    ctx = RunContext(settings=settings, run_id=new_run_id(started), trigger=trigger, started_at=started)
    # The engine before the run folder: a run refused as busy never started, and leaves no
    # folder (a run.log alone was read by `report --run-id` as a run of unknown health). A
    # shutdown requested while waiting for it ends the wait the same way.
    with (
        run_lock(settings, ctx.run_id, started.isoformat(), trigger=trigger) as grant,
        _graceful_shutdown(ctx),
        warehouse.hold(settings, settings.clickhouse_wait_s, stop=ctx.stop_requested),
    ):
        folder = history.run_folder(settings, ctx.run_id, started.isoformat())
        with run_log_file(folder / "run.log"):
            log.info(
                "run started",
                extra={"ctx": {"run_id": ctx.run_id, "trigger": trigger, **settings.describe()}},
            )
            if grant.previous:
                _record_takeover(settings, grant.previous, ctx.run_id)
            ctx.on_step_done = lambda c: history.write_summary(settings, summary(c, history.RUNNING, None))
            history.write_summary(settings, summary(ctx, history.RUNNING, None))
            status = run_steps(step_list if step_list is not None else night_steps(), ctx)
            # finished on the run's own clock, so simulated nights stay consistent
            run = summary(ctx, status, started + dt.timedelta(seconds=time.monotonic() - began))
            path = history.record_run(settings, run)
            log.info(
                "run finished", extra={"ctx": {"run_id": ctx.run_id, "status": status, "summary": str(path)}}
            )
    return status, run
