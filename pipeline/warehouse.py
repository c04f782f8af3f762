"""The one way into ClickHouse: embedded chDB by default, a server when CLICKHOUSE_URL is set.

Embedded chDB admits a single process per data directory. Connections are opened per unit
of work (`with connect(settings) as ch:`) and closed promptly, and a directory held by
another process surfaces as `WarehouseBusy` instead of an engine traceback.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import clickhouse_connect
from clickhouse_connect.driver.client import Client

from pipeline import names
from pipeline.config import Settings
from pipeline.logs import describe_error

log = logging.getLogger(__name__)

DATABASES = names.DATABASES

# What chDB says when another process holds the data directory's lock.
_LOCK_MARKERS = ("Cannot lock file", "Another server instance in same directory")
_OPEN_LOCK = threading.Lock()


# What a client is told when the engine is held: true whoever holds it (the nightly run, a
# second API process, `runner.py sql`, a notebook), and naming no path or process.
HELD_BY_ANOTHER_PROCESS = (
    "another process holds the embedded engine (the nightly run, or another process on this warehouse)"
)


class WarehouseBusy(RuntimeError):
    """The embedded engine's data directory is held by another process."""


class WarehouseUnavailable(RuntimeError):
    """ClickHouse could not be reached or opened."""


def engine_message(exc: BaseException | str) -> str:
    """What the engine said, whole and on one line, for a person. Its first line alone cut
    messages mid-sentence (a syntax error echoes the query, newlines included, before
    "Expected one of: ..."; a file it cannot describe says "Error:" and gives the cause on
    the next line). The error codes, version, the client's FORMAT suffix to the query and a
    server's stack trace say nothing about the query or the file, and are left out."""
    text = str(exc).split("Stack trace:")[0].replace("\n FORMAT Native", "")
    text = re.sub(r"(?:Code: \d+\. )?DB::Exception: ", "", text)
    text = re.sub(r"Code: \d+\.\s*", "", text)
    text = re.sub(r" \(version [\d.]+\)", "", text)
    return " ".join(text.split()) or "no message"


def held_by_another_process(path: Path) -> bool:
    """Whether another process holds the engine's lock on `<path>/status`.

    The engine takes an exclusive flock on that file for as long as it runs. This is the
    second signal of a held directory, after the engine's own message (`_open_engine`).
    """
    status = path / "status"
    if not status.exists():
        return False
    try:
        fh = status.open("rb")
    except FileNotFoundError:  # a holder shutting down removed it after we looked
        return False
    with fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(fh, fcntl.LOCK_UN)
    return False


def _flush_stderr() -> None:
    if sys.stderr is not None:  # None when the process started without a stderr
        sys.stderr.flush()


@contextlib.contextmanager
def _stderr_lines() -> Iterator[list[str]]:
    """The lines this process writes to fd 2 inside the block (filled in when it ends).

    A process started with fd 2 closed (Python's sys.stderr is then None; a file opened
    later may hold fd 2) has nothing to read, and the block runs as is.
    """
    lines: list[str] = []
    try:
        saved = os.dup(2) if sys.stderr is not None else None
    except OSError:
        saved = None
    if saved is None:
        yield lines
        return
    with tempfile.TemporaryFile() as sink:
        _flush_stderr()
        os.dup2(sink.fileno(), 2)
        try:
            yield lines
        finally:
            _flush_stderr()
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            lines.extend(sink.read().decode(errors="replace").splitlines(keepends=True))


def _open_engine(path: Path) -> tuple[Client | None, str]:
    """Open the embedded engine in this process; the client, or None and why it failed.

    chDB's exception for a held directory is often only "Error initializing
    EmbeddedServer": the reason ("Cannot lock file") goes to the process's stderr. So
    stderr is read while the engine starts, and what it carried is passed on, except the
    lock lines, which the caller turns into a busy error. One open at a time per process,
    so that two threads never swap stderr under each other.
    """
    with _OPEN_LOCK, _stderr_lines() as said:
        try:
            client, failure = clickhouse_connect.get_client(interface="chdb", path=str(path)), ""
        except Exception as exc:  # chDB raises plain RuntimeErrors from the engine
            client, failure = None, str(exc)
    lock_lines = [line for line in said if any(m in line for m in _LOCK_MARKERS)]
    others = "".join(line for line in said if line not in lock_lines)
    if others:
        os.write(2, others.encode())
    if client is None and lock_lines:
        failure = f"{failure} {lock_lines[0].strip()}"
    return client, failure


def _embedded_client(settings: Settings, attempts: int = 3) -> Client:
    """Open the embedded engine, telling "held by another process" from a real failure.

    The engine's own words decide first (`_open_engine`); failing those, the lock: a holder
    that opens and closes the engine in a loop may have let go by the time we look, so a
    failure while the lock is free is tried again, and only a failure that repeats is
    "unavailable".
    """
    settings.clickhouse_path.mkdir(parents=True, exist_ok=True)
    for attempt in range(1, attempts + 1):
        client, failure = _open_engine(settings.clickhouse_path)
        if client is not None:
            return client
        if any(m in failure for m in _LOCK_MARKERS) or held_by_another_process(settings.clickhouse_path):
            raise WarehouseBusy(
                f"busy: the embedded ClickHouse at {settings.clickhouse_path} is held by "
                f"{_holder(settings.clickhouse_path)}; try again when it has finished"
            )
        if attempt == attempts:
            raise WarehouseUnavailable(f"cannot open embedded ClickHouse: {failure}")
        time.sleep(0.05 * attempt)
    raise AssertionError("unreachable")


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
            f"cannot reach ClickHouse at {params['host']}:{params['port']}: {describe_error(exc)}"
        ) from exc


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


