"""Shared fixtures. Every process of the suite runs in UTC, like the pipeline.

chDB admits one data directory per process at a time, so fixtures open clients only inside
`with warehouse.connect(...)` blocks and never keep one across tests.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from pathlib import Path

os.environ["TZ"] = "UTC"
time.tzset()
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")

import pytest  # noqa: E402

from pipeline.config import Settings, load_settings  # noqa: E402

# A fixed "now" for sample runs: the sample is dated relative to the run.
SAMPLE_NOW = dt.datetime(2026, 11, 28, 8, 0, tzinfo=dt.UTC)


def make_settings(root: Path, **env: str) -> Settings:
    """Settings whose every path lies under `root` (nothing touches the checkout)."""
    base = {
        "CASCADIAN_HOME": str(root / "home"),
        "DATA_DIR": str(root / "data"),
        "REPORTS_DIR": str(root / "reports"),
        "GOLDSKY_DATASET_DIR": str(root / "goldsky"),
        "SAMPLE_DAYS": "10",
    }
    base.update(env)
    return load_settings(base)


HOLDER = """
import sys, clickhouse_connect
client = clickhouse_connect.get_client(interface="chdb", path=sys.argv[1])
client.command("SELECT 1")
print("holding", flush=True)
sys.stdin.read()  # hold the directory until the test closes our stdin
"""


@pytest.fixture
def held_directory(tmp_path):
    """Settings whose embedded engine directory another process holds (as a pipeline run
    would), for as long as the test runs."""
    import subprocess
    import sys

    from pipeline.config import PROJECT_ROOT

    settings = make_settings(tmp_path)
    settings.clickhouse_path.mkdir(parents=True)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(settings.clickhouse_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={"TZ": "UTC", "PATH": ""},
        cwd=PROJECT_ROOT,
    )
    assert holder.stdout.readline().strip() == "holding"
    yield settings
    holder.stdin.close()
    holder.wait(timeout=30)


@pytest.fixture(scope="session")
def sample_run(tmp_path_factory):
    """The nightly job run once on the sample data (10 days), shared by read-only tests."""
    from pipeline.nightly import run_nightly

    settings = make_settings(tmp_path_factory.mktemp("sample"))
    status, run = run_nightly(settings, now=SAMPLE_NOW)
    return settings, status, run


# Postgres: a throw-away database per session (`pg_url`) or per test (`empty_pg_url`).
from tests.pg_fixtures import empty_pg_url, pg_url  # noqa: E402,F401
from tests.watchlist_world import watchlist_world  # noqa: E402,F401
