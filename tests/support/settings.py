"""Settings for tests: every path under a temp folder, nothing touches the checkout."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from pipeline.config import Settings, load_settings

# A fixed "now" for sample runs: the sample is dated relative to the run.
SAMPLE_NOW = dt.datetime(2026, 11, 28, 8, 0, tzinfo=dt.UTC)


def make_settings(root: Path, **env: str) -> Settings:
    """Settings whose every path lies under `root`, from `env` alone (not the process's)."""
    base = {
        "CASCADIAN_HOME": str(root / "home"),
        "DATA_DIR": str(root / "data"),
        "REPORTS_DIR": str(root / "reports"),
        "GOLDSKY_DATASET_DIR": str(root / "goldsky"),
        "SAMPLE_DAYS": "10",
        # every test night runs all of dbt's data tests (the sample is small); the nights
        # between full checks are tested in test_dbt_project.py
        "SCHEDULE_FULL_CHECKS": "daily",
    }
    base.update(env)
    return load_settings(base)
