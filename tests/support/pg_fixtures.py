"""Postgres fixtures: a throw-away database per test session (or per test), dropped after.

The server comes from POSTGRES_URL (default postgresql://postgres@127.0.0.1:5432/test, the
machine's trust-auth server); each session creates `cascadian_test_<pid>_<random>` on it so
concurrent runs never collide. Registered in tests/conftest.py.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from pipeline.runlock import process_alive

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"


def server_url() -> str:
    return os.environ.get("POSTGRES_URL", "").strip() or DEFAULT_URL


def database_url(name: str, base: str | None = None) -> str:
    """`base` with its database replaced by `name`."""
    base = base or server_url()
    parts = urlsplit(base)
    if parts.scheme in ("postgresql", "postgres"):
        return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))
    return psycopg.conninfo.make_conninfo(base, dbname=name)


def _admin() -> psycopg.Connection:
    try:
        return psycopg.connect(server_url(), autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.fail(
            f"these tests need PostgreSQL (POSTGRES_URL, default {DEFAULT_URL}): {exc}", pytrace=False
        )


def drop_stale_databases(admin: psycopg.Connection, prefix: str = "cascadian_test") -> None:
    """Drop databases left by killed test sessions: their process is gone and nobody is
    connected to them."""
    rows = admin.execute(
        "SELECT datname FROM pg_database d WHERE datname LIKE %s AND NOT EXISTS "
        "(SELECT 1 FROM pg_stat_activity a WHERE a.datname = d.datname)",
        (prefix + "\\_%",),
    ).fetchall()
    for (name,) in rows:
        parts = name[len(prefix) + 1 :].split("_")
        if parts and parts[0].isdigit() and not process_alive(int(parts[0])):
            admin.execute(f'DROP DATABASE IF EXISTS "{name}"')


@contextlib.contextmanager
def scratch_database(prefix: str = "cascadian_test") -> Iterator[str]:
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with _admin() as admin:
        drop_stale_databases(admin, prefix)
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield database_url(name)
    finally:
        with _admin() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A database for the whole session (empty: tests migrate it)."""
    with scratch_database() as url:
        yield url


@pytest.fixture
def empty_pg_url() -> Iterator[str]:
    """A database of this test's own, empty."""
    with scratch_database() as url:
        yield url
