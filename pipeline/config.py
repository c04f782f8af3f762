"""Every setting, in one place: one typed model read from environment variables.

`Settings` (pydantic-settings) holds the pipeline's own settings and one group per feature
(`api`, `health`, `watchlist`, `schedule`), so a wrong value is refused at start with the
variable's name and the reason, never as a traceback halfway through a night. Each field's
description is its documentation: `runner.py config` prints the whole table and
docs/configuration.md is generated from it.

Values come from the process environment, which the command line first completes from an
env file (`CASCADIAN_ENV_FILE`, default `<project>/.env`; variables already set win), so a
cron job, a systemd unit and an interactive shell all read the same settings. Relative paths
are taken relative to the current directory; the defaults are anchored at the project root
so that `runner.py` behaves the same from any working directory.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, EnvSettingsSource, NoDecode, SettingsConfigDict

from pipeline.redact import redact_url, url_secrets
from pipeline.redact import register as register_secrets

PROJECT_ROOT = Path(__file__).resolve().parent.parent
ENV_FILE_VARIABLE = "CASCADIAN_ENV_FILE"
DEFAULT_ENV_FILE = PROJECT_ROOT / ".env"

GOLDSKY_SOURCES = ("sample", "dataset", "subgraph")
_GOLDSKY_PUBLIC = "https://api.goldsky.com/api/public/project_cl6mb8i9h0003e201j6li0diw/subgraphs"
DEFAULT_SUBGRAPH_URL = f"{_GOLDSKY_PUBLIC}/orderbook-subgraph/0.0.1/gn"
DEFAULT_PNL_SUBGRAPH_URL = f"{_GOLDSKY_PUBLIC}/pnl-subgraph/0.0.14/gn"

CONDITION_ID = re.compile(r"^0x[0-9a-f]{64}$")
ORIGIN = re.compile(r"^https?://[^/\s:?#]+(:[0-9]{1,5})?$")
MARKET_ID = re.compile(r"^[0-9]{1,78}$")


class ConfigError(ValueError):
    """A setting has a value the pipeline cannot work with."""


# The mapping `load_settings(env)` reads instead of os.environ (tests pass their own).
_environment: contextvars.ContextVar[Mapping[str, str] | None] = contextvars.ContextVar(
    "cascadian_environment", default=None
)


class _EnvironmentSource(EnvSettingsSource):
    """pydantic-settings' environment source, reading the mapping given to load_settings."""

    def _load_env_vars(self) -> Mapping[str, str | None]:
        env = _environment.get()
        found = super()._load_env_vars() if env is None else env
        # an empty (or blank) value means unset: the documented default applies
        return {
            (k if self.case_sensitive else k.lower()): v
            for k, v in found.items()
            if v is not None and v.strip()
        }


class _Group(BaseSettings):
    """Settings read from the environment: frozen, unknown variables ignored, an empty value
    means unset (the documented default applies)."""

    model_config = SettingsConfigDict(
        frozen=True, extra="ignore", env_ignore_empty=True, validate_by_name=True, validate_by_alias=True
    )

    def replace(self, **changes: Any) -> Any:
        """A copy with `changes` applied (field names, not variable names), as
        dataclasses.replace does for a frozen dataclass."""
        return self.model_copy(update=changes)

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, **_others):
        return (init_settings, _EnvironmentSource(settings_cls))


def _comma_list(value: Any) -> Any:
    if isinstance(value, str):
        return tuple(item.strip() for item in value.split(",") if item.strip())
    return value


CommaList = Annotated[tuple[str, ...], NoDecode]
Hours = Annotated[float, Field(ge=0)]


