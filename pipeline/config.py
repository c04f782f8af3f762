"""Every setting the pipeline reads, in one place.

Each setting comes from an environment variable with a documented default (the README's
configuration table mirrors this module). Relative paths from the environment are taken
relative to the current directory; the defaults are anchored at the project root so that
`runner.py` behaves the same from any working directory.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.redact import redact_url

PROJECT_ROOT = Path(__file__).resolve().parent.parent

GOLDSKY_SOURCES = ("sample", "dataset", "subgraph")

_GOLDSKY_PUBLIC = "https://api.goldsky.com/api/public/project_cl6mb8i9h0003e201j6li0diw/subgraphs"
DEFAULT_SUBGRAPH_URL = f"{_GOLDSKY_PUBLIC}/orderbook-subgraph/0.0.1/gn"
DEFAULT_PNL_SUBGRAPH_URL = f"{_GOLDSKY_PUBLIC}/pnl-subgraph/0.0.14/gn"


class ConfigError(ValueError):
    """A setting has a value the pipeline cannot work with."""


def _path(env: Mapping[str, str], name: str, default: Path) -> Path:
    value = env.get(name, "").strip()
    return Path(value).expanduser().resolve() if value else default


@dataclass(frozen=True)
class Settings:
    home: Path
    clickhouse_url: str | None
    clickhouse_user: str | None
    clickhouse_password: str | None = field(repr=False)
    clickhouse_path: Path
    data_dir: Path
    goldsky_source: str
    goldsky_dataset_dir: Path
    postgres_url: str | None = field(repr=False)
    reports_dir: Path
    sample_days: int
    sample_seed: int
    log_level: str
    # Goldsky subgraph source (GOLDSKY_SOURCE=subgraph). Defaults keep older callers working.
    goldsky_subgraph_url: str = DEFAULT_SUBGRAPH_URL
    goldsky_pnl_subgraph_url: str = DEFAULT_PNL_SUBGRAPH_URL
    goldsky_api_key: str | None = field(default=None, repr=False)  # a bearer token: never logged
    goldsky_rate_limit: float = 20.0  # requests/s; Goldsky allows 100 per IP
    goldsky_start: dt.datetime = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    goldsky_max_lag_minutes: float = 60.0
    goldsky_timeout_s: float = 30.0
    goldsky_page_size: int = 1000  # the subgraph caps `first` at 1000
    goldsky_max_attempts: int = 10  # per request, retries included
    goldsky_retry_wait_s: float = 1.0  # first backoff step (exponential, with jitter)
    goldsky_retry_max_wait_s: float = 60.0  # cap of one exponential backoff wait
    goldsky_batch_rows: int = 20000  # rows per write (and cursor advance)

    @property
    def embedded(self) -> bool:
        return self.clickhouse_url is None

    @property
    def sample_dir(self) -> Path:
        """Where the sample source writes its generated Goldsky files."""
        return self.home / "sample"

    @property
    def dbt_project_dir(self) -> Path:
        return PROJECT_ROOT / "dbt_project"

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


def env_number(
    env: Mapping[str, str],
    name: str,
    default: float,
    minimum: float = 0.0,
    maximum: float = math.inf,
    kind: type = float,
) -> float:
    """A number from the environment, or `default` when unset; a clear ConfigError naming
    the variable when it is not a number (of `kind`) or lies outside [minimum, maximum]."""
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a{'n integer' if kind is int else ' number'}") from None
    if not minimum <= value <= maximum:  # also rejects nan
        bounds = f"at least {minimum}" if maximum == math.inf else f"in range ({minimum}..{maximum})"
        raise ConfigError(f"{name}={raw!r} is out of range: must be {bounds}")
    return value


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


def _goldsky_settings(env: Mapping[str, str]) -> dict:
    page_size = int(env_number(env, "GOLDSKY_PAGE_SIZE", 1000, 1, kind=int))
    if page_size > 1000:
        raise ConfigError("GOLDSKY_PAGE_SIZE must be at most 1000 (the subgraph's cap on `first`)")
    return {
        "goldsky_subgraph_url": env.get("GOLDSKY_SUBGRAPH_URL", "").strip() or DEFAULT_SUBGRAPH_URL,
        "goldsky_pnl_subgraph_url": env.get("GOLDSKY_PNL_SUBGRAPH_URL", "").strip()
        or DEFAULT_PNL_SUBGRAPH_URL,
        "goldsky_api_key": env.get("GOLDSKY_API_KEY", "").strip() or None,
        "goldsky_rate_limit": env_number(env, "GOLDSKY_RATE_LIMIT", 20.0, 0.0),
        "goldsky_start": parse_utc(env.get("GOLDSKY_START", "").strip() or "2020-01-01", "GOLDSKY_START"),
        "goldsky_max_lag_minutes": env_number(env, "GOLDSKY_MAX_LAG_MINUTES", 60.0, 0.0),
        "goldsky_timeout_s": env_number(env, "GOLDSKY_TIMEOUT_S", 30.0, 0.001),
        "goldsky_page_size": page_size,
        "goldsky_max_attempts": int(env_number(env, "GOLDSKY_MAX_ATTEMPTS", 10, 1, kind=int)),
        "goldsky_retry_wait_s": env_number(env, "GOLDSKY_RETRY_WAIT_S", 1.0, 0.0),
        "goldsky_retry_max_wait_s": env_number(env, "GOLDSKY_RETRY_MAX_WAIT_S", 60.0, 0.0),
        "goldsky_batch_rows": int(env_number(env, "GOLDSKY_BATCH_ROWS", 20000, 1, kind=int)),
    }


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if env is None else env
    home = _path(env, "CASCADIAN_HOME", PROJECT_ROOT / ".cascadian")
    source = env.get("GOLDSKY_SOURCE", "sample").strip() or "sample"
    if source not in GOLDSKY_SOURCES:
        raise ConfigError(f"GOLDSKY_SOURCE={source!r} is not one of {', '.join(GOLDSKY_SOURCES)}")
    try:
        sample_days = int(env.get("SAMPLE_DAYS", "30"))
        sample_seed = int(env.get("SAMPLE_SEED", "20251029"))
    except ValueError as exc:
        raise ConfigError(f"SAMPLE_DAYS and SAMPLE_SEED must be integers: {exc}") from None
    if sample_days < 1:
        raise ConfigError("SAMPLE_DAYS must be at least 1")
    return Settings(
        home=home,
        clickhouse_url=env.get("CLICKHOUSE_URL", "").strip() or None,
        clickhouse_user=env.get("CLICKHOUSE_USER") or None,
        clickhouse_password=env.get("CLICKHOUSE_PASSWORD") or None,
        clickhouse_path=_path(env, "CLICKHOUSE_PATH", home / "chdb"),
        data_dir=_path(env, "DATA_DIR", PROJECT_ROOT / "data"),
        goldsky_source=source,
        goldsky_dataset_dir=_path(env, "GOLDSKY_DATASET_DIR", home / "goldsky"),
        postgres_url=env.get("POSTGRES_URL", "").strip() or None,
        reports_dir=_path(env, "REPORTS_DIR", PROJECT_ROOT / "reports"),
        sample_days=sample_days,
        sample_seed=sample_seed,
        log_level=env.get("LOG_LEVEL", "INFO").upper(),
        **_goldsky_settings(env),
    )
