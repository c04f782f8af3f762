"""Run dbt in-process, on the embedded engine or a server.

dbt-clickhouse (1.10.x) has no chDB driver. For the embedded engine we keep the profile's
`driver: http` and replace the adapter's client factory, `ChHttpClient._create_client`,
with one that returns a clickhouse-connect chDB client on CLICKHOUSE_PATH. That factory is
private, which is why dbt-clickhouse is pinned and tests/test_dbt_hook.py exercises the hook.
This module is the only place that touches dbt-clickhouse internals.

dbt runs in this process (dbtRunner), never as a subprocess: a second process could not
open the embedded data directory while the runner holds it, and one in-process invocation
also saves dbt's 8-9 s start-up per call.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pipeline.config import Settings
from pipeline.logs import dbt_progress_callback
from pipeline.warehouse import open_client, server_params

log = logging.getLogger(__name__)

_installed_for: Settings | None = None


def install_chdb_hook(settings: Settings) -> None:
    """Make dbt-clickhouse's HTTP client factory hand out chDB clients for `settings`."""
    global _installed_for
    from dbt.adapters.clickhouse.httpclient import ChHttpClient

    def _create_client(self, credentials):
        client = open_client(_installed_for)  # type: ignore[arg-type]
        for key, value in self._conn_settings.items():
            if key != "session_id":  # chDB sessions are per client already
                client.set_client_setting(key, value)
        return client

    _installed_for = settings
    if getattr(ChHttpClient._create_client, "_cascadian_chdb", False):
        return
    _create_client._cascadian_chdb = True  # type: ignore[attr-defined]
    ChHttpClient._create_client = _create_client
    # The adapter asks `server_settings` for a few settings; chDB clients lack the
    # attribute, and "unknown" is an answer the adapter already handles.
    ChHttpClient.get_ch_setting = lambda self, name: (None, 0)  # type: ignore[assignment]


def dbt_environment(settings: Settings) -> dict[str, str]:
    """Environment the profile reads: target choice, write threads and, for a server, its
    address."""
    env = {
        "DBT_TARGET": "embedded" if settings.embedded else "server",
        # Compiled SQL, partial-parse state and logs live beside the engine's data, so two
        # checkouts or test sessions never share (and corrupt) one target folder.
        "DBT_TARGET_PATH": str(settings.home / "dbt" / "target"),
        "DBT_LOG_PATH": str(settings.home / "dbt" / "logs"),
        "CASCADIAN_INSERT_THREADS": str(settings.insert_threads),
    }
    if not settings.embedded:
        params = server_params(settings)
        env.update(
            CLICKHOUSE_HOST=params["host"],
            CLICKHOUSE_PORT=str(params["port"]),
            CLICKHOUSE_SECURE="true" if params["secure"] else "false",
            CLICKHOUSE_USER=params["username"],
            CLICKHOUSE_PASSWORD=params["password"],
        )
    return env


@dataclass
class DbtOutcome:
    success: bool
    results: list[dict]
    error: str | None = None

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.results:
            out[r["status"]] = out.get(r["status"], 0) + 1
        return out

    @property
    def failures(self) -> list[dict]:
        return [r for r in self.results if r["status"] in ("error", "fail", "runtime error")]


# The run's clock, for the models that record when the pipeline first saw something
# (int_condition_resolved_days): an environment variable rather than a dbt var, because a
# changed var makes dbt re-parse the whole project, a changed env_var only the models using it.
RUN_AT_ENV = "CASCADIAN_RUN_AT"


# dbt's commands that read only the project, never the warehouse: they run while another
# process holds the embedded engine (a run, a reader).
_NO_ENGINE_COMMANDS = {"clean", "deps", "init", "list", "ls", "parse"}
_COMMANDS = _NO_ENGINE_COMMANDS | {
    "build", "clone", "compile", "debug", "docs", "retry", "run", "run-operation", "seed",
    "show", "snapshot", "source", "test",
}  # fmt: skip


def needs_engine(args: Sequence[str]) -> bool:
    """Whether dbt with `args` opens the warehouse. dbt turns a busy engine into its own
    "Database Error" (exit 1), so the caller opens the engine first for these: busy is then
    told as busy (exit 3), before dbt starts."""
    if any(a in ("-h", "--help", "-V", "--version") for a in args):
        return False
    command = next((a for a in args if a in _COMMANDS), None)
    if command is None or command in _NO_ENGINE_COMMANDS:
        return False
    return not (command == "docs" and "serve" in args)


def run_dbt(settings: Settings, args: Sequence[str], *, run_at: dt.datetime | None = None) -> DbtOutcome:
    """Invoke dbt with `args` (as on dbt's command line) against the configured engine;
    `run_at` is the night's clock (default: the engine's own now())."""
    os.environ.update(dbt_environment(settings))
    if run_at is None:
        os.environ.pop(RUN_AT_ENV, None)
    else:
        os.environ[RUN_AT_ENV] = run_at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    if settings.embedded:
        install_chdb_hook(settings)
    project = str(settings.dbt_project_dir)
    # one log line per node start and finish (pipeline/logs.py): progress instead of silence
    return invoke(args, {"--project-dir": project, "--profiles-dir": project}, [dbt_progress_callback()])


def invoke(
    args: Sequence[str], defaults: dict[str, str], callbacks: Sequence[Callable[[Any], None]] = ()
) -> DbtOutcome:
    """dbt in this process with `args`, adding each default flag the caller did not give;
    `callbacks` receive dbt's events as they happen."""
    from dbt.cli.main import dbtRunner

    full_args = list(args)
    for flag, value in defaults.items():
        if flag not in full_args:
            full_args += [flag, value]
    if not sys.stdout.isatty() and not {"--use-colors", "--no-use-colors"} & set(full_args):
        full_args.append("--no-use-colors")  # piped to a file or a log shipper: no ANSI codes
    result = dbtRunner(callbacks=list(callbacks)).invoke(full_args)
    rows = []
    for r in getattr(result.result, "results", None) or []:
        node = getattr(r, "node", None)
        rows.append(
            {
                "name": getattr(node, "name", None) or getattr(r, "unique_id", "?"),
                "resource_type": str(getattr(node, "resource_type", "")),
                "status": str(getattr(r, "status", "")),
                "message": getattr(r, "message", None),
                "seconds": round(float(getattr(r, "execution_time", 0) or 0), 3),
            }
        )
    error = str(result.exception) if result.exception else None
    return DbtOutcome(success=bool(result.success), results=rows, error=error)