class ApiSettings(_Group):
    """The read API (`runner.py serve`, docs/api.md)."""

    model_config = SettingsConfigDict(env_prefix="API_")

    token: str | None = Field(
        None, repr=False, description="bearer token required by every route but /api/health; never logged"
    )
    request_timeout_s: float = Field(10.0, ge=0.1, description="time limit of every request but the stream's")
    stream_heartbeat_s: float = Field(
        15.0, ge=0.05, description="SSE comment line sent when nothing happened for this long"
    )
    health_cache_s: float = Field(10.0, ge=0, description="/api/health answers from a cache this young")
    marts_cache_s: float = Field(
        60.0, ge=0, description="a wallet's category PnL answers from a cache this young (0: none)"
    )
    health_timeout_s: float = Field(
        30.0, ge=0.1, description="/api/health's own time limit (the checks take a while)"
    )
    retry_after_s: int = Field(30, ge=1, description="Retry-After of a 503 while the embedded engine is busy")
    pg_pool_max: int = Field(10, ge=1, description="pooled Postgres connections")
    pg_pool_timeout_s: float = Field(5.0, ge=0.1, description="wait for a pooled connection, then 503")
    pg_statement_timeout_ms: int = Field(5000, ge=1, description="time limit of every Postgres statement")
    engine_worker_opens: int = Field(
        10,
        ge=1,
        le=10_000,
        description="embedded engine: the API's warehouse reads run in one child process, replaced "
        "after it has started the engine this many times (chDB leaves threads behind each time)",
    )
    warehouse_threads: int = Field(
        4, ge=1, le=64, description="ClickHouse server (CLICKHOUSE_URL): threads running the API's queries"
    )
    warehouse_queue: int = Field(
        64,
        ge=1,
        le=10_000,
        description="warehouse requests (wallets, leaderboard, health) waiting or running at once; the next is "
        "answered 503 with Retry-After",
    )
    stream_secret: str | None = Field(
        None,
        min_length=16,
        repr=False,
        description="key that signs stream tokens (HMAC-SHA256; at least 16 characters; never logged); "
        "default: derived from API_TOKEN, so every worker sharing API_TOKEN accepts the others' "
        "tokens; set it to revoke every outstanding stream token without changing API_TOKEN",
    )
    stream_token_ttl_s: int = Field(
        300,
        ge=5,
        le=86_400,
        description="lifetime of a stream token (POST /api/stream-tokens): it must open the stream "
        "within this time; an open stream stays open",
    )
    cors_origins: CommaList = Field(
        (),
        description="origins (`scheme://host[:port]`, comma-separated) whose web pages may call the API "
        "and read the stream (CORS); `*` for any; none by default",
    )

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _origins(cls, value: Any) -> Any:
        items = tuple(item.rstrip("/") if item.count("/") == 3 else item for item in _comma_list(value))
        for item in items:
            if item != "*" and not ORIGIN.match(item):
                raise ValueError(
                    f"{item!r} is not an origin (scheme://host[:port], http or https, no path), nor '*'"
                )
        return tuple(dict.fromkeys(items))