def query_frame(client: Client, sql: str, columns: list[str], parameters: dict[str, Any] | None = None):
    """A query's rows as a pandas frame that keeps its columns even when no row comes back
    (the embedded engine reports no column names for an empty result)."""
    import pandas as pd

    result = client.query(sql, parameters=parameters or {})
    found = list(result.column_names) or columns
    if found != columns:
        raise RuntimeError(f"query returned columns {found}, expected {columns}")
    return pd.DataFrame(list(result.result_rows), columns=columns)


def has_rows(client: Client, relation: str) -> bool:
    """Whether a table or view has at least one row (a view stops computing at the first)."""
    return bool(client.query(f"SELECT 1 FROM {relation} LIMIT 1").result_rows)


def decimal_text(value: Decimal | int | str, scale: int = 0) -> str:
    """`value` × 10^-`scale` as ClickHouse's toString prints a Decimal: no exponent, no
    trailing zeros, "0" for zero. Exact at any size (no context rounding), so amounts read
    with toString and amounts summed in Python come out in one form."""
    sign, digits, exponent = Decimal(value).as_tuple()
    text = format(Decimal((sign, digits, exponent - scale)), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("0", "-0") else text


def table_rows(client: Client, database: str, tables: Iterable[str]) -> dict[str, int | None]:
    """Row counts of existing `tables` from the engine's own bookkeeping (no scan); None for a
    view, whose rows only a query over it could count."""
    rows = client.query(
        "SELECT name, total_rows FROM system.tables WHERE database = {db:String} AND name IN {names:Array(String)}",
        parameters={"db": database, "names": list(tables)},
    ).result_rows
    return {name: (int(total) if total is not None else None) for name, total in rows}


def _holder(path: Path) -> str:
    """Who holds the engine's lock on `<path>/status`, from /proc/locks (Linux; best effort):
    a busy message that names the process tells the reader whether to wait or to stop it.
    The command is one line (a `python -c` script has newlines) so the message stays one."""
    try:
        status = (path / "status").stat()
        wanted = f"{os.major(status.st_dev):02x}:{os.minor(status.st_dev):02x}:{status.st_ino}"
        for line in Path("/proc/locks").read_text().splitlines():
            fields = line.split()
            if len(fields) > 5 and fields[5] == wanted:
                pid = fields[4]
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                return f"pid {pid} ({' '.join(cmd.split())[:120]})"
    except (OSError, ValueError):
        pass
    return "another process"


@contextlib.contextmanager
def hold(
    settings: Settings, wait_s: float, poll_s: float = 0.5, stop: threading.Event | None = None
) -> Iterator[Client | None]:
    """Keep the embedded engine open in this process for the block (a whole run), so that no
    other process can open it, and with it make a step fail, until the block ends.

    Another process holding it (a `runner.py sql`, the API answering a request) is waited
    for, up to `wait_s` seconds, with a log line every 10 s naming the holder; after that
    WarehouseBusy (exit 3). `wait_s` 0 is for a command run by hand: busy at once, which says
    nothing of a wait. `stop` set (a shutdown requested) ends the wait as busy too: the run
    had not started. A server (CLICKHOUSE_URL) has no such lock: nothing is held.
    """
    if not settings.embedded:
        yield None
        return
    started = time.monotonic()
    logged = 0.0
    while True:
        try:
            client = open_client(settings)
            break
        except WarehouseBusy:
            if wait_s <= 0:
                raise
            waited = time.monotonic() - started
            if waited >= wait_s or (stop is not None and stop.is_set()):
                after = f"{wait_s:g} s (CLICKHOUSE_WAIT_S)" if waited >= wait_s else f"{waited:.1f} s"
                raise WarehouseBusy(
                    f"busy: the embedded ClickHouse at {settings.clickhouse_path} is still held by "
                    f"{_holder(settings.clickhouse_path)} after waiting {after}"
                    + ("" if waited >= wait_s else "; stopped waiting: shutdown requested")
                ) from None
            if waited - logged >= 10 or logged == 0:
                logged = waited or 0.001
                log.warning(
                    "waiting for the embedded engine",
                    extra={
                        "ctx": {
                            "holder": _holder(settings.clickhouse_path),
                            "waited_s": round(waited, 1),
                            "wait_s": wait_s,
                        }
                    },
                )
            if stop is not None:
                stop.wait(poll_s)
            else:
                time.sleep(poll_s)
    if time.monotonic() - started > poll_s:
        log.info(
            "embedded engine acquired", extra={"ctx": {"waited_s": round(time.monotonic() - started, 1)}}
        )
    try:
        yield client
    finally:
        client.close()
