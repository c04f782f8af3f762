"""The one way into ClickHouse: embedded chDB by default, a server when CLICKHOUSE_URL is set.

Embedded chDB admits a single process per data directory. Connections are opened per unit
of work (`with connect(settings) as ch:`) and closed promptly, and a directory held by
another process surfaces as `WarehouseBusy` instead of an engine traceback.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import clickhouse_connect
from clickhouse_connect.driver.client import Client

from pipeline.config import Settings

log = logging.getLogger(__name__)

DATABASES = ("raw", "analytics", "ops")

# What chDB says when another process holds the data directory's lock.
_LOCK_MARKERS = ("Cannot lock file", "Another server instance in same directory")


class WarehouseBusy(RuntimeError):
    """The embedded engine's data directory is held by another process."""


class WarehouseUnavailable(RuntimeError):
    """ClickHouse could not be reached or opened."""


def held_by_another_process(path: Path) -> bool:
    """Whether another process holds the engine's lock on `<path>/status`.

    The engine takes an exclusive flock on that file for as long as it runs; chDB reports a
    failed open only as "Error initializing EmbeddedServer" (the lock message goes to
    stderr), so the lock itself is the reliable signal.
    """
    status = path / "status"
    if not status.exists():
        return False
    with status.open("rb") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(fh, fcntl.LOCK_UN)
    return False


def _embedded_client(settings: Settings) -> Client:
    settings.clickhouse_path.mkdir(parents=True, exist_ok=True)
    try:
        return clickhouse_connect.get_client(interface="chdb", path=str(settings.clickhouse_path))
    except Exception as exc:  # chDB raises plain RuntimeErrors from the engine
        text = str(exc)
        if any(m in text for m in _LOCK_MARKERS) or held_by_another_process(settings.clickhouse_path):
            raise WarehouseBusy(
                f"busy: the embedded ClickHouse at {settings.clickhouse_path} is held by "
                "another process (a pipeline run?); try again when it has finished"
            ) from None
        raise WarehouseUnavailable(f"cannot open embedded ClickHouse: {text}") from exc


def server_params(settings: Settings) -> dict:
    """Connection parameters for a ClickHouse server, credentials from the environment."""
    url = urlsplit(settings.clickhouse_url or "")
    secure = url.scheme in ("https", "clickhouses")
    return {
        "host": url.hostname or "localhost",
        "port": url.port or (8443 if secure else 8123),
        "secure": secure,
        "username": settings.clickhouse_user or url.username or "default",
        "password": settings.clickhouse_password or url.password or "",
    }


def _server_client(settings: Settings) -> Client:
    params = server_params(settings)
    try:
        return clickhouse_connect.get_client(**params, connect_timeout=10)
    except Exception as exc:
        raise WarehouseUnavailable(
            f"cannot reach ClickHouse at {params['host']}:{params['port']}: {exc}"
        ) from None


def open_client(settings: Settings) -> Client:
    """A new client; the caller closes it (prefer `connect`)."""
    return _embedded_client(settings) if settings.embedded else _server_client(settings)


@contextlib.contextmanager
def connect(settings: Settings) -> Iterator[Client]:
    client = open_client(settings)
    try:
        yield client
    finally:
        client.close()


def ensure_databases(client: Client) -> None:
    for db in DATABASES:
        client.command(f"CREATE DATABASE IF NOT EXISTS {db}")


def table_exists(client: Client, database: str, table: str) -> bool:
    return bool(
        client.command(
            "SELECT count() FROM system.tables WHERE database = {db:String} AND name = {t:String}",
            parameters={"db": database, "t": table},
        )
    )


def count_rows(client: Client, table: str, final: bool = False) -> int:
    return int(client.command(f"SELECT count() FROM {table}{' FINAL' if final else ''}"))