class HealthSettings(_Group):
    """Thresholds of the healthcheck, the quality checkpoint and the report (docs/health.md)."""

    model_config = SettingsConfigDict(env_prefix="HEALTH_")

    check_timeout_s: float = Field(10.0, ge=0.1, description="each check's time budget")
    goldsky_file_warn_hours: Hours = Field(24.0, description="newest dataset file older than this: warning")
    goldsky_file_critical_hours: Hours = Field(48.0, description="... older than this: critical")
    goldsky_lag_critical_minutes: float = Field(
        1440.0, ge=0, description="subgraph behind the chain by more: critical"
    )
    postgres_tables: CommaList = Field(
        ("strategies", "strategy_watchlists"), description="app tables that must exist (comma-separated)"
    )
    postgres_timeout_s: float = Field(
        5.0, ge=1, description="Postgres connect timeout (libpq rounds up to 2)"
    )
    freshness_files: CommaList = Field(
        ("expanded_resolution_map.json", "markets.jsonl"),
        description="reference files graded for age (comma-separated; the category taxonomy is only listed)",
    )
    freshness_warn_hours: Hours = Field(24.0, description="reference file older than this: warning")
    freshness_critical_hours: Hours = Field(48.0, description="... older than this: critical")
    min_resolved_conditions: int = Field(
        3000,
        ge=0,
        validation_alias="MIN_RESOLVED_CONDITIONS",
        description="fewer resolved conditions than this: critical",
    )
    api_base_url: str | None = Field(
        None,
        validation_alias="API_BASE_URL",
        description="where the API answers, for the API check (unset: the check reports `not configured`)",
    )
    api_routes: CommaList = Field(
        ("/api/health", "/api/strategies"),
        validation_alias="API_ROUTES",
        description="routes the API check calls (comma-separated)",
    )
    api_slow_ms: float = Field(
        5000.0,
        ge=1,
        validation_alias="API_SLOW_MS",
        description="an API answer slower than this: warning",
    )
    api_timeout_s: float = Field(
        8.0,
        ge=0.1,
        validation_alias="API_TIMEOUT_S",
        description="no API answer within this: critical",
    )
    trades_warn_hours: Hours = Field(
        24.0, description="newest fill older than this: warning (also the GX warn level)"
    )
    trades_critical_hours: Hours = Field(
        48.0, description="... older than this: critical (also the GX fail level)"
    )
    last_run_warn_hours: Hours = Field(26.0, description="last successful run older than this: warning")
    last_run_critical_hours: Hours = Field(50.0, description="... older than this: critical")
    gx_results_max_hours: Hours = Field(
        26.0,
        validation_alias="HEALTH_GX_MAX_AGE_HOURS",
        description="Great Expectations results older than this count as missing",
    )
    gx_window_days: int = Field(3, ge=1, description="days of recent fills the quality checkpoint validates")
    lookups_max_share: float = Field(
        0.5, ge=0, le=1, description="largest share one market id may have in the lookups file"
    )
    report_runs: int = Field(14, ge=1, description="runs shown in the report's charts")
    report_top_wallets: int = Field(
        10, ge=1, description="wallets listed per category, and in the 30-day leaderboard, in the report"
    )
    report_timeout_s: float = Field(300.0, ge=1, description="time limit of the report notebook's execution")

    _split = field_validator("postgres_tables", "freshness_files", "api_routes", mode="before")(_comma_list)

    @field_validator("api_base_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip().rstrip("/")
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value

    @model_validator(mode="after")
    def _warn_before_critical(self) -> HealthSettings:
        for warn, critical in (
            ("goldsky_file_warn_hours", "goldsky_file_critical_hours"),
            ("freshness_warn_hours", "freshness_critical_hours"),
            ("trades_warn_hours", "trades_critical_hours"),
            ("last_run_warn_hours", "last_run_critical_hours"),
        ):
            if getattr(self, warn) > getattr(self, critical):
                raise ValueError(
                    f"HEALTH_{warn.upper()} ({getattr(self, warn)}) must not exceed "
                    f"HEALTH_{critical.upper()} ({getattr(self, critical)})"
                )
        return self

    def describe(self) -> dict[str, object]:
        d = {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.model_dump().items()}
        d["api_base_url"] = redact_url(self.api_base_url) if self.api_base_url else None
        return d


class WatchlistSettings(_Group):
    """Watchlist auto-populate (docs/api.md)."""

    model_config = SettingsConfigDict(env_prefix="WATCHLIST_")

    default_market_id: str | None = Field(
        None,
        validation_alias="DEFAULT_MARKET_ID",
        description="a market (decimal id) every strategy watches when signals fail",
    )
    default_condition_ids: CommaList = Field(
        (),
        validation_alias="DEFAULT_CONDITION_IDS",
        description="conditions (`0x` + 64 lower-case hex, comma-separated) every strategy watches when signals fail",
    )
    fallback_size: int = Field(
        10,
        ge=1,
        le=1000,
        description="most active unresolved markets per strategy when signals fail and no defaults are set",
    )
    top_wallets: int = Field(
        20, ge=1, le=100_000, description="signal wallets: the best N by realized PnL among qualified wallets"
    )
    min_resolved_markets: int = Field(
        3, ge=0, le=1_000_000, description="a qualified wallet traded at least this many resolved markets"
    )
    min_coverage: float = Field(
        0.10, ge=0, le=1, description="... and at least this share of its traded markets resolved"
    )
    lookback_hours: float = Field(
        720.0,
        ge=0,
        le=24 * 3650,
        description="a strategy's first publish: positions opened this long before the newest fill "
        "(and still held, in unresolved markets); later publishes take what opened since the last",
    )

    @field_validator("default_market_id")
    @classmethod
    def _market_id(cls, value: str | None) -> str | None:
        if value is not None and not MARKET_ID.match(value.strip()):
            raise ValueError(f"{value!r} is not a market id (a decimal string such as '512345')")
        return value.strip() if value else None

    @field_validator("default_condition_ids", mode="before")
    @classmethod
    def _condition_ids(cls, value: Any) -> Any:
        items = _comma_list(value)
        for item in items:
            if not CONDITION_ID.match(item):
                raise ValueError(f"{item!r} is not a condition id ('0x' + 64 lower-case hex characters)")
        return tuple(dict.fromkeys(items))

    @property
    def has_defaults(self) -> bool:
        return bool(self.default_market_id or self.default_condition_ids)


WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


class ScheduleSettings(_Group):
    """When the nightly job fires (docs/runbook.md)."""

    model_config = SettingsConfigDict(env_prefix="SCHEDULE_")

    at: str = Field("03:00", description="local fire time, HH:MM")
    tz: str = Field("America/New_York", description="IANA time zone of SCHEDULE_AT")
    catchup_hours: float = Field(
        26.0, ge=0, description="at start, run once if the last successful run is older than this"
    )
    full_checks: str = Field(
        "sunday",
        description="the night (a weekday in SCHEDULE_TZ, by the run's start, or 'daily') whose dbt "
        "build also runs the data tests that read the whole history (dbt tag whole_history)",
    )

    @field_validator("at")
    @classmethod
    def _hh_mm(cls, value: str) -> str:
        match = re.fullmatch(r"(\d{1,2}):(\d{2})", value.strip())
        if not match or int(match[1]) > 23 or int(match[2]) > 59:
            raise ValueError(f"{value!r} is not a time of day as HH:MM")
        return f"{int(match[1]):02d}:{match[2]}"

    @field_validator("tz")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not an IANA time zone (e.g. America/New_York)") from None
        return value

    @field_validator("full_checks")
    @classmethod
    def _night(cls, value: str) -> str:
        value = value.strip().lower()
        if value != "daily" and value not in WEEKDAYS:
            raise ValueError(f"{value!r} is not a weekday name (monday ... sunday) or 'daily'")
        return value

    def full_checks_on(self, started_at: dt.datetime) -> bool:
        """Whether the run started at `started_at` is the full-check night: the tests of the
        whole history are too slow for every night and too important for never."""
        if self.full_checks == "daily":
            return True
        return WEEKDAYS[started_at.astimezone(ZoneInfo(self.tz)).weekday()] == self.full_checks

    @property
    def hour(self) -> int:
        return int(self.at.split(":")[0])

    @property
    def minute(self) -> int:
        return int(self.at.split(":")[1])


class Settings(_Group):
    """The pipeline's settings (README, Configuration)."""

    # not `home`: with names accepted as aliases, the shell's HOME would be read for it
    cascadian_home: Path = Field(
        PROJECT_ROOT / ".cascadian", description="working state: engine data, sample files, dbt target"
    )
    clickhouse_url: str | None = Field(
        None, description="a ClickHouse server, e.g. https://host:8443 (unset: embedded chDB)"
    )
    clickhouse_user: str | None = Field(None, description="server user (default `default`)")
    clickhouse_password: str | None = Field(None, repr=False, description="server password (never logged)")
    clickhouse_path: Path | None = Field(
        None, description="the embedded engine's data directory (default CASCADIAN_HOME/chdb)"
    )
    clickhouse_wait_s: float = Field(
        300.0,
        ge=0,
        description="how long a run waits for another process to release the embedded engine before it exits busy (3)",
    )
    clickhouse_insert_threads: int = Field(
        0,
        ge=0,
        le=256,
        description="threads writing each dbt model's rows (ClickHouse max_insert_threads); 0: one per "
        "CPU core, at most 4, with the embedded engine, the server's own setting with a server",
    )
    data_dir: Path = Field(PROJECT_ROOT / "data", description="reference files (data/README.md)")
    goldsky_source: Literal["sample", "dataset", "subgraph"] = Field(
        "sample",
        description="`sample` (generated), `dataset` (Goldsky dataset files), `subgraph` (Goldsky's subgraph)",
    )
    goldsky_dataset_dir: Path | None = Field(
        None, description="where dataset files are delivered (default CASCADIAN_HOME/goldsky)"
    )
    postgres_url: str | None = Field(
        None,
        repr=False,
        description="the platform's app database (watchlists, API); unset: those steps are skipped",
    )
    reports_dir: Path = Field(
        PROJECT_ROOT / "reports", description="one folder per run date with each run's summary and report"
    )
    sample_days: int = Field(30, ge=1, description="days of generated sample fills")
    sample_seed: int = Field(20251029, description="seed of the generated sample")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="DEBUG, INFO, WARNING or ERROR"
    )
    log_format: Literal["auto", "json", "text"] = Field(
        "auto",
        description="`auto`: JSON lines when stdout is not a terminal, logfmt on a terminal; or `json` / `text` (logfmt)",
    )
    # Goldsky subgraph source (GOLDSKY_SOURCE=subgraph), docs/goldsky.md
    goldsky_subgraph_url: str = Field(DEFAULT_SUBGRAPH_URL, description="orderbook subgraph endpoint")
    goldsky_pnl_subgraph_url: str = Field(
        DEFAULT_PNL_SUBGRAPH_URL, description="pnl subgraph endpoint (resolutions)"
    )
    goldsky_api_key: str | None = Field(
        None, repr=False, description="bearer token for private endpoints (never logged)"
    )
    goldsky_rate_limit: float = Field(
        20.0, ge=0, description="requests per second (Goldsky allows 100 per IP; 0: no limit)"
    )
    goldsky_start: dt.datetime = Field(
        dt.datetime(2020, 1, 1, tzinfo=dt.UTC),
        description="first fill time of a fresh subgraph backfill (ISO date/time or unix seconds, UTC)",
    )
    goldsky_max_lag_minutes: float = Field(
        60.0, ge=0, description="subgraph behind the chain by more: warning"
    )
    goldsky_timeout_s: float = Field(30.0, ge=0.001, description="time limit of one request")
    goldsky_page_size: int = Field(
        1000, ge=1, le=1000, description="rows per page (the subgraph caps `first` at 1000)"
    )
    goldsky_max_attempts: int = Field(10, ge=1, description="attempts per request, retries included")
    goldsky_retry_wait_s: float = Field(
        1.0, ge=0, description="first backoff step (exponential, with jitter)"
    )
    goldsky_retry_max_wait_s: float = Field(60.0, ge=0, description="cap of one backoff wait")
    goldsky_retry_budget_s: float = Field(
        300.0,
        ge=0,
        description="seconds a step may lose to failed requests and the waits after them, all its requests together (0: no retries)",
    )
    goldsky_batch_rows: int = Field(20000, ge=1, description="rows per write (and cursor advance)")

    api: ApiSettings = Field(default_factory=ApiSettings)
    health: HealthSettings = Field(default_factory=HealthSettings)
    watchlist: WatchlistSettings = Field(default_factory=WatchlistSettings)
    schedule: ScheduleSettings = Field(default_factory=ScheduleSettings)

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("log_format", "goldsky_source", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("cascadian_home", "clickhouse_path", "data_dir", "goldsky_dataset_dir", "reports_dir")
    @classmethod
    def _absolute(cls, value: Path | None) -> Path | None:
        return value.expanduser().resolve() if value is not None else None

    @field_validator("goldsky_start", mode="before")
    @classmethod
    def _utc_time(cls, value: Any) -> Any:
        return parse_utc(value, "GOLDSKY_START") if isinstance(value, str) else value

    @field_validator("clickhouse_url", "postgres_url", "goldsky_subgraph_url", "goldsky_pnl_subgraph_url")
    @classmethod
    def _strip(cls, value: str | None) -> str | None:
        return value.strip() or None if isinstance(value, str) else value

    @model_validator(mode="after")
    def _defaults_under_home(self) -> Settings:
        # frozen: the derived defaults are set once, here
        if self.clickhouse_path is None:
            object.__setattr__(self, "clickhouse_path", self.home / "chdb")
        if self.goldsky_dataset_dir is None:
            object.__setattr__(self, "goldsky_dataset_dir", self.home / "goldsky")
        return self

    @property
    def home(self) -> Path:
        """CASCADIAN_HOME."""
        return self.cascadian_home

    @property
    def embedded(self) -> bool:
        return self.clickhouse_url is None

    @property
    def insert_threads(self) -> int:
        """max_insert_threads for dbt's writes (0: leave the server's own). Without it the
        engine writes an INSERT ... SELECT's rows on one thread: at 10M bench fills the full
        build of int_wallet_market_days took 27-29 s that way, 21 s on two. Each thread sorts
        and buffers its own blocks, so the default stops at 4 (measured on 2 cores only)."""
        if self.clickhouse_insert_threads or not self.embedded:
            return self.clickhouse_insert_threads
        return min(os.cpu_count() or 1, 4)

    @property
    def sample_dir(self) -> Path:
        """Where the sample source writes its generated Goldsky files."""
        return self.home / "sample"

    @property
    def dbt_project_dir(self) -> Path:
        return PROJECT_ROOT / "dbt_project"

    def secret_values(self) -> list[str]:
        """Every credential these settings carry (masked wherever text is persisted)."""
        values = [self.clickhouse_password, self.goldsky_api_key, self.api.token, self.api.stream_secret]
        for url in (
            self.clickhouse_url,
            self.postgres_url,
            self.goldsky_subgraph_url,
            self.goldsky_pnl_subgraph_url,
            self.health.api_base_url,
        ):
            values += url_secrets(url)
        return [v for v in values if v]

    def describe(self) -> dict[str, str]:
        """Settings safe to log: no passwords, and URLs without credentials."""
        return {
            "clickhouse": "embedded:" + str(self.clickhouse_path)
            if self.embedded
            else redact_url(self.clickhouse_url or ""),
            "data_dir": str(self.data_dir),
            "goldsky_source": self.goldsky_source,
            "goldsky_dataset_dir": str(self.goldsky_dataset_dir),
            "postgres": redact_url(self.postgres_url) if self.postgres_url else "not configured",
            "reports_dir": str(self.reports_dir),
            "goldsky_subgraph_url": redact_url(self.goldsky_subgraph_url),
            "goldsky_pnl_subgraph_url": redact_url(self.goldsky_pnl_subgraph_url),
            "goldsky_rate_limit": str(self.goldsky_rate_limit),
        }


GROUPS: dict[str, type[_Group]] = {
    "": Settings,
    "api": ApiSettings,
    "health": HealthSettings,
    "watchlist": WatchlistSettings,
    "schedule": ScheduleSettings,
}


def variable_name(model: type[_Group], field: str) -> str:
    """The environment variable that sets `field` of `model`."""
    alias = model.model_fields[field].validation_alias
    if isinstance(alias, str):
        return alias
    return (model.model_config.get("env_prefix", "") + field).upper()


def variables() -> list[dict[str, str]]:
    """Every variable with its default and meaning, in the model's order: the documentation."""
    rows = []
    for model in GROUPS.values():
        for name, info in model.model_fields.items():
            if isinstance(info.default_factory, type) and issubclass(info.default_factory, _Group):
                continue
            default = info.default
            if isinstance(default, tuple):
                default = ",".join(default) if default else "(none)"
            elif isinstance(default, Path):
                default = str(default).replace(str(PROJECT_ROOT), "<project>")
            elif isinstance(default, dt.datetime):
                default = default.date().isoformat()
            elif default is None:
                default = "unset"
            rows.append(
                {
                    "variable": variable_name(model, name),
                    "default": str(default),
                    "meaning": info.description or "",
                }
            )
    return rows


def configuration_markdown() -> str:
    """docs/configuration.md: every variable, generated from the model (tests keep it in sync)."""
    lines = [
        "# Configuration",
        "",
        "Generated from `pipeline/config.py` by `runner.py config --markdown`; do not edit by hand.",
        "",
        "Every setting is an environment variable. The command line first reads the env file",
        f"(`{ENV_FILE_VARIABLE}`, default `<project>/.env`: `NAME=value` lines, the format systemd's",
        "`EnvironmentFile=` also reads); a variable already set in the environment wins. An empty",
        "value means the default. A bad value stops the command at start with the variable's name",
        "and the reason (exit 2), and so does a line of the env file that is not `NAME=value` (with",
        "the file and the line number).",
        "",
        "| variable | default | meaning |",
        "|---|---|---|",
    ]
    for row in variables():
        meaning = row["meaning"].replace("|", "\\|")
        lines.append(f"| `{row['variable']}` | `{row['default']}` | {meaning} |")
    return "\n".join(lines) + "\n"


def _explain(exc: ValidationError) -> str:
    model = next((m for m in GROUPS.values() if m.__name__ == exc.title), Settings)
    lines = []
    for error in exc.errors(include_url=False):
        loc = [str(part) for part in error["loc"]]
        field = loc[0] if loc else ""
        name = variable_name(model, field) if field in model.model_fields else field.upper() or "settings"
        value = error.get("input")
        shown = (
            f"={value!r}" if isinstance(value, str | int | float) and "password" not in name.lower() else ""
        )
        reason = error["msg"].removeprefix("Value error, ")
        lines.append(f"{name}{shown}: {reason}" if name != "settings" else reason)
    return "; ".join(lines)


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """The settings from `env` (default: the process environment). A value the pipeline cannot
    work with raises ConfigError naming the variable and the reason."""
    token = _environment.set(env)
    try:
        settings = Settings()
        register_secrets(settings.secret_values())
        return settings
    except ValidationError as exc:
        raise ConfigError(_explain(exc)) from None
    finally:
        _environment.reset(token)


def env_file_path(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    named = env.get(ENV_FILE_VARIABLE, "").strip()
    return Path(named).expanduser().resolve() if named else DEFAULT_ENV_FILE


def load_env_file(path: Path | None = None) -> Path | None:
    """Complete the process environment from the env file (variables already set win).
    Returns the file read, or None when there is none. A file named by CASCADIAN_ENV_FILE
    must exist. A line that is not `NAME=value` is an error naming the file and line, as a
    bad value is: python-dotenv skipped it with a warning that named no file, and the run
    went on without the setting the line was meant to be (its text is not repeated: it may
    hold a secret)."""
    from dotenv import dotenv_values
    from dotenv.parser import parse_stream

    path = path or env_file_path()
    if not path.is_file():
        if os.environ.get(ENV_FILE_VARIABLE, "").strip():
            raise ConfigError(f"{ENV_FILE_VARIABLE}={path} does not exist")
        return None
    with path.open(encoding="utf-8") as fh:
        for binding in parse_stream(fh):
            if binding.error:  # the statement's start line counts the blank lines before it
                text = binding.original.string
                line = binding.original.line + text[: len(text) - len(text.lstrip())].count("\n")
                raise ConfigError(f"{path}, line {line}: not a NAME=value line")
    for key, value in dotenv_values(path).items():  # python-dotenv's reading (${VAR} included)
        if value is not None:
            os.environ.setdefault(key, value)
    return path


@contextlib.contextmanager
def environ_updated(updates: Mapping[str, str]) -> Iterator[None]:
    """Set environment variables for the duration of a block (for tools such as dbt and
    Jupyter that read their settings from the environment), then restore what was there."""
    saved = {k: os.environ.get(k) for k in updates}
    os.environ.update(updates)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def parse_utc(value: str, name: str = "time") -> dt.datetime:
    """An ISO date or date-time (naive means UTC), or unix seconds, as an aware UTC time."""
    text = value.strip()
    try:
        if text.isdigit():
            return dt.datetime.fromtimestamp(int(text), dt.UTC)
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (ValueError, OverflowError):
        raise ConfigError(f"{name}={value!r} is not an ISO date/time or unix seconds") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC)
