"""Shared test setup. Every process of the suite runs in UTC, like the pipeline.

Helpers live in tests/support/ (see its __init__); their fixtures are registered below.
Markers (pyproject.toml): `postgres` is added to every test that uses a Postgres fixture,
`slow` to every test that runs the pipeline or dbt end to end, so that
`pytest -m "not slow and not postgres"` runs the fast unit tests alone.
"""

from __future__ import annotations

import os
import time

os.environ["TZ"] = "UTC"
time.tzset()
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")

import pytest  # noqa: E402

pytest_plugins = [
    "tests.support.engine",
    "tests.support.pg_fixtures",
    "tests.support.watchlist_world",
]

# Fixtures whose use makes a test need Postgres, or run the pipeline or dbt end to end.
POSTGRES_FIXTURES = {"pg_url", "empty_pg_url", "watchlist_world"}
SLOW_FIXTURES = {"sample_run", "watchlist_world"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        used = set(getattr(item, "fixturenames", ()))
        if used & POSTGRES_FIXTURES:
            item.add_marker(pytest.mark.postgres)
        if used & SLOW_FIXTURES:
            item.add_marker(pytest.mark.slow)
