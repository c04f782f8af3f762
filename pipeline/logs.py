"""Structured log lines that carry their context.

Every record carries the run id and step (from context variables set by the run) plus any
`extra={"ctx": {...}}` the caller adds: file, cursor, rows. LOG_FORMAT=json prints one JSON
object per line (for log shippers); `text` prints logfmt (`ts=... level=info msg="..." k=v`,
values quoted and escaped as logfmt parsers expect), which a person reads and `grep`,
`klp` or a log shipper parses alike.

On a terminal, a record that carries `progress` (ingest's `i/N` per file, dbt's per node)
redraws one status line instead of adding a line, so a step shows one moving line rather
than one line per file; warnings and everything else are printed as lines above it. Without
a terminal (cron, systemd, CI, run.log) every record is its own line.

A traceback is printed only at LOG_LEVEL=DEBUG: otherwise an exception is one `error=` field
with its most specific cause (`connection refused`, not three layers of HTTP client text),
and libraries' own retry chatter (urllib3, clickhouse-connect) stays quiet. run.log keeps the
tracebacks.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import errno
import json
import logging
import logging.handlers
import os
import shutil
import socket
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from logfmter import Logfmter

from pipeline.redact import redact

run_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("run_id", default=None)
step_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("step", default=None)

# Libraries that log their own retries and driver failures, which our error line already
# states: shown at DEBUG only.
CHATTY_LIBRARIES = ("urllib3", "clickhouse_connect", "httpx", "httpcore")
QUIET_LIBRARIES = ("great_expectations",)


def _fields(record: logging.LogRecord, tracebacks: bool = True) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
        "level": record.levelname,
        "logger": record.name,
        "run_id": run_id_var.get(),
        "step": step_var.get(),
        "msg": record.getMessage(),
    }
    fields.update(getattr(record, "ctx", None) or {})
    if record.exc_info and record.exc_info[1] is not None:
        fields.setdefault(
            "error", f"{type(record.exc_info[1]).__name__}: {describe_error(record.exc_info[1])}"
        )
        if tracebacks:
            fields["exc"] = logging.Formatter().formatException(record.exc_info)
    return {k: v for k, v in fields.items() if v is not None}


def _tracebacks_shown() -> bool:
    """LOG_LEVEL=DEBUG: the console handler's level (the root's may be lowered for run.log)."""
    root = logging.getLogger()
    levels = [h.level for h in root.handlers if isinstance(h, ConsoleHandler)] or [root.getEffectiveLevel()]
    return min(levels) <= logging.DEBUG


class JsonFormatter(logging.Formatter):
    """One JSON object per line. `tracebacks=None`: only at DEBUG (the console); run.log
    keeps them always."""

    def __init__(self, tracebacks: bool | None = True):
        super().__init__()
        self.tracebacks = tracebacks

    def format(self, record: logging.LogRecord) -> str:
        shown = _tracebacks_shown() if self.tracebacks is None else self.tracebacks
        return redact(json.dumps(_fields(record, shown), default=str))


class LogfmtFormatter(logging.Formatter):
    """logfmt: `ts=… level=… msg="…" run_id=… step=… key=value …`, one line per record;
    a traceback (DEBUG only, unless `tracebacks=True`) follows on its own lines."""

    def __init__(self, tracebacks: bool | None = None):
        super().__init__()
        self.tracebacks = tracebacks

    def pairs(self, record: logging.LogRecord, shown: bool = False) -> dict[str, Any]:
        f = _fields(record, shown)
        f.pop("logger", None)
        f["ts"] = f["ts"].replace("+00:00", "Z")
        f["level"] = f["level"].lower()
        return f

    def format(self, record: logging.LogRecord) -> str:
        shown = _tracebacks_shown() if self.tracebacks is None else self.tracebacks
        f = self.pairs(record, shown)
        exc = f.pop("exc", None)
        line = " ".join(f"{Logfmter.normalize_key(str(k))}={_logfmt_value(v)}" for k, v in f.items())
        return redact(line + (f"\n{exc.rstrip()}" if exc else ""))


def _logfmt_value(value: Any) -> str:
    if isinstance(value, dict | list | tuple):
        value = json.dumps(value, default=str)
    formatted = Logfmter.format_value(value)
    return formatted if formatted else '""'


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """Step messages are read by people: "1 files" reads as a slip, "1 file" does not."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


