"""GET /api/health: the healthcheck's report (`health.checks.run_checks`), cached briefly.

There is no fallback: the healthcheck is imported when this module is, so a missing or
renamed one stops the API at start instead of answering from a substitute, and a
healthcheck that fails while running is a 503 naming the failure (a fallback used to answer
200 "warn" for an instance that `runner.py health` called critical).

The report leaves out the healthcheck's "api" check (it requests this route: this process
is the API, and it is answering). Requests that arrive while the checks run wait for that
run and share its report, so the checks never run twice at once however many clients ask.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from health import checks
from pipeline.config import Settings
from pipeline.exit_codes import HEALTH_STATUS, ExitCode
from pipeline.redact import redact

log = logging.getLogger(__name__)

SELF_CHECK = "api"
CHECK_NAMES = tuple(name for name, _title, _fn in checks.CHECKS if name != SELF_CHECK)

Report = tuple[int, dict[str, Any]]
Runner = Callable[..., Awaitable[Report]]  # runs compute_health(settings) off the event loop


def http_status(status: str) -> int:
    """503 when the overall status is critical (or unknown), else 200."""
    return 503 if HEALTH_STATUS.get(status, ExitCode.FAILED) == ExitCode.FAILED else 200


def compute_health(settings: Settings) -> Report:
    """The healthcheck's report and its HTTP status (blocking: it runs every check)."""
    try:
        report = checks.run_checks(settings, only=CHECK_NAMES)
    except Exception as exc:
        error = redact(f"{type(exc).__name__}: {str(exc).strip()[:500]}")
        log.error("the healthcheck failed", extra={"ctx": {"error": error}})
        report = {
            "status": checks.CRITICAL,
            "error": f"the healthcheck failed: {error}",
            "generated_at": dt.datetime.now(dt.UTC).isoformat(),
            "checks": [],
        }
    return http_status(str(report.get("status"))), report


class HealthCache:
    """The last report for `ttl_s` seconds, and one computation at a time."""

    def __init__(self, settings: Settings, ttl_s: float):
        self._settings, self._ttl = settings, ttl_s
        self._value: tuple[float, int, dict[str, Any]] | None = None
        self._running: asyncio.Future[Report] | None = None

    async def get(self, run: Runner) -> Report:
        value = self._value
        if value and time.monotonic() - value[0] < self._ttl:
            return value[1], {**value[2], "cached": True}
        if self._running is None:
            self._running = asyncio.ensure_future(self._compute(run))
        # shielded: a client that gives up does not cancel the run the others wait for
        return await asyncio.shield(self._running)

    async def _compute(self, run: Runner) -> Report:
        try:
            code, report = await run(compute_health, self._settings)
            self._value = (time.monotonic(), code, report)
            return code, report
        finally:
            self._running = None
