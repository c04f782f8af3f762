"""Structured log lines that carry their context.

Every record carries the run id and step (from context variables set by the run) plus any
`extra={"ctx": {...}}` the caller adds: file, cursor, rows. LOG_FORMAT=json prints one
JSON object per line (for log shippers); the default prints the same fields as key=value.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import json
import logging
import logging.handlers
import sys
from collections.abc import Iterator
from pathlib import Path

from pipeline.redact import redact

run_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("run_id", default=None)
step_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("step", default=None)


def _fields(record: logging.LogRecord) -> dict:
    fields = {
        "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
        "level": record.levelname,
        "logger": record.name,
        "run_id": run_id_var.get(),
        "step": step_var.get(),
        "msg": record.getMessage(),
    }
    fields.update(getattr(record, "ctx", None) or {})
    if record.exc_info:
        fields["exc"] = logging.Formatter().formatException(record.exc_info)
    return {k: v for k, v in fields.items() if v is not None}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(json.dumps(_fields(record), default=str))


class KeyValueFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        f = _fields(record)
        head = f"{f.pop('ts')} {f.pop('level'):<7} {f.pop('msg')}"
        f.pop("logger", None)
        exc = f.pop("exc", None)
        tail = " ".join(f"{k}={v}" for k, v in f.items())
        return redact(f"{head}  {tail}" + (f"\n{exc}" if exc else ""))


class _StdoutHandler(logging.StreamHandler):
    """Writes to whatever sys.stdout is at the time of the record, so a replaced stdout
    (a test's capture, a daemon's redirect) never leaves the handler on a closed stream."""

    @property
    def stream(self):  # type: ignore[override]
        return sys.stdout

    @stream.setter
    def stream(self, _value) -> None:
        pass


def setup_logging(level: str = "INFO", fmt: str = "auto") -> None:
    """Log to stdout: JSON lines when stdout is not a terminal (cron, systemd, CI) or
    LOG_FORMAT=json, readable key=value lines on a terminal or with LOG_FORMAT=text."""
    handler = _StdoutHandler()
    as_json = fmt == "json" or (fmt == "auto" and not sys.stdout.isatty())
    handler.setFormatter(JsonFormatter() if as_json else KeyValueFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("urllib3", "httpx", "great_expectations"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


@contextlib.contextmanager
def run_log_file(path: Path, settings: object = None, max_bytes: int = 20_000_000) -> Iterator[Path]:
    """Also write JSON log lines to `path` (rotating) for as long as the block runs."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.handlers.RotatingFileHandler(path, maxBytes=max_bytes, backupCount=3, encoding="utf-8")
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield path
    finally:
        root.removeHandler(handler)
        handler.close()
