"""Run the app database's dbt project (`dbt_app/`, dbt-postgres) in-process.

Like pipeline/dbt_chdb.py, dbt runs through dbtRunner in this process: a pipeline run has
already paid for importing dbt, so the second project costs about a second. The two
projects coexist in one process: dbt registers one adapter per type (clickhouse, postgres)
and each invocation loads the profile it is given (tests/test_watchlist_models.py runs the
ClickHouse project and then this one in the same process).

Unlike the ClickHouse project, nothing here needs a hook: the profile reads the pieces of
POSTGRES_URL from the environment variables set below. Compiled SQL, partial-parse state and
logs go to CASCADIAN_HOME/dbt_app, apart from the ClickHouse project's.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

from psycopg.conninfo import conninfo_to_dict

from pipeline.config import PROJECT_ROOT, Settings, environ_updated
from pipeline.dbt_chdb import DbtOutcome, invoke
from watchlist import db

log = logging.getLogger(__name__)

APP_PROJECT_DIR = PROJECT_ROOT / "dbt_app"


def app_dbt_environment(url: str, schema: str = "public") -> dict[str, str]:
    """The profile's variables for the database at `url` (a postgresql:// URL or conninfo)."""
    parts = {k: str(v) for k, v in conninfo_to_dict(url).items() if v is not None}
    host = parts.get("host", "127.0.0.1")
    return {
        "CASCADIAN_PG_HOST": host.split(",")[0],
        "CASCADIAN_PG_PORT": parts.get("port", "5432").split(",")[0],
        "CASCADIAN_PG_USER": parts.get("user", os.environ.get("USER", "postgres")),
        "DBT_ENV_SECRET_CASCADIAN_PG_PASSWORD": parts.get("password", ""),
        "CASCADIAN_PG_DATABASE": parts.get("dbname", parts.get("user", "postgres")),
        "CASCADIAN_PG_SCHEMA": schema,
        "CASCADIAN_PG_SSLMODE": parts.get("sslmode", "prefer"),
    }


def app_schema(url: str) -> str:
    """The schema the migrations created the tables in: the connection's current schema."""
    with db.connect(url, autocommit=True) as conn:
        return conn.execute("SELECT current_schema()").fetchone()[0]


def run_app_dbt(settings: Settings, args: Sequence[str], url: str | None = None) -> DbtOutcome:
    """Invoke dbt with `args` on `dbt_app/` against the app database (POSTGRES_URL)."""
    url = url or settings.postgres_url
    if not url:
        raise ValueError("POSTGRES_URL not set")
    env = app_dbt_environment(url, app_schema(url))
    with environ_updated(env):  # for the profile; removed again after dbt ran (the password too)
        return _invoke(settings, args)


def _invoke(settings: Settings, args: Sequence[str]) -> DbtOutcome:
    project = str(APP_PROJECT_DIR)
    return invoke(
        args,
        {
            "--project-dir": project,
            "--profiles-dir": project,
            "--target-path": str(settings.home / "dbt_app" / "target"),
            "--log-path": str(settings.home / "dbt_app" / "logs"),
            # explicit: run_dbt leaves DBT_TARGET (the ClickHouse target) in the environment
            "--target": "app",
        },
    )


def build_app_models(settings: Settings, url: str | None = None) -> DbtOutcome:
    """`dbt build` of the app project: the views the API reads, their tests and unit tests."""
    return run_app_dbt(settings, ["build", "--quiet"], url=url)
