"""Connections to the app database (PostgreSQL, POSTGRES_URL) for the pipeline side."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import psycopg

from pipeline.redact import redact_url

CONNECT_TIMEOUT_S = 10


class AppDatabaseUnavailable(RuntimeError):
    """The app database could not be reached (down, wrong URL, refused credentials)."""


def redact(url: str) -> str:
    return redact_url(url)


def open_connection(url: str, autocommit: bool = False, **kwargs) -> psycopg.Connection:
    """A new connection; failures name the (redacted) URL instead of a bare traceback."""
    try:
        return psycopg.connect(
            url,
            autocommit=autocommit,
            connect_timeout=CONNECT_TIMEOUT_S,
            application_name="cascadian-pipeline",
            **kwargs,
        )
    except psycopg.OperationalError as exc:
        detail = (
            " ".join(line.strip() for line in str(exc).splitlines() if line.strip()) or type(exc).__name__
        )
        raise AppDatabaseUnavailable(
            f"cannot connect to the app database (POSTGRES_URL={redact(url)}): {detail}"
        ) from None


@contextlib.contextmanager
def connect(url: str, autocommit: bool = False) -> Iterator[psycopg.Connection]:
    conn = open_connection(url, autocommit=autocommit)
    try:
        yield conn
    finally:
        conn.close()
