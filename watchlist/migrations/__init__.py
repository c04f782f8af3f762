"""Versioned SQL migrations of the app database, applied idempotently.

Files `NNNN_name.sql` in this folder are applied in version order, each in its own
transaction together with its row in `schema_migrations` (version, name, checksum). A
migration already applied is skipped; one whose file changed after it was applied is an
error (add a new migration instead). Concurrent migrators serialize on an advisory lock.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from pipeline.steps import RunContext, SkipStep, StepResult
from watchlist import db

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent
_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_LOCK_KEY = 727_001  # pg_advisory_lock key of the migrator

SCHEMA_MIGRATIONS = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    checksum   text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


class MigrationError(RuntimeError):
    """A migration cannot be applied, or an applied one was edited."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path

    @property
    def sql(self) -> str:
        return self.path.read_text()

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


@dataclass
class MigrationReport:
    applied: list[str] = field(default_factory=list)
    already: list[str] = field(default_factory=list)
    seeded: int = 0


def discover(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    found: dict[int, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _FILE.match(path.name)
        if not match:
            raise MigrationError(f"migration file {path.name} is not named NNNN_name.sql")
        version = int(match.group(1))
        if version in found:
            raise MigrationError(
                f"two migrations have version {version}: {found[version].path.name}, {path.name}"
            )
        found[version] = Migration(version, match.group(2), path)
    return [found[v] for v in sorted(found)]


def apply_migrations(conn: psycopg.Connection, directory: Path = MIGRATIONS_DIR) -> MigrationReport:
    """Apply what is missing on `conn` (an autocommit connection); idempotent."""
    report = MigrationReport()
    migrations = discover(directory)
    conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
    try:
        conn.execute(SCHEMA_MIGRATIONS)
        applied = {
            v: (n, c)
            for v, n, c in conn.execute("SELECT version, name, checksum FROM schema_migrations").fetchall()
        }
        for m in migrations:
            label = f"{m.version:04d}_{m.name}"
            if m.version in applied:
                if applied[m.version][1] != m.checksum:
                    raise MigrationError(
                        f"migration {label} was changed after it was applied "
                        "(add a new migration instead of editing an applied one)"
                    )
                report.already.append(label)
                continue
            try:
                with conn.transaction():
                    conn.execute(m.sql)
                    conn.execute(
                        "INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                        (m.version, m.name, m.checksum),
                    )
            except psycopg.Error as exc:
                raise MigrationError(f"migration {label} failed: {exc}".strip()) from exc
            log.info("migration applied", extra={"ctx": {"migration": label}})
            report.applied.append(label)
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
    return report


# Sample strategies (GOLDSKY_SOURCE=sample): one unfiltered, a few by category, one strict.
SAMPLE_STRATEGIES = (
    ("smart-money-all", "Smart money: all markets", None, None),
    ("smart-money-politics", "Smart money: politics", ["Politics / Geopolitics"], None),
    ("smart-money-crypto", "Smart money: crypto", ["Crypto / DeFi"], None),
    ("smart-money-sports", "Smart money: sports", ["Sports"], None),
    ("top5-all", "Top 5 wallets: all markets", None, 5),
)


def seed_sample_strategies(conn: psycopg.Connection) -> int:
    """Insert the sample strategies that do not exist yet; returns how many were added."""
    added = 0
    with conn.transaction():
        for sid, name, categories, max_rank in SAMPLE_STRATEGIES:
            cur = conn.execute(
                "INSERT INTO strategies (id, name, description, category_filter, max_wallet_rank) "
                "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (id) DO NOTHING",
                (sid, name, "sample strategy (GOLDSKY_SOURCE=sample)", categories, max_rank),
            )
            added += cur.rowcount
    return added


def migrate(url: str, seed_sample: bool = False) -> MigrationReport:
    """Apply the migrations on the database at `url` (and seed the sample strategies)."""
    with db.connect(url, autocommit=True) as conn:
        report = apply_migrations(conn)
        if seed_sample:
            report.seeded = seed_sample_strategies(conn)
    return report


def step_migrate(ctx: RunContext) -> StepResult:
    """Pipeline step: bring the app database's schema up to date."""
    url = ctx.settings.postgres_url
    if not url:
        raise SkipStep("POSTGRES_URL not set")
    report = migrate(url, seed_sample=ctx.settings.goldsky_source == "sample")
    return StepResult(
        rows_out=len(report.applied),
        details={
            "applied": report.applied,
            "already_applied": len(report.already),
            "sample_strategies_added": report.seeded,
        },
        message=(
            f"{len(report.applied)} migrations applied, {len(report.already)} already applied"
            + (f", {report.seeded} sample strategies added" if report.seeded else "")
        ),
    )
