"""How far a subgraph's indexed head is behind the chain (`_meta`), for the ingest's warning
and the healthcheck."""

from __future__ import annotations

import datetime as dt
from typing import Any

from ingest.goldsky_client import MalformedPage, SubgraphClient
from pipeline.config import Settings
from pipeline.redact import redact_url

UTC = dt.UTC
META_QUERY = "query Meta { _meta { block { number timestamp } hasIndexingErrors } }"


def meta(client: SubgraphClient, now: dt.datetime | None = None) -> dict[str, Any]:
    """How far the subgraph's indexed head is behind the wall clock."""
    data = client.query(META_QUERY)
    m = data.get("_meta")
    block = m.get("block") if isinstance(m, dict) else None
    if not isinstance(block, dict):
        raise MalformedPage(f"{client.label}: `_meta.block` missing from {data!r:.200}")
    now = now or dt.datetime.now(UTC)
    ts = block.get("timestamp")
    block_time = dt.datetime.fromtimestamp(int(ts), UTC) if ts is not None else None
    return {
        "endpoint": client.label,
        "block_number": int(block["number"]) if block.get("number") is not None else None,
        "block_time": block_time.isoformat() if block_time else None,
        "lag_minutes": round((now - block_time).total_seconds() / 60, 1) if block_time else None,
        "has_indexing_errors": bool(m.get("hasIndexingErrors")),
    }


def subgraph_lag(settings: Settings, url: str | None = None) -> dict[str, Any]:
    """For the healthcheck: the subgraph's head block, lag in minutes and whether that is
    within GOLDSKY_MAX_LAG_MINUTES. Never raises: a failure is reported in `error`."""
    try:
        with SubgraphClient.from_settings(settings, url) as client:
            client.max_attempts = min(client.max_attempts, 3)
            report = meta(client)
    except Exception as exc:  # the healthcheck shows it; it must not crash
        return {
            "endpoint": redact_url(url or settings.goldsky_subgraph_url),
            "ok": False,
            "error": f"{type(exc).__name__}: {exc}",
            "max_lag_minutes": settings.goldsky_max_lag_minutes,
        }
    lag = report["lag_minutes"]
    report["max_lag_minutes"] = settings.goldsky_max_lag_minutes
    report["ok"] = (
        lag is not None and lag <= settings.goldsky_max_lag_minutes and not report["has_indexing_errors"]
    )
    return report
