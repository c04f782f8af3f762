"""The healthcheck: ten checks, run concurrently, each with its own time budget.

Every check returns a status (healthy / warning / critical, or `not_configured` for an
optional part that is not set up), a one-line message, details and its own duration; the
overall status is the worst of the configured ones: an optional part nobody asked for
(Postgres without POSTGRES_URL, the API without API_BASE_URL) never makes a warning, so a
monitor keyed on the exit code does not page on a correct setup. The checks that need
ClickHouse share one lazily opened client (queries are serialized on it: a server session
and the embedded engine both want one query at a time per client). A check that does not
answer within HEALTH_CHECK_TIMEOUT_S is reported critical and left behind in a daemon
thread, so the whole healthcheck ends within that budget even when a remote part hangs.

The report written by `run_checks` is the document `schemas/health_report.schema.json`
describes (docs/health.md explains every check and what to do when it fails).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from pipeline import names
from pipeline.config import HealthSettings, Settings
from pipeline.exit_codes import HEALTH_STATUS, ExitCode
from pipeline.logs import describe_error
from pipeline.redact import redact_url
from pipeline.runlock import process_alive
from pipeline.steps import not_successful

UTC = dt.UTC
HEALTHY, WARNING, CRITICAL = "healthy", "warning", "critical"
NOT_CONFIGURED = "not_configured"
SEVERITY = {HEALTHY: 0, WARNING: 1, CRITICAL: 2}
STATUSES = (HEALTHY, NOT_CONFIGURED, WARNING, CRITICAL)
SCHEMA_VERSION = 1

# The raw tables the marts are built from (the optional ones are not required).
REQUIRED_RAW_TABLES = (names.ORDER_FILLED, names.RESOLUTIONS, names.MARKETS_TABLE, names.CATEGORY_MAP)
UNREACHABLE_MESSAGE = "not checked: ClickHouse is unreachable (see the ClickHouse check)"

GX_RESULTS_FILE = "gx_results.json"


def worst(statuses) -> str:
    """The worst status; parts that are not configured do not count."""
    statuses = [s for s in statuses if s != NOT_CONFIGURED]
    return max(statuses, key=SEVERITY.__getitem__) if statuses else HEALTHY


@dataclass
class Outcome:
    status: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class CheckResult:
    name: str
    title: str
    status: str
    message: str
    details: dict[str, Any]
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class HealthError(Exception):
    """A check's own verdict raised from deep inside it."""

    def __init__(self, status: str, message: str, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.outcome = Outcome(status, message, details or {})


# --- the shared ClickHouse client ---------------------------------------------------------


class WarehouseProbe:
    """One client for the checks that need ClickHouse, opened on first use.

    Opening decides for all of them: busy (held by another process) is a warning,
    unreachable is critical; each query runs under a lock.
    """

    def __init__(self, settings: Settings, timeout_s: float):
        self.settings = settings
        self.timeout_s = timeout_s
        self._lock = threading.Lock()
        self._client = None
        self._failure: Outcome | None = None
        self.open_seconds: float | None = None

    def _open(self):
        from pipeline import warehouse

        started = time.monotonic()
        try:
            if self.settings.embedded:
                client = warehouse.open_client(self.settings)
            else:
                import clickhouse_connect

                params = warehouse.server_params(self.settings)
                try:
                    client = clickhouse_connect.get_client(
                        **params, connect_timeout=self.timeout_s, send_receive_timeout=self.timeout_s
                    )
                except Exception as exc:
                    raise warehouse.WarehouseUnavailable(
                        f"cannot reach ClickHouse at {params['host']}:{params['port']}: {describe_error(exc)}"
                    ) from exc
        except warehouse.WarehouseBusy as exc:  # names the holder: a run, or any other process
            raise HealthError(WARNING, str(exc), {"busy": True}) from None
        except warehouse.WarehouseUnavailable as exc:
            raise HealthError(CRITICAL, f"unreachable: {exc}") from None
        finally:
            self.open_seconds = round(time.monotonic() - started, 3)
        return client

    @property
    def failure(self) -> Outcome | None:
        """Why the warehouse could not be opened (the ClickHouse check reports it in full)."""
        return self._failure

    def query(self, sql: str, parameters: dict[str, Any] | None = None) -> list[tuple]:
        with self._lock:
            if self._client is None and self._failure is None:
                try:
                    self._client = self._open()
                except HealthError as exc:
                    self._failure = exc.outcome
            if self._failure is not None:  # every check sees the same verdict, in its own copy
                f = self._failure
                if f.status == CRITICAL:  # the cause is the ClickHouse check's to tell, once
                    raise HealthError(CRITICAL, UNREACHABLE_MESSAGE, {"unreachable": True})
                raise HealthError(f.status, f.message, dict(f.details))
            return self._client.query(sql, parameters=parameters or {}).result_rows

    def close(self, wait_s: float = 0.5) -> bool:
        """Close the client unless a query still holds it (a hung check): then leave it to the
        process, and say so. The embedded engine keeps its directory while a client is open."""
        if not self._lock.acquire(timeout=wait_s):
            return False
        try:
            if self._client is not None:
                self._client.close()
                self._client = None
            return True
        finally:
            self._lock.release()


# --- what every check is given ------------------------------------------------------------


@dataclass
class CheckEnv:
    settings: Settings
    health: HealthSettings
    now: dt.datetime
    warehouse: WarehouseProbe
    run: Any = None  # the RunContext of the run in progress (final health), or None


def _hours(delta: dt.timedelta) -> float:
    return round(delta.total_seconds() / 3600, 2)


def _age(now: dt.datetime, then: dt.datetime) -> float:
    """Hours from `then` to `now`; a time in the future counts as just now."""
    return max(0.0, _hours(now - then))


def _grade(age_h: float, warn_h: float, crit_h: float) -> str:
    return CRITICAL if age_h > crit_h else WARNING if age_h > warn_h else HEALTHY


def _aware(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _parse_iso(value: Any) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return _aware(dt.datetime.fromisoformat(value.replace("Z", "+00:00")))
    except ValueError:
        return None


def _mtime(path: Path) -> dt.datetime:
    return dt.datetime.fromtimestamp(path.stat().st_mtime, UTC)


# --- 1. Goldsky ---------------------------------------------------------------------------


def check_goldsky(env: CheckEnv) -> Outcome:
    s, hs = env.settings, env.health
    source = s.goldsky_source
    if source == "sample":
        return Outcome(
            HEALTHY, "sample data (GOLDSKY_SOURCE=sample): no remote source to reach", {"source": source}
        )
    if source == "dataset":
        from ingest import goldsky_files

        directory = s.goldsky_dataset_dir
        files = goldsky_files.discover(directory)
        details: dict[str, Any] = {
            "source": source,
            "directory": str(directory),
            "files": len(files),
            "warn_hours": hs.goldsky_file_warn_hours,
            "critical_hours": hs.goldsky_file_critical_hours,
        }
        if not files:
            why = "does not exist" if not directory.is_dir() else "holds no dataset files"
            return Outcome(CRITICAL, f"GOLDSKY_DATASET_DIR {directory} {why}", details)
        rejected = _rejected_dataset_files(env, files)
        if isinstance(rejected, str):
            details["rejections"], rejected = rejected, {}
        newest_first = sorted(rejected, key=lambda p: p.stat().st_mtime, reverse=True)
        details["rejected_files"] = [
            {"file": str(p.relative_to(directory)), **rejected[p]} for p in newest_first
        ]
        said = ""
        if rejected:
            first = newest_first[0]
            said = (
                f"{len(rejected)} dataset file(s) rejected by the last load, newest "
                f"{first.relative_to(directory)} ({rejected[first]['reason']}); "
            )
        usable = [p for p in files if p not in rejected]
        if not usable:
            return Outcome(CRITICAL, said + "no file that was not rejected", details)
        newest = max(usable, key=lambda p: p.stat().st_mtime)
        age = _age(env.now, _mtime(newest))
        details.update(
            newest_file=str(newest.relative_to(directory)),
            newest_modified_at=_mtime(newest).isoformat(),
            age_hours=age,
        )
        status = _grade(age, hs.goldsky_file_warn_hours, hs.goldsky_file_critical_hours)
        if rejected:
            status = worst((status, WARNING))
        newest_said = "newest file not rejected" if rejected else "newest dataset file"
        return Outcome(status, f"{said}{newest_said} {newest.name} is {age:.1f} h old", details)
    # subgraph: the ingest module owns the client; a short timeout and one attempt here
    try:
        from ingest.subgraph import subgraph_lag
    except ImportError as exc:
        return Outcome(
            WARNING,
            "subgraph lag check not available (ingest.subgraph missing)",
            {"source": source, "error": str(exc)},
        )
    quick = s.replace(
        goldsky_timeout_s=min(s.goldsky_timeout_s, max(0.5, hs.check_timeout_s - 1)),
        goldsky_max_attempts=1,
        goldsky_retry_wait_s=0.0,
    )
    lag = subgraph_lag(quick)
    details = {"source": source, **lag, "critical_lag_minutes": hs.goldsky_lag_critical_minutes}
    endpoint = lag.get("endpoint") or redact_url(s.goldsky_subgraph_url)
    if lag.get("error"):
        return Outcome(CRITICAL, f"subgraph unreachable: {lag['error']}", details)
    minutes = lag.get("lag_minutes")
    if minutes is None:
        return Outcome(CRITICAL, f"subgraph {endpoint} reports no head block time", details)
    if minutes > hs.goldsky_lag_critical_minutes:
        return Outcome(CRITICAL, f"subgraph is {minutes:.0f} min behind the chain", details)
    if lag.get("has_indexing_errors"):
        return Outcome(WARNING, f"subgraph reports indexing errors (lag {minutes:.0f} min)", details)
    if minutes > s.goldsky_max_lag_minutes:
        return Outcome(
            WARNING,
            f"subgraph is {minutes:.0f} min behind the chain "
            f"(GOLDSKY_MAX_LAG_MINUTES={s.goldsky_max_lag_minutes:g})",
            details,
        )
    return Outcome(
        HEALTHY, f"subgraph answers; head block {lag.get('block_number')}, {minutes:.0f} min behind", details
    )


# The last rejection of each of these files, unless those bytes were loaded since
# (ingest/goldsky_files.py records every rejection in ops.rejected_files).
DATASET_REJECTIONS_SQL = """
SELECT path, argMax(sha256, rejected_at), argMax(size_bytes, rejected_at), max(rejected_at),
       argMax(reason, rejected_at)
FROM ops.rejected_files WHERE path IN {paths:Array(String)} GROUP BY path
HAVING argMax(sha256, rejected_at) NOT IN (SELECT sha256 FROM ops.loaded_files WHERE rows > 0)
"""


def _rejected_dataset_files(env: CheckEnv, files: list[Path]) -> dict[Path, dict[str, Any]] | str:
    """The dataset files on disk whose very bytes the last load rejected: the newest file is
    no sign of a healthy source when the pipeline refused it. Only files with a rejection on
    record and its size are hashed. Why not, when the warehouse cannot be read."""
    from ingest.goldsky_files import sha256_of

    try:
        present = env.warehouse.query(
            "SELECT count() FROM system.tables WHERE database = 'ops' "
            "AND name IN ('rejected_files', 'loaded_files')"
        )[0][0]
        rows = (
            env.warehouse.query(DATASET_REJECTIONS_SQL, {"paths": [str(p) for p in files]})
            if present == 2
            else []
        )
    except HealthError as exc:
        return f"not checked: {exc.outcome.message}"
    found = {}
    for path_text, digest, size, at, reason in rows:
        path = Path(path_text)
        try:
            same = path.stat().st_size == size and sha256_of(path) == digest
        except OSError:  # removed since it was listed: nothing on disk to describe
            continue
        if same:
            said = reason.removeprefix(f"{path.name}: ")  # "rejected (…): problem; problem"
            first = (said.partition(": ")[2] if said.startswith("rejected") else said) or said
            first = first.split("; ")[0]
            found[path] = {"rejected_at": _aware(at).isoformat(), "reason": first}
    return found


# --- 2. ClickHouse ------------------------------------------------------------------------


def check_clickhouse(env: CheckEnv) -> Outcome:
    s = env.settings
    where = f"embedded at {s.clickhouse_path}" if s.embedded else redact_url(s.clickhouse_url or "")
    try:
        version, tz = env.warehouse.query("SELECT version(), timezone()")[0]
    except HealthError as exc:
        outcome = env.warehouse.failure or exc.outcome
        raise HealthError(outcome.status, outcome.message, {**outcome.details, "engine": where}) from None
    details = {
        "engine": where,
        "version": version,
        "timezone": tz,
        "open_seconds": env.warehouse.open_seconds,
    }
    return Outcome(HEALTHY, f"ClickHouse {version} ({'embedded chDB' if s.embedded else 'server'})", details)


# --- 3. tables ----------------------------------------------------------------------------

VIEW = -1  # table_counts' row count for a view: not counted


def required_tables() -> list[str]:
    return list(REQUIRED_RAW_TABLES) + [f"{names.ANALYTICS}.{t}" for t in names.MARTS]


def table_counts(probe: WarehouseProbe, tables: list[str]) -> dict[str, int | None]:
    """Rows per table; None for a table that does not exist, and -1 for a view. A table's
    count is the row count of its parts, which system.tables keeps, so checking a
    billion-row table costs nothing. A view's rows would have to be computed
    (fct_wallet_positions joins every position), so the check only confirms it exists;
    the quality step and the report count the marts' rows."""
    present = {
        f"{db}.{name}": (engine, rows)
        for db, name, engine, rows in probe.query(
            "SELECT database, name, engine, total_rows FROM system.tables "
            "WHERE database IN ('raw', 'analytics', 'ops')"
        )
    }
    counts: dict[str, int | None] = {}
    for table in tables:
        if table not in present:
            counts[table] = None
            continue
        engine, rows = present[table]
        if rows is not None:
            counts[table] = int(rows)
        elif engine == "View":
            counts[table] = VIEW
        else:
            counts[table] = int(probe.query(f"SELECT count() FROM {table}")[0][0])
    return counts


def check_tables(env: CheckEnv) -> Outcome:
    counts = table_counts(env.warehouse, required_tables())
    missing = [t for t, n in counts.items() if n is None]
    empty = [t for t, n in counts.items() if n == 0]
    details = {
        "tables": {
            t: (
                {"exists": True, "view": True, "rows": None}
                if n == VIEW
                else {"exists": n is not None, "rows": n}
            )
            for t, n in counts.items()
        }
    }
    if missing:
        return Outcome(
            CRITICAL,
            f"missing: {', '.join(missing)}" + (f"; empty: {', '.join(empty)}" if empty else ""),
            details,
        )
    if empty:
        return Outcome(WARNING, f"empty: {', '.join(empty)}", details)
    views = sum(1 for n in counts.values() if n == VIEW)
    return Outcome(
        HEALTHY,
        f"{len(counts)} tables present, "
        f"{sum(n for n in counts.values() if n and n > 0):,} rows"
        + (f" ({views} views, not counted)" if views else ""),
        details,
    )


# --- 4. Postgres --------------------------------------------------------------------------


def check_postgres(env: CheckEnv) -> Outcome:
    s, hs = env.settings, env.health
    if not s.postgres_url:
        return Outcome(
            NOT_CONFIGURED, "Postgres not configured (POSTGRES_URL is unset)", {"configured": False}
        )
    import psycopg

    target = redact_url(s.postgres_url)
    details: dict[str, Any] = {"configured": True, "url": target}
    try:
        with psycopg.connect(
            s.postgres_url, connect_timeout=max(2, round(hs.postgres_timeout_s)), autocommit=True
        ) as conn:
            version = conn.execute("SHOW server_version").fetchone()[0]
            tables = {
                name: conn.execute("SELECT to_regclass(%s) IS NOT NULL", (name,)).fetchone()[0]
                for name in hs.postgres_tables
            }
    except psycopg.Error as exc:
        details["error"] = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return Outcome(CRITICAL, f"unreachable: {details['error']}", details)
    details.update(server_version=version, tables=tables)
    missing = [t for t, ok in tables.items() if not ok]
    if missing:
        return Outcome(
            WARNING, f"Postgres {version} answers; app tables missing: {', '.join(missing)}", details
        )
    return Outcome(HEALTHY, f"Postgres {version}; app tables present", details)


# --- 5. reference file freshness ----------------------------------------------------------


def file_updated_at(path: Path) -> tuple[dt.datetime, str]:
    """The file's own `last_updated` (JSON header), else its modification time."""
    if path.suffix == ".json":
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            doc = None
        stamp = _parse_iso(doc.get("last_updated")) if isinstance(doc, dict) else None
        if stamp is not None:
            return stamp, "last_updated"
    return _mtime(path), "mtime"


# Each reference file's last load attempt, and its last version actually loaded
# (ingest/reference_files.py records every attempt in ops.reference_loads).
REFERENCE_ATTEMPTS_SQL = """
SELECT file_name, argMax(status, loaded_at), argMax(sha256, loaded_at), max(loaded_at),
       argMax(problems, loaded_at), countIf(status = 'loaded'), maxIf(loaded_at, status = 'loaded'),
       argMaxIf(last_updated, loaded_at, status = 'loaded')
FROM ops.reference_loads GROUP BY file_name
"""


class ReferenceAttempts(NamedTuple):
    """One file's row of REFERENCE_ATTEMPTS_SQL, in its column order."""

    last_status: str
    last_sha256: str
    last_at: dt.datetime
    last_problems: str | None
    n_loaded: int
    loaded_at: dt.datetime | None
    loaded_last_updated: dt.datetime | None


def _reference_attempts(env: CheckEnv) -> dict[str, ReferenceAttempts] | str:
    """The loads' record per file, or why it could not be read: then the files are graded
    by themselves, as before any load (busy and unreachable are the warehouse checks' to tell)."""
    try:
        present = env.warehouse.query(
            "SELECT count() FROM system.tables WHERE database = 'ops' AND name = 'reference_loads'"
        )[0][0]
        rows = env.warehouse.query(REFERENCE_ATTEMPTS_SQL) if present else []
    except HealthError as exc:
        return f"not checked: {exc.outcome.message}"
    return {row[0]: ReferenceAttempts(*row[1:]) for row in rows}


def _rejected_on_disk(path: Path, attempt: ReferenceAttempts | None) -> dict[str, Any] | None:
    """How the last load rejected this very file, when it did: the bytes on disk are the
    ones it refused (a file replaced since is new, and graded by itself)."""
    if attempt is None or attempt.last_status != "rejected":
        return None
    if hashlib.sha256(path.read_bytes()).hexdigest() != attempt.last_sha256:
        return None
    first = next((line for line in (attempt.last_problems or "").splitlines() if line.strip()), "")
    return {
        "rejected_at": _aware(attempt.last_at).isoformat(),
        "reason": first.removeprefix(f"{path.name}: "),
    }


def _loaded_version(attempt: ReferenceAttempts | None) -> tuple[dt.datetime, str] | None:
    """When the version in the warehouse was made: its own `last_updated`, else when it was
    loaded (a file without a header leaves no earlier time on record)."""
    if attempt is None or not attempt.n_loaded:
        return None
    if attempt.loaded_last_updated is not None:
        return _aware(attempt.loaded_last_updated), "last_updated"
    return _aware(attempt.loaded_at), "loaded_at"


def check_reference_freshness(env: CheckEnv) -> Outcome:
    """Each file's age, from the file itself; but a file the last load rejected says nothing
    about the data in use: it is a warning naming the file and the reason, and the age is
    that of the last version loaded (which the marts were built from)."""
    s, hs = env.settings, env.health
    present_names = [
        n for n in (*hs.freshness_files, *names.REFERENCE_FILES, *names.OPTIONAL_REFERENCE_FILES)
        if (s.data_dir / n).is_file()
    ]  # fmt: skip
    attempts = _reference_attempts(env) if present_names else {}
    record = attempts if isinstance(attempts, dict) else {}
    rejected = {n: r for n in present_names if (r := _rejected_on_disk(s.data_dir / n, record.get(n)))}
    files: dict[str, Any] = {}
    for name in hs.freshness_files:
        path = s.data_dir / name
        if not path.is_file():
            files[name] = {"status": CRITICAL, "exists": False}
            continue
        updated, source = file_updated_at(path)
        if name in rejected:
            on_disk = {"updated_at": updated.isoformat(), "from": source}
            loaded = _loaded_version(record.get(name))
            if loaded is None:
                files[name] = {
                    "status": CRITICAL,
                    "exists": True,
                    "rejected": rejected[name],
                    "on_disk": on_disk,
                }
                continue
            updated, source = loaded
        age = _age(env.now, updated)
        grade = _grade(age, hs.freshness_warn_hours, hs.freshness_critical_hours)
        files[name] = {
            "status": worst((grade, WARNING)) if name in rejected else grade,
            "exists": True,
            "updated_at": updated.isoformat(),
            "from": source,
            "age_hours": age,
        }
        if name in rejected:
            files[name].update(rejected=rejected[name], on_disk=on_disk)
    others = {}
    if s.data_dir.is_dir():
        from pipeline.names import CATEGORY_DEFINITIONS, LOOKUPS, MARKETS, RESOLUTION_MAP

        for name in (RESOLUTION_MAP, MARKETS, CATEGORY_DEFINITIONS, LOOKUPS):
            path = s.data_dir / name
            if name not in files and path.is_file():
                updated, source = file_updated_at(path)
                others[name] = {
                    "updated_at": updated.isoformat(),
                    "from": source,
                    "age_hours": _age(env.now, updated),
                }
                if name in rejected:
                    others[name]["rejected"] = rejected[name]
    details = {
        "data_dir": str(s.data_dir),
        "files": files,
        "not_graded": others,
        "loads": attempts if isinstance(attempts, str) else "checked",
        "warn_hours": hs.freshness_warn_hours,
        "critical_hours": hs.freshness_critical_hours,
    }
    if not files:
        return Outcome(WARNING, "no reference files configured (HEALTH_FRESHNESS_FILES)", details)
    status = worst([f["status"] for f in files.values()] + [WARNING for n in others if n in rejected])
    if status == HEALTHY:
        oldest = max(f["age_hours"] for f in files.values())
        return Outcome(HEALTHY, f"{len(files)} files, oldest {oldest:.1f} h", details)

    def rejection(name: str) -> str:
        r = rejected[name]
        return f"{name} on disk was rejected at {r['rejected_at'][:16].replace('T', ' ')} UTC ({r['reason']})"

    bad = []
    for name, f in files.items():
        if not f["exists"]:
            bad.append(f"{name} missing")
        elif name not in rejected:
            if f["status"] != HEALTHY:
                bad.append(f"{name} {f['age_hours']:.1f} h old")
        elif "age_hours" in f:
            bad.append(f"{rejection(name)}; the version in use is {f['age_hours']:.1f} h old")
        else:
            bad.append(f"{rejection(name)}; no version of it was ever loaded")
    bad += [rejection(name) for name in others if name in rejected]
    return Outcome(status, "; ".join(bad), details)


# --- 6. resolution integrity --------------------------------------------------------------


RESOLVED_SQL = f"""
SELECT countIf(is_resolved), count() FROM {names.ANALYTICS}.{names.DIM_MARKETS}
"""
LAST_MAP_LOAD_SQL = """
SELECT entries, claimed, loaded_at FROM ops.reference_loads
WHERE file_name = {f:String} AND status = 'loaded'
ORDER BY loaded_at DESC LIMIT 1
"""


def check_resolution_integrity(env: CheckEnv) -> Outcome:
    """How many conditions the models resolve (dim_markets.is_resolved: the one place that
    decides, 50-50 included once the models accept it), against MIN_RESOLVED_CONDITIONS and
    against the loaded map's own header claim (ops.reference_loads)."""
    minimum = env.health.min_resolved_conditions
    source = f"{names.ANALYTICS}.{names.DIM_MARKETS}"
    details: dict[str, Any] = {"source": source, "min_resolved": minimum}
    present = {
        f"{db}.{t}"
        for db, t in env.warehouse.query(
            "SELECT database, name FROM system.tables WHERE (database, name) IN "
            "(({a:String}, {d:String}), ('ops', 'reference_loads'))",
            {"a": names.ANALYTICS, "d": names.DIM_MARKETS},
        )
    }
    if source not in present:
        return Outcome(CRITICAL, f"{source} does not exist: the models were not built yet", details)
    resolved, conditions = (int(v) for v in env.warehouse.query(RESOLVED_SQL)[0])
    details.update(resolved=resolved, conditions=conditions)
    loads = (
        env.warehouse.query(LAST_MAP_LOAD_SQL, {"f": names.RESOLUTION_MAP})
        if "ops.reference_loads" in present
        else []
    )
    if loads:
        entries, claimed, loaded_at = loads[0]
        details.update(
            entries=int(entries),
            claimed=int(claimed) if claimed is not None else None,
            loaded_at=_aware(loaded_at).isoformat() if loaded_at else None,
        )
    else:
        details.update(entries=None, claimed=None, loaded_at=None)
    if resolved < minimum:
        return Outcome(
            CRITICAL,
            f"only {resolved:,} resolved conditions (MIN_RESOLVED_CONDITIONS={minimum:,})",
            details,
        )
    if not loads:
        return Outcome(WARNING, f"{resolved:,} resolved; no load of {names.RESOLUTION_MAP} recorded", details)
    if details["claimed"] is None:
        return Outcome(WARNING, f"{resolved:,} resolved; the header has no resolved_conditions", details)
    if details["claimed"] != resolved:
        return Outcome(
            WARNING,
            f"header claims {details['claimed']:,} resolved, the models resolve {resolved:,}",
            details,
        )
    return Outcome(
        HEALTHY,
        f"{resolved:,} of {details['entries']:,} conditions in the map resolved; header agrees",
        details,
    )


# --- 7. API routes ------------------------------------------------------------------------


def _probe_route(client, url: str, hs: HealthSettings) -> dict[str, Any]:
    import httpx

    started = time.perf_counter()
    try:
        response = client.get(url)
    except httpx.TimeoutException:
        return {
            "url": url,
            "status": CRITICAL,
            "error": f"no answer within {hs.api_timeout_s:g} s",
            "ms": round((time.perf_counter() - started) * 1000),
        }
    except httpx.HTTPError as exc:
        return {
            "url": url,
            "status": CRITICAL,
            "error": f"{type(exc).__name__}: {exc}",
            "ms": round((time.perf_counter() - started) * 1000),
        }
    ms = round((time.perf_counter() - started) * 1000)
    result = {"url": url, "status_code": response.status_code, "ms": ms}
    if not response.is_success:
        result.update(status=CRITICAL, error=f"HTTP {response.status_code}")
    elif ms > hs.api_slow_ms:
        result.update(status=WARNING, error=f"slow: {ms} ms (API_SLOW_MS={hs.api_slow_ms:g})")
    else:
        result["status"] = HEALTHY
    return result


def check_api(env: CheckEnv) -> Outcome:
    hs = env.health
    if not hs.api_base_url:
        return Outcome(NOT_CONFIGURED, "API not configured (API_BASE_URL is unset)", {"configured": False})
    urls = [hs.api_base_url + (r if r.startswith("/") else "/" + r) for r in hs.api_routes]
    results: dict[str, dict[str, Any]] = {}

    import httpx

    # One client (its TLS setup is the slow part) shared by the routes, probed concurrently;
    # each request's time is its own.
    with httpx.Client(timeout=hs.api_timeout_s, follow_redirects=True) as client:

        def probe(route: str, url: str) -> None:
            results[route] = _probe_route(client, url, hs)

        threads = [
            threading.Thread(target=probe, args=(r, u), daemon=True) for r, u in zip(hs.api_routes, urls)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    routes = {r: results[r] for r in hs.api_routes}
    details = {
        "configured": True,
        "base_url": redact_url(hs.api_base_url),
        "routes": routes,
        "slow_ms": hs.api_slow_ms,
        "timeout_s": hs.api_timeout_s,
    }
    status = worst(r["status"] for r in routes.values())
    if status == HEALTHY:
        return Outcome(
            HEALTHY, ", ".join(f"{r} {v['status_code']} in {v['ms']} ms" for r, v in routes.items()), details
        )
    return Outcome(
        status, "; ".join(f"{r}: {v['error']}" for r, v in routes.items() if v["status"] != HEALTHY), details
    )


# --- 8. trade freshness -------------------------------------------------------------------


def check_trade_freshness(env: CheckEnv) -> Outcome:
    hs = env.health
    present = env.warehouse.query(
        "SELECT count() FROM system.tables WHERE database = 'raw' AND name = 'order_filled'"
    )[0][0]
    details: dict[str, Any] = {"warn_hours": hs.trades_warn_hours, "critical_hours": hs.trades_critical_hours}
    if not present:
        return Outcome(CRITICAL, "raw.order_filled does not exist: no fills loaded yet", details)
    newest, rows = env.warehouse.query("SELECT max(timestamp), count() FROM raw.order_filled")[0]
    details["rows"] = int(rows)
    if not rows:
        return Outcome(CRITICAL, "raw.order_filled is empty", details)
    newest = _aware(newest)
    age = _age(env.now, newest)
    details.update(newest_fill=newest.isoformat(), age_hours=age)
    status = _grade(age, hs.trades_warn_hours, hs.trades_critical_hours)
    return Outcome(status, f"newest fill {newest:%Y-%m-%d %H:%M} UTC, {age:.1f} h old", details)


# --- 9. last pipeline run -----------------------------------------------------------------


def check_last_run(env: CheckEnv) -> Outcome:
    hs = env.health
    if env.run is not None:  # inside a run: this run so far
        failed = [name for name, r in env.run.results.items() if r.status == "failed"]
        details = {
            "run_id": env.run.run_id,
            "in_progress": True,
            "steps": {name: r.status for name, r in env.run.results.items()},
        }
        if failed:
            return Outcome(WARNING, f"this run: step(s) failed: {', '.join(failed)}", details)
        return Outcome(HEALTHY, f"this run: {len(env.run.results)} steps so far, none failed", details)
    from pipeline.history import last_run

    run = last_run(env.settings)
    lock = run_lock_state(env.settings)
    if (
        lock
        and not lock["held"]
        and lock.get("run_id")
        and (run is None or str(lock.get("started_at", "")) > str(run.get("started_at", "")))
    ):
        return Outcome(
            CRITICAL,
            f"run {lock['run_id']} (started {lock.get('started_at', '?')}) did not finish: "
            "its process ended without releasing the run lock",
            {"unfinished": lock},
        )
    in_progress = (
        f"run {lock.get('run_id', '?')} in progress since {lock.get('started_at', '?')}; "
        if lock and lock["held"]
        else ""
    )
    if run is None:
        return Outcome(
            CRITICAL,
            f"{in_progress}no pipeline run recorded under {env.settings.reports_dir}",
            {"in_progress": lock if in_progress else None, "runs_recorded": 0},
        )
    finished = _parse_iso(run.get("finished_at"))
    details = {
        "run_id": run.get("run_id"),
        "status": run.get("status"),
        "started_at": run.get("started_at"),
        "finished_at": run.get("finished_at"),
        "seconds": run.get("seconds"),
        "failed_steps": [s.get("name") for s in run.get("steps", []) if s.get("status") == "failed"],
        "not_successful_steps": not_successful(run.get("steps", [])),
        "warn_hours": hs.last_run_warn_hours,
        "critical_hours": hs.last_run_critical_hours,
        "in_progress": lock if in_progress else None,
    }
    if finished is None:
        return Outcome(CRITICAL, f"run {run.get('run_id')} did not finish", details)
    age = _age(env.now, finished)
    details["age_hours"] = age
    status = run.get("status")
    verdicts = []
    if status == "failed":
        verdicts.append((CRITICAL, f"run {run.get('run_id')} failed"))
    elif status != "success":
        which = ", ".join(details["not_successful_steps"]) or "no step recorded why"
        verdicts.append((WARNING, f"run {run.get('run_id')} was {status} ({which})"))
    grade = _grade(age, hs.last_run_warn_hours, hs.last_run_critical_hours)
    if grade != HEALTHY:
        verdicts.append((grade, f"last run finished {age:.1f} h ago"))
    if not verdicts:
        return Outcome(HEALTHY, f"{in_progress}run {run.get('run_id')} succeeded {age:.1f} h ago", details)
    return Outcome(worst(v[0] for v in verdicts), in_progress + "; ".join(v[1] for v in verdicts), details)


def run_lock_state(settings: Settings) -> dict[str, Any] | None:
    """What the run lock file says (pipeline/runlock.py): its holder's run id, pid and start,
    and whether that process is alive. None when there is no lock file or it is empty (the
    last run released it cleanly). The lock itself is never taken here: a healthcheck must
    not make a starting run think another one holds it."""
    try:
        text = (settings.home / "run.lock").read_text(encoding="utf-8").strip()
    except OSError:
        return None
    if not text:
        return None
    try:
        holder = json.loads(text)
    except json.JSONDecodeError:
        holder = None
    holder = holder if isinstance(holder, dict) else {"raw": text}
    return {**holder, "held": process_alive(holder.get("pid"))}


# --- 10. Great Expectations ---------------------------------------------------------------


def latest_gx_results(settings: Settings) -> Path | None:
    if not settings.reports_dir.is_dir():
        return None
    found = sorted(settings.reports_dir.glob(f"*/*/{GX_RESULTS_FILE}"), key=lambda p: p.parent.name)
    return found[-1] if found else None


def check_great_expectations(env: CheckEnv) -> Outcome:
    hs = env.health
    path = None
    if env.run is not None:  # inside a run: its own checkpoint's results, when it ran one
        from pipeline.history import run_folder

        own = run_folder(env.settings, env.run.run_id, env.run.started_at.isoformat()) / GX_RESULTS_FILE
        path = own if own.is_file() else None
    path = path or latest_gx_results(env.settings)
    if path is None:
        return Outcome(WARNING, "no Great Expectations results recorded yet", {})
    try:
        doc = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        return Outcome(CRITICAL, f"unreadable results {path}: {exc}", {"file": str(path)})
    generated = _parse_iso(doc.get("generated_at"))
    age = _age(env.now, generated) if generated else None
    failures = [
        f"{s['suite']}: {f['expectation']}" + (f"({f['column']})" if f.get("column") else "")
        for s in doc.get("suites", [])
        for f in s.get("failures", [])
    ]
    details = {
        "file": str(path),
        "run_id": doc.get("run_id"),
        "status": doc.get("status"),
        "generated_at": doc.get("generated_at"),
        "age_hours": age,
        "suites": {s["suite"]: s.get("status") for s in doc.get("suites", [])},
        "failures": failures,
        "data_docs": doc.get("data_docs"),
        "max_age_hours": hs.gx_results_max_hours,
    }
    verdicts = []
    if doc.get("status") == "failed":
        verdicts.append(
            (CRITICAL, f"{doc.get('failed_critical', len(failures))} fail-level expectation(s) failed")
        )
    elif doc.get("status") == "warning":
        verdicts.append((WARNING, f"{len(failures)} warn-level expectation(s) failed"))
    if age is None or age > hs.gx_results_max_hours:
        verdicts.append(
            (
                WARNING,
                f"results are older than {hs.gx_results_max_hours:g} h"
                if age is not None
                else "results carry no time",
            )
        )
    if not verdicts:
        passed = sum(s.get("evaluated", 0) for s in doc.get("suites", []))
        return Outcome(HEALTHY, f"run {doc.get('run_id')}: all {passed} expectations passed", details)
    message = "; ".join(v[1] for v in verdicts)
    if failures:
        message += f" ({', '.join(failures[:3])}{', …' if len(failures) > 3 else ''})"
    return Outcome(worst(v[0] for v in verdicts), message, details)


# --- running them -------------------------------------------------------------------------

CHECKS: list[tuple[str, str, Callable[[CheckEnv], Outcome]]] = [
    ("goldsky", "Goldsky source", check_goldsky),
    ("clickhouse", "ClickHouse", check_clickhouse),
    ("tables", "Raw and mart tables", check_tables),
    ("postgres", "Postgres", check_postgres),
    ("reference_freshness", "Reference file freshness", check_reference_freshness),
    ("resolution_integrity", "Resolution integrity", check_resolution_integrity),
    ("api", "API routes", check_api),
    ("trade_freshness", "Trade freshness", check_trade_freshness),
    ("last_run", "Last pipeline run", check_last_run),
    ("great_expectations", "Great Expectations", check_great_expectations),
]
CHECK_NAMES = tuple(name for name, _, _ in CHECKS)


def _run_one(fn: Callable[[CheckEnv], Outcome], env: CheckEnv) -> Outcome:
    try:
        return fn(env)
    except HealthError as exc:
        return exc.outcome
    except Exception as exc:  # a check that crashes is a finding, never a crashed healthcheck
        return Outcome(CRITICAL, f"check failed: {type(exc).__name__}: {exc}", {"error": repr(exc)})


def run_checks(
    settings: Settings,
    health: HealthSettings | None = None,
    *,
    now: dt.datetime | None = None,
    run: Any = None,
    only: tuple[str, ...] | None = None,
) -> dict[str, Any]:
    """Run the checks concurrently; return the report (schemas/health_report.schema.json)."""
    health = health or settings.health
    started_at = dt.datetime.now(UTC)
    now = _aware(now) if now else started_at
    started = time.monotonic()
    probe = WarehouseProbe(settings, health.check_timeout_s)
    env = CheckEnv(settings, health, now, probe, run)
    chosen = [c for c in CHECKS if only is None or c[0] in only]
    outcomes: dict[str, Outcome] = {}
    ended: dict[str, float] = {}
    begun: dict[str, float] = {}

    def work(name: str, fn: Callable[[CheckEnv], Outcome]) -> None:
        begun[name] = time.monotonic()
        outcomes[name] = _run_one(fn, env)
        ended[name] = time.monotonic()

    threads = {
        name: threading.Thread(target=work, args=(name, fn), name=f"health-{name}", daemon=True)
        for name, _, fn in chosen
    }
    for t in threads.values():
        t.start()
    deadline = started + health.check_timeout_s
    for t in threads.values():
        t.join(max(0.0, deadline - time.monotonic()))
    hung = [name for name, t in threads.items() if t.is_alive()]
    checks = []
    for name, title, _ in chosen:
        if name in hung or name not in outcomes:
            outcome = Outcome(
                CRITICAL,
                f"no answer within {health.check_timeout_s:g} s (HEALTH_CHECK_TIMEOUT_S)",
                {"timed_out": True},
            )
            seconds = round(time.monotonic() - begun.get(name, started), 3)
        else:
            outcome = outcomes[name]
            seconds = round(ended[name] - begun[name], 3)
        checks.append(
            CheckResult(name, title, outcome.status, outcome.message, _jsonable(outcome.details), seconds)
        )
    probe.close()  # unless a hung check is inside a query on it
    status = worst(c.status for c in checks)
    counts = {s: sum(c.status == s for c in checks) for s in STATUSES}
    # the warehouse held by another process (a run): its checks could not look, so the answer
    # is "try again later", exit 3 as for every command (pipeline/exit_codes.py)
    busy = any(c.details.get("busy") for c in checks)
    return {
        "schema_version": SCHEMA_VERSION,
        "status": status,
        "exit_code": int(ExitCode.BUSY if busy else HEALTH_STATUS[status]),
        "generated_at": started_at.isoformat(),
        "as_of": now.isoformat(),
        "seconds": round(time.monotonic() - started, 3),
        "run_id": getattr(run, "run_id", None),
        "counts": counts,
        "settings": {**settings.describe(), "health": health.describe()},
        "checks": [c.as_dict() for c in checks],
    }


def _jsonable(value: Any) -> Any:
    """Details as plain JSON (datetimes as ISO strings, numpy/Decimal numbers as numbers)."""
    return json.loads(json.dumps(value, default=_default))


def _default(value: Any) -> Any:
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    try:
        return float(value) if not float(value).is_integer() else int(value)
    except (TypeError, ValueError):
        return str(value)
