"""Thresholds of the healthcheck, the quality checkpoint and the health report.

Read from environment variables with documented defaults, in the style of
pipeline/config.py (docs/health.md lists them with what each one decides). Kept apart from
the pipeline's Settings so the health tooling can grow without touching the shared file.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from pipeline.config import ConfigError, env_number
from pipeline.redact import redact_url

DEFAULT_API_ROUTES = ("/api/health", "/api/strategies")
DEFAULT_POSTGRES_TABLES = ("strategies", "strategy_watchlists")
# Reference files refreshed with the data (the category taxonomy is curated by hand and
# changes rarely: it is listed with its age but not graded unless named here).
DEFAULT_FRESHNESS_FILES = ("expanded_resolution_map.json", "markets.jsonl")


@dataclass(frozen=True)
class HealthSettings:
    check_timeout_s: float = 10.0  # HEALTH_CHECK_TIMEOUT_S: each check's time budget
    goldsky_file_warn_hours: float = 24.0  # HEALTH_GOLDSKY_FILE_WARN_HOURS (dataset source)
    goldsky_file_critical_hours: float = 48.0
    goldsky_lag_critical_minutes: float = 1440.0  # HEALTH_GOLDSKY_LAG_CRITICAL_MINUTES (subgraph)
    postgres_tables: tuple[str, ...] = DEFAULT_POSTGRES_TABLES  # HEALTH_POSTGRES_TABLES
    postgres_timeout_s: float = 5.0  # HEALTH_POSTGRES_TIMEOUT_S (libpq rounds up to 2)
    freshness_files: tuple[str, ...] = DEFAULT_FRESHNESS_FILES  # HEALTH_FRESHNESS_FILES
    freshness_warn_hours: float = 24.0  # HEALTH_FRESHNESS_WARN_HOURS
    freshness_critical_hours: float = 48.0  # HEALTH_FRESHNESS_CRITICAL_HOURS
    min_resolved_conditions: int = 3000  # MIN_RESOLVED_CONDITIONS
    api_base_url: str | None = None  # API_BASE_URL
    api_routes: tuple[str, ...] = DEFAULT_API_ROUTES  # API_ROUTES
    api_slow_ms: float = 5000.0  # API_SLOW_MS
    api_timeout_s: float = 8.0  # API_TIMEOUT_S
    trades_warn_hours: float = 24.0  # HEALTH_TRADES_WARN_HOURS (also the GX warn level)
    trades_critical_hours: float = 48.0  # HEALTH_TRADES_CRITICAL_HOURS (also the GX fail level)
    last_run_warn_hours: float = 26.0  # HEALTH_LAST_RUN_WARN_HOURS
    last_run_critical_hours: float = 50.0  # HEALTH_LAST_RUN_CRITICAL_HOURS
    gx_results_max_hours: float = 26.0  # HEALTH_GX_MAX_AGE_HOURS
    gx_window_days: int = 3  # HEALTH_GX_WINDOW_DAYS: recent fills validated
    lookups_max_share: float = 0.5  # HEALTH_LOOKUPS_MAX_SHARE
    report_runs: int = 14  # HEALTH_REPORT_RUNS: runs in the report's charts
    report_top_wallets: int = 10  # HEALTH_REPORT_TOP_WALLETS: per category
    report_timeout_s: float = 300.0  # HEALTH_REPORT_TIMEOUT_S: notebook execution

    def describe(self) -> dict[str, object]:
        d = {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}
        d["api_base_url"] = redact_url(self.api_base_url) if self.api_base_url else None
        return d


def _list(env: Mapping[str, str], name: str, default: tuple[str, ...]) -> tuple[str, ...]:
    raw = env.get(name)
    if raw is None or not raw.strip():
        return default
    return tuple(item.strip() for item in raw.split(",") if item.strip())


def _ordered(warn_name: str, warn: float, crit_name: str, crit: float) -> None:
    if warn > crit:
        raise ConfigError(f"{warn_name} ({warn}) must not exceed {crit_name} ({crit})")


def load_health_settings(env: Mapping[str, str] | None = None) -> HealthSettings:
    env = os.environ if env is None else env
    hs = HealthSettings(
        check_timeout_s=env_number(env, "HEALTH_CHECK_TIMEOUT_S", 10.0, 0.1),
        goldsky_file_warn_hours=env_number(env, "HEALTH_GOLDSKY_FILE_WARN_HOURS", 24.0),
        goldsky_file_critical_hours=env_number(env, "HEALTH_GOLDSKY_FILE_CRITICAL_HOURS", 48.0),
        goldsky_lag_critical_minutes=env_number(env, "HEALTH_GOLDSKY_LAG_CRITICAL_MINUTES", 1440.0),
        postgres_tables=_list(env, "HEALTH_POSTGRES_TABLES", DEFAULT_POSTGRES_TABLES),
        postgres_timeout_s=env_number(env, "HEALTH_POSTGRES_TIMEOUT_S", 5.0, 1.0),
        freshness_files=_list(env, "HEALTH_FRESHNESS_FILES", DEFAULT_FRESHNESS_FILES),
        freshness_warn_hours=env_number(env, "HEALTH_FRESHNESS_WARN_HOURS", 24.0),
        freshness_critical_hours=env_number(env, "HEALTH_FRESHNESS_CRITICAL_HOURS", 48.0),
        min_resolved_conditions=int(env_number(env, "MIN_RESOLVED_CONDITIONS", 3000, 0, kind=int)),
        api_base_url=(env.get("API_BASE_URL", "").strip().rstrip("/") or None),
        api_routes=_list(env, "API_ROUTES", DEFAULT_API_ROUTES),
        api_slow_ms=env_number(env, "API_SLOW_MS", 5000.0, 1.0),
        api_timeout_s=env_number(env, "API_TIMEOUT_S", 8.0, 0.1),
        trades_warn_hours=env_number(env, "HEALTH_TRADES_WARN_HOURS", 24.0),
        trades_critical_hours=env_number(env, "HEALTH_TRADES_CRITICAL_HOURS", 48.0),
        last_run_warn_hours=env_number(env, "HEALTH_LAST_RUN_WARN_HOURS", 26.0),
        last_run_critical_hours=env_number(env, "HEALTH_LAST_RUN_CRITICAL_HOURS", 50.0),
        gx_results_max_hours=env_number(env, "HEALTH_GX_MAX_AGE_HOURS", 26.0),
        gx_window_days=int(env_number(env, "HEALTH_GX_WINDOW_DAYS", 3, 1, kind=int)),
        lookups_max_share=env_number(env, "HEALTH_LOOKUPS_MAX_SHARE", 0.5),
        report_runs=int(env_number(env, "HEALTH_REPORT_RUNS", 14, 1, kind=int)),
        report_top_wallets=int(env_number(env, "HEALTH_REPORT_TOP_WALLETS", 10, 1, kind=int)),
        report_timeout_s=env_number(env, "HEALTH_REPORT_TIMEOUT_S", 300.0, 1.0),
    )
    _ordered(
        "HEALTH_GOLDSKY_FILE_WARN_HOURS",
        hs.goldsky_file_warn_hours,
        "HEALTH_GOLDSKY_FILE_CRITICAL_HOURS",
        hs.goldsky_file_critical_hours,
    )
    _ordered(
        "HEALTH_FRESHNESS_WARN_HOURS",
        hs.freshness_warn_hours,
        "HEALTH_FRESHNESS_CRITICAL_HOURS",
        hs.freshness_critical_hours,
    )
    _ordered(
        "HEALTH_TRADES_WARN_HOURS",
        hs.trades_warn_hours,
        "HEALTH_TRADES_CRITICAL_HOURS",
        hs.trades_critical_hours,
    )
    _ordered(
        "HEALTH_LAST_RUN_WARN_HOURS",
        hs.last_run_warn_hours,
        "HEALTH_LAST_RUN_CRITICAL_HOURS",
        hs.last_run_critical_hours,
    )
    if hs.lookups_max_share > 1:
        raise ConfigError("HEALTH_LOOKUPS_MAX_SHARE is a share: at most 1")
    if hs.api_base_url and not hs.api_base_url.startswith(("http://", "https://")):
        raise ConfigError(f"API_BASE_URL={hs.api_base_url!r} must start with http:// or https://")
    return hs
