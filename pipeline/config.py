"""Every setting the pipeline reads, in one place.

Each setting comes from an environment variable with a documented default (the README's
configuration table mirrors this module). Relative paths from the environment are taken
relative to the current directory; the defaults are anchored at the project root so that
`runner.py` behaves the same from any working directory.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

PROJECT_ROOT = Path(__file__).resolve().parent.parent

GOLDSKY_SOURCES = ("sample", "dataset")


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
            else _redact_url(self.clickhouse_url or ""),
            "data_dir": str(self.data_dir),
            "goldsky_source": self.goldsky_source,
            "goldsky_dataset_dir": str(self.goldsky_dataset_dir),
            "postgres": _redact_url(self.postgres_url) if self.postgres_url else "not configured",
            "reports_dir": str(self.reports_dir),
        }


def _redact_url(url: str) -> str:
    """Drop user and password from a URL so it can be logged."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if env is None else env
    home = _path(env, "CASCADIAN_HOME", PROJECT_ROOT / ".cascadian")
    source = env.get("GOLDSKY_SOURCE", "sample").strip() or "sample"
    if source not in GOLDSKY_SOURCES:
        raise ConfigError(
            f"GOLDSKY_SOURCE={source!r} is not one of {', '.join(GOLDSKY_SOURCES)}"
        )
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
    )
