"""Structured log lines that carry their context.

Every record carries the run id and step (from context variables set by the run) plus any
`extra={"ctx": {...}}` the caller adds: file, cursor, rows. LOG_FORMAT=json prints one
JSON object per line (for log shippers); the default prints the same fields as key=value.
"""
from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
import sys

run_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("run_id", default=None)
step_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("step", default=None)


def _fields(record: logging.LogRecord) -> dict:
    fields = {
        "ts": dt.datetime.fromtimestamp(record.created, dt.timezone.utc).isoformat(timespec="milliseconds"),
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
        return json.dumps(_fields(record), default=str)


class KeyValueFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        f = _fields(record)
        head = f"{f.pop('ts')} {f.pop('level'):<7} {f.pop('msg')}"
        f.pop("logger", None)
        exc = f.pop("exc", None)
        tail = " ".join(f"{k}={v}" for k, v in f.items())
        return f"{head}  {tail}" + (f"\n{exc}" if exc else "")


def setup_logging(level: str = "INFO", fmt: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else KeyValueFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("urllib3", "httpx", "great_expectations"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