def describe_error(exc: BaseException) -> str:
    """The most specific cause of `exc` in a few words: for a network failure the operating
    system's reason (`connection refused`, `name or service not known`, `timed out`) found
    anywhere in its chain; otherwise its first line."""
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, socket.gaierror):
            return str(current.strerror or current).lower()
        if isinstance(current, TimeoutError | socket.timeout):
            return "timed out"
        if isinstance(current, OSError) and current.errno in _NETWORK_ERRNOS:
            return os.strerror(current.errno).lower()
        for nxt in (current.__cause__, current.__context__, getattr(current, "reason", None)):
            if isinstance(nxt, BaseException):
                pending.append(nxt)
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:500]


_NETWORK_ERRNOS = {
    errno.ECONNREFUSED,
    errno.ECONNRESET,
    errno.EHOSTUNREACH,
    errno.ENETUNREACH,
    errno.ETIMEDOUT,
    errno.ECONNABORTED,
}


# --- the console ------------------------------------------------------------------------------

CLEAR_LINE = "\r\x1b[2K"


class ConsoleHandler(logging.StreamHandler):
    """Writes to whatever sys.stdout is at the time of the record, so a replaced stdout
    (a test's capture, a daemon's redirect) never leaves the handler on a closed stream.

    With `live` (logfmt on a terminal), records carrying `progress` below WARNING redraw one
    status line in place; any other record clears it and is printed as a line."""

    def __init__(self, live: bool = False):
        super().__init__()
        self.live = live
        self._status = False

    @property
    def stream(self):  # type: ignore[override]
        return sys.stdout

    @stream.setter
    def stream(self, _value) -> None:
        pass

    def _is_live(self) -> bool:
        try:
            return self.live and sys.stdout.isatty()
        except (AttributeError, ValueError):
            return False

    def emit(self, record: logging.LogRecord) -> None:
        try:
            stream = self.stream
            ctx = getattr(record, "ctx", None) or {}
            if self._is_live() and ctx.get("progress") is not None and record.levelno < logging.WARNING:
                stream.write(CLEAR_LINE + self.status_line(record))
                self._status = True
            else:
                prefix = CLEAR_LINE if self._status else ""
                self._status = False
                stream.write(prefix + self.format(record) + self.terminator)
            self.flush()
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)

    def status_line(self, record: logging.LogRecord) -> str:
        """`step progress msg key=value …` cut to the terminal's width."""
        formatter = self.formatter if isinstance(self.formatter, LogfmtFormatter) else LogfmtFormatter()
        f = formatter.pairs(record)
        for key in ("ts", "level", "run_id", "logger", "exc", "error"):
            f.pop(key, None)
        head = " ".join(str(f.pop(k)) for k in ("step", "progress", "msg") if k in f)
        tail = " ".join(f"{k}={_logfmt_value(v)}" for k, v in f.items())
        width = shutil.get_terminal_size((100, 24)).columns - 1
        return redact(f"{head}  {tail}" if tail else head)[:width]

    def close(self) -> None:
        if self._status:
            with contextlib.suppress(Exception):
                self.stream.write(CLEAR_LINE)
                self.flush()
            self._status = False
        super().close()


