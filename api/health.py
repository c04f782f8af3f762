"""GET /api/health: the healthcheck's report, cached briefly.

The full healthcheck lives in `health.checks.run_checks` (written separately). It is
imported lazily in `compute_health`, the one place that calls it; until it exists, or if it
fails, a minimal check of our own answers: ClickHouse and Postgres.

The full healthcheck may itself call GET /api/health (its API-routes check). While a
computation is in progress, a nested request answers from the cache, or with the minimal
check, so the two never wait on each other.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import threading
import time
from typing import Any

from pipeline import warehouse
from pipeline.config import Settings

log = logging.getLogger(__name__)

OK, WARN, ERROR = "ok", "warn", "error"
_ORDER = {OK: 0, WARN: 1, ERROR: 2}
_BAD = {"error", "fail", "failed", "down", "critical", "unhealthy", "red"}


def _check(name: str, fn) -> dict[str, Any]:
    started = time.monotonic()
    try:
        status, detail = fn()
    except Exception as exc:
        status, detail = ERROR, f"{type(exc).__name__}: {str(exc).strip()[:300]}"
    return {"name": name, "status": status, "detail": detail, "seconds": round(time.monotonic() - started, 3)}


def minimal_checks(settings: Settings) -> dict[str, Any]:
    """ClickHouse answers (busy counts as a warning: the pipeline holds the engine) and
    Postgres answers (when configured)."""

    def clickhouse():
        try:
            with warehouse.connect(settings) as ch:
                version = ch.command("SELECT version()")
        except warehouse.WarehouseBusy as exc:
            return WARN, str(exc)
        return OK, f"ClickHouse {version}" + (" (embedded)" if settings.embedded else "")

    def postgres():
        if not settings.postgres_url:
            return WARN, "POSTGRES_URL not set"
        import psycopg

        with psycopg.connect(settings.postgres_url, connect_timeout=5, autocommit=True) as conn:
            version = conn.execute("SHOW server_version").fetchone()[0]
        return OK, f"PostgreSQL {version}"

    checks = [_check("clickhouse", clickhouse), _check("postgres", postgres)]
    status = max((c["status"] for c in checks), key=_ORDER.__getitem__)
    return {
        "status": status,
        "source": "api-minimal",
        "checked_at": dt.datetime.now(dt.UTC).isoformat(),
        "checks": checks,
    }


def _as_dict(report: Any) -> dict[str, Any]:
    if isinstance(report, dict):
        return report
    for attr in ("to_dict", "as_dict", "model_dump"):
        if callable(getattr(report, attr, None)):
            return getattr(report, attr)()
    if dataclasses.is_dataclass(report):
        return dataclasses.asdict(report)
    return {"status": str(report)}


def compute_health(settings: Settings) -> tuple[int, dict[str, Any]]:
    """The health report and its HTTP status: 503 when the overall status is critical/error.

    The one call into the full healthcheck. Its "api" check (which requests this route) is
    left out: this process is the API, and it is answering.
    """
    try:
        from health.checks import (
            CHECK_NAMES,
            run_checks,  # the full healthcheck, when it exists
        )
    except ImportError:
        report = minimal_checks(settings)
    else:
        try:
            report = _as_dict(run_checks(settings, only=tuple(n for n in CHECK_NAMES if n != "api")))
        except Exception as exc:
            log.error(
                "healthcheck failed; answering with the minimal check",
                extra={"ctx": {"error": str(exc)[:300]}},
            )
            report = minimal_checks(settings)
            report["healthcheck_error"] = f"{type(exc).__name__}: {str(exc)[:300]}"
    status = str(report.get("status", ERROR)).lower()
    return (503 if status in _BAD else 200), report


class HealthCache:
    def __init__(self, settings: Settings, ttl_s: float):
        self._settings, self._ttl = settings, ttl_s
        self._lock = threading.Lock()
        self._busy = False
        self._value: tuple[float, int, dict[str, Any]] | None = None

    def get(self) -> tuple[int, dict[str, Any]]:
        nested = False
        with self._lock:
            if self._value and time.monotonic() - self._value[0] < self._ttl:
                return self._value[1], {**self._value[2], "cached": True}
            if self._busy:  # a nested call from the healthcheck itself
                if self._value:
                    return self._value[1], {**self._value[2], "cached": True}
                nested = True
            else:
                self._busy = True
        if nested:
            report = minimal_checks(self._settings)
            return (503 if report["status"] == ERROR else 200), report
        try:
            code, report = compute_health(self._settings)
            with self._lock:
                self._value = (time.monotonic(), code, report)
            return code, report
        finally:
            with self._lock:
                self._busy = False