def setup_logging(level: str = "INFO", fmt: str = "auto") -> None:
    """Log to stdout: JSON lines when stdout is not a terminal (cron, systemd, CI) or
    LOG_FORMAT=json; logfmt on a terminal or with LOG_FORMAT=text, with progress redrawn in
    place on a terminal."""
    as_json = fmt == "json" or (fmt == "auto" and not sys.stdout.isatty())
    handler = ConsoleHandler(live=not as_json)
    handler.setFormatter(JsonFormatter(tracebacks=None) if as_json else LogfmtFormatter())
    handler.setLevel(level)  # run.log may take more than the console shows
    root = logging.getLogger()
    for old in root.handlers:
        if isinstance(old, ConsoleHandler):
            old.close()
    root.handlers[:] = [handler]
    root.setLevel(level)
    debug = root.isEnabledFor(logging.DEBUG)
    for chatty in CHATTY_LIBRARIES:
        logging.getLogger(chatty).setLevel(logging.DEBUG if debug else logging.ERROR)
    for quiet in QUIET_LIBRARIES:
        logging.getLogger(quiet).setLevel(logging.WARNING)


@contextlib.contextmanager
def run_log_file(path: Path, settings: object = None, max_bytes: int = 20_000_000) -> Iterator[Path]:
    """Also write JSON log lines to `path` (rotating) for as long as the block runs."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.handlers.RotatingFileHandler(path, maxBytes=max_bytes, backupCount=3, encoding="utf-8")
    handler.setFormatter(JsonFormatter())
    handler.setLevel(logging.INFO)
    root = logging.getLogger()
    # the run's record has its INFO lines whatever the console shows (LOG_LEVEL=WARNING)
    level = root.level
    root.setLevel(min(level, logging.INFO) if level else logging.INFO)
    root.addHandler(handler)
    try:
        yield path
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        handler.close()


# --- dbt's node progress ----------------------------------------------------------------------

# dbt events (dbtRunner callbacks) that start a node, and those that report its result.
DBT_NODE_START = frozenset({"LogStartLine"})
DBT_NODE_RESULT = frozenset(
    {
        "LogModelResult",
        "LogTestResult",
        "LogSeedResult",
        "LogSnapshotResult",
        "LogNodeNoOpResult",
        "LogFreshnessResult",
    }
)
DBT_PROBLEMS = frozenset({"error", "fail", "warn", "runtime error"})

dbt_log = logging.getLogger("pipeline.dbt")


def dbt_progress_callback(logger: logging.Logger = dbt_log) -> Callable[[Any], None]:
    """A dbtRunner callback that logs one line per node start and finish (node, status,
    seconds, `progress` i/N). dbt fires them from its worker threads, where the run's context
    variables are unset: the step and run id of the caller are captured here."""
    step, run_id = step_var.get(), run_id_var.get()
    started = time.monotonic()

    def on_event(event: Any) -> None:
        name = event.info.name
        if name not in DBT_NODE_START and name not in DBT_NODE_RESULT:
            return
        data = event.data
        node_info = getattr(data, "node_info", None)
        total = getattr(data, "total", 0) or getattr(data, "num_models", 0)
        ctx: dict[str, Any] = {
            "run_id": run_id,
            "step": step,
            "node": getattr(node_info, "node_name", None) or getattr(data, "description", "?"),
            "resource_type": getattr(node_info, "resource_type", None) or None,
            "progress": f"{data.index}/{total}" if total else None,
        }
        if name in DBT_NODE_START:
            logger.info("dbt node started", extra={"ctx": ctx})
            return
        # the node's result (success, pass, error, fail, warn); a model's `status` is the
        # adapter's response text ("OK"), which goes in `response`
        response = str(getattr(data, "status", "") or "")
        node_status = str(getattr(node_info, "node_status", "") or "")
        status = node_status if node_status not in ("", "None", "started") else response
        if name in ("LogTestResult", "LogFreshnessResult"):  # there `status` is the result
            status, response = response, ""
        if response and response.lower() != status.lower():
            ctx["response"] = response
        ctx.update(
            status=status,
            seconds=round(float(getattr(data, "execution_time", 0) or 0), 2),
            elapsed_s=round(time.monotonic() - started, 1),
        )
        if getattr(data, "num_failures", 0):
            ctx["failures"] = data.num_failures
        level = logging.WARNING if {status.lower(), response.lower()} & DBT_PROBLEMS else logging.INFO
        logger.log(level, "dbt node finished", extra={"ctx": ctx})

    return on_event
