"""Load Goldsky `polymarket.order_filled` dataset files into `raw.order_filled`, each on its own.

Every file is accepted or rejected by itself: an unreadable, zero-byte or empty file, or one
with a row that breaks the contract (ingest/fill_contract.py, plausibility included), is
rejected with its name, the row and the reason, recorded in `ops.rejected_files` and in the
report's warnings, and the files before and after it in name order load, tonight and on later
nights (a rejected file is tried again, and reported again, each night until it is fixed or
removed). A file that is not a dataset file at all (`.json`, `.csv`, ...) is a warning naming
it. Only a failure that is not the file's fault (the warehouse itself) stops the load.

One pass over a file does the work: the engine parses it (`file()` table function), checks
every row against the contract (a row that breaks it aborts the query), converts the rows to
the raw types and writes them, sorted, into an empty staging table shaped like
`raw.order_filled`. Only a file that passed whole reaches `raw.order_filled`, through
ingest/fill_store.py: each fill id once (ids normalised: trimmed, lower-case), the first
stored row winning over any re-send; ids repeated inside a file load once (the first
occurrence). A bad file loads nothing; a second pass over it, only then, names its bad rows.
A manifest of content hashes in `ops.loaded_files` makes each file load once.

Both dataset versions load: 1.1.0 (v1 exchanges: maker/taker asset ids) and 2.0.0 (v2
exchanges since 2026-04-28: the maker order's `side` and one `token_id`). The version is
told per file from its columns (a JSONL file's first line) and v2 rows are normalized to
the v1 shape as they are read, so validation, dedup and everything downstream is one code
path; `contract_version` records where a row came from.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
import logging
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clickhouse_connect.driver.client import Client

from ingest import fill_store, stage_tables
from ingest.fill_contract import (
    MAX_REPORTED_ERRORS,
    NORMALIZED_ID,
    OPTIONAL_COLUMNS,
    RAW_COLUMN_LIST,
    RAW_COLUMNS,
    RAW_EXPRESSIONS,
    REQUIRED_BY_VERSION,
    REQUIRED_COLUMNS,
    SIDE_EXPR,
    V2_COLUMNS,
    plausible_window,
    problem_list,
    problems_sql,
    row_problem,
)
from pipeline.warehouse import engine_message

__all__ = [
    "LOAD_STAGES",
    "MAX_REPORTED_ERRORS",
    "REQUIRED_COLUMNS",
    "FileLoad",
    "FileRejected",
    "IngestReport",
    "discover",
    "load_directory",
    "load_file",
    "record_rejection",
    "unknown_files",
]

log = logging.getLogger(__name__)

SUFFIX_FORMATS = {
    ".parquet": "Parquet",
    ".jsonl": "JSONEachRow",
    ".ndjson": "JSONEachRow",
    ".jsonl.gz": "JSONEachRow",
    ".ndjson.gz": "JSONEachRow",
}
# How the engine reads a dataset file: every value as a string (the rules judge the text),
# unknown columns skipped, optional Parquet columns may be absent.
FILE_SETTINGS = (
    "input_format_json_read_numbers_as_strings = 1, "
    "input_format_skip_unknown_fields = 1, "
    "input_format_parquet_allow_missing_columns = 1"
)
Window = tuple[dt.datetime, dt.datetime]


class FileRejected(ValueError):
    """A dataset file breaks the contract; nothing from it was loaded."""

    def __init__(self, path: Path, problems: list[str], bad_rows: int = 0):
        self.path = path
        self.problems = problems
        self.bad_rows = bad_rows
        self.sha256 = ""  # the content's hash, when the file could be read
        more = f" ({bad_rows} bad rows in all)" if bad_rows > len(problems) else ""
        super().__init__(f"{path.name}: rejected{more}: " + "; ".join(problems))


@dataclass
class FileLoad:
    path: Path
    status: str  # loaded | skipped | rejected
    rows: int = 0
    rows_new: int = 0
    seconds: float = 0.0
    error: str | None = None
    version: str | None = None  # v1 (dataset 1.1.0) or v2 (2.0.0)
    route: str | None = None  # attached | filtered: how the rows reached raw.order_filled
    # ids stored already (by an earlier file or source): identical, or with other content
    # (the first stored row is kept; see ingest/fill_store.py)
    rows_resent: int = 0
    rows_conflicting: int = 0
    conflict_examples: list[str] = field(default_factory=list)
    # seconds per stage of load_file (hash, parse, dedup, publish, other): the benchmark's
    # breakdown of where a load's time goes
    phases: dict[str, float] = field(default_factory=dict)

    def conflict_warning(self) -> str | None:
        if not self.rows_conflicting:
            return None
        shown = ", ".join(self.conflict_examples)
        return (
            f"{self.path.name}: {self.rows_conflicting} re-sent ids with different content; "
            f"the first stored rows were kept (e.g. {shown})"
        )


@dataclass
class IngestReport:
    files: list[FileLoad] = field(default_factory=list)
    unknown: list[Path] = field(default_factory=list)  # files that are no dataset file
    directory: Path | None = None

    @property
    def rows_in(self) -> int:
        return sum(f.rows for f in self.files if f.status == "loaded")

    @property
    def rows_new(self) -> int:
        return sum(f.rows_new for f in self.files if f.status == "loaded")

    @property
    def rows_resent(self) -> int:
        return sum(f.rows_resent for f in self.files if f.status == "loaded")

    @property
    def rows_conflicting(self) -> int:
        return sum(f.rows_conflicting for f in self.files if f.status == "loaded")

    @property
    def rejected(self) -> list[FileLoad]:
        return [f for f in self.files if f.status == "rejected"]

    def counts(self) -> dict[str, int]:
        statuses = [f.status for f in self.files]
        return {
            "loaded": statuses.count("loaded"),
            "skipped": statuses.count("skipped"),
            "rejected": statuses.count("rejected"),
            "unknown": len(self.unknown),
        }

    @property
    def warnings(self) -> list[str]:
        """One line per file that needs a look, naming it: rejected, re-sent with other
        content, or not a dataset file."""
        out = [f.error for f in self.rejected if f.error]
        out += [w for f in self.files if (w := f.conflict_warning())]
        out += [
            f"{_shown(p, self.directory)}: not a dataset file ({_suffix(p)}): ignored; dataset files "
            f"are {', '.join(SUFFIX_FORMATS)}"
            for p in self.unknown
        ]
        return out


def _suffix(path: Path) -> str:
    return "".join(path.suffixes[-2:]) or "no suffix"


def _shown(path: Path, directory: Path | None) -> str:
    if directory is not None:
        try:
            return str(path.relative_to(directory))
        except ValueError:
            pass
    return path.name


def file_format(path: Path) -> str | None:
    name = path.name.lower()
    for suffix, fmt in SUFFIX_FORMATS.items():
        if name.endswith(suffix):
            return fmt
    return None


def _visible_files(directory: Path) -> list[Path]:
    """Files under `directory`, without dot files and dot folders (sync tools' state)."""
    return sorted(
        p
        for p in directory.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(directory).parts)
    )


def discover(directory: Path) -> list[Path]:
    """Dataset files under `directory`, in name order (Goldsky names sort by time)."""
    if not directory.is_dir():
        return []
    return [p for p in _visible_files(directory) if file_format(p)]


def unknown_files(directory: Path) -> list[Path]:
    """Files under `directory` that are no dataset file (e.g. `.json`, `.csv`)."""
    if not directory.is_dir():
        return []
    return [p for p in _visible_files(directory) if not file_format(p)]


def sha256_of(path: Path) -> str:
    """The manifest key. SHA-256 stays (hashlib uses the CPU's SHA instructions: ~1 GB/s,
    faster here than BLAKE2 or MD5), so manifests written by earlier versions still match."""
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _sql_str(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def reads_local_files(client: Client) -> bool:
    """Whether `client`'s engine runs in this process (chDB), so `file()` sees our files.

    A ClickHouse server's `file()` reads the server's own disk instead: for a server, the
    files are parsed by a local, stateless chDB engine and the rows sent over as Arrow.
    """
    try:
        from clickhouse_connect.driver._chdbclient import ChdbClient
    except ImportError:  # pragma: no cover - chdb is a pinned dependency
        return False
    return isinstance(client, ChdbClient)


def _local_arrow(sql: str):
    """Run `sql` on a stateless in-process chDB engine (server mode: no engine is open here)."""
    import chdb

    return chdb.query(sql, "ArrowTable")


def _parse(client: Client, sql: str, local: bool):
    """The rows of `sql` (a SELECT over `file()`) as an Arrow table, parsed where the file is."""
    return client.query_arrow(sql) if local else _local_arrow(sql)


def _source_columns(client: Client, path: Path, fmt: str) -> list[str] | None:
    """Column names a self-describing file declares (Parquet), else None; a Parquet file the
    engine cannot describe is rejected as unreadable."""
    if fmt != "Parquet":
        return None
    try:
        described = _parse(
            client, f"DESCRIBE file({_sql_str(str(path))}, 'Parquet')", reads_local_files(client)
        )
    except Exception as exc:  # the engine could not read the file's metadata
        raise FileRejected(path, [f"unreadable as Parquet: {engine_message(exc)[:500]}"]) from None
    return [str(name) for name in described.column("name").to_pylist()]


def dataset_version(columns: list[str] | set[str]) -> str:
    """'v2' for a 2.0.0 file (side + token_id, no asset ids), else 'v1'."""
    cols = set(columns)
    return "v2" if set(V2_COLUMNS) <= cols and "maker_asset_id" not in cols else "v1"


def _first_line_keys(path: Path) -> list[str] | None:
    """The keys of a JSONL file's first object: how a JSONL file tells its version."""
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8") as fh:  # type: ignore[operator]
            for line in fh:
                if line.strip():
                    obj = json.loads(line)
                    return list(obj) if isinstance(obj, dict) else None
    except (OSError, EOFError, ValueError, zlib.error):  # ValueError: bad UTF-8 or JSON
        return None  # the engine reports the unreadable file when it parses it
    return None


# --- a dataset file, read by the engine ---------------------------------------------------


@dataclass(frozen=True)
class FileSource:
    """A dataset file as the engine reads it: the staging columns as nullable strings, with
    1-based row numbers, v2 rows already in the v1 shape (BUY: the maker gives "0" and gets
    the token, SELL: the reverse)."""

    path: Path
    fmt: str
    window: Window
    version: str = "v1"

    def relation(self) -> str:
        """A subquery over `file()` with the staging columns (side/token_id only for v2)."""
        file_cols = REQUIRED_BY_VERSION[self.version] + OPTIONAL_COLUMNS
        structure = ", ".join(f"`{c}` Nullable(String)" for c in file_cols)
        select = {c: f"`{c}`" for c in file_cols}
        if self.version == "v2":
            select["maker_asset_id"] = f"multiIf({SIDE_EXPR} = 0, '0', {SIDE_EXPR} = 1, token_id, NULL)"
            select["taker_asset_id"] = f"multiIf({SIDE_EXPR} = 0, token_id, {SIDE_EXPR} = 1, '0', NULL)"
        return (
            "(SELECT _row_number + 1 AS row_number, "
            + ", ".join(f"{expr} AS `{name}`" for name, expr in select.items())
            + f", '{self.version}' AS contract_version "
            f"FROM file({_sql_str(str(self.path))}, '{self.fmt}', {_sql_str(structure)}))"
        )

    def raw_rows_sql(self, first_of_each_id: bool = False) -> str:
        """The file's rows converted to raw.order_filled's columns. The query fails on the
        first row that breaks the contract, so the one pass that writes the rows also
        validates every one of them. `first_of_each_id` keeps each (normalised) id's first
        occurrence in file order (only asked for when the file repeats ids: it costs a sort)."""
        dedup = f" ORDER BY row_number LIMIT 1 BY {NORMALIZED_ID}" if first_of_each_id else ""
        return (
            f"SELECT {RAW_EXPRESSIONS} FROM {self.relation()} "
            f"WHERE throwIf({row_problem(self.window, self.version)} != '', "
            "'a row breaks the data contract') = 0"
            f"{dedup} SETTINGS {FILE_SETTINGS}"
        )

    def problems_sql(self, limit: int = MAX_REPORTED_ERRORS) -> str:
        """The file's first broken rows and their count (the second pass of a failed file)."""
        return (
            problems_sql(self.relation(), row_problem(self.window, self.version), limit)
            + f" SETTINGS {FILE_SETTINGS}"
        )


@dataclass(frozen=True)
class StageSummary:
    """What the written rows say about the file: rows, distinct ids, time range."""

    rows: int
    distinct_ids: int
    lo: dt.datetime | None
    hi: dt.datetime | None


def _write_rows(client: Client, stage: str, source: FileSource, first_of_each_id: bool = False) -> None:
    """Parse, validate, convert and write the file's rows into `stage` in one pass: the
    engine reads the file itself, or for a server a local chDB does and the rows go over
    as Arrow (a server's `file()` would read the server's disk)."""
    sql = source.raw_rows_sql(first_of_each_id)
    if reads_local_files(client):
        client.command(f"INSERT INTO {stage} ({RAW_COLUMN_LIST}) {sql}, max_partitions_per_insert_block = 0")
    else:
        rows = _local_arrow(sql).rename_columns(list(RAW_COLUMNS))
        client.insert_arrow(stage, rows, settings={"max_partitions_per_insert_block": 0})


def _rejection(client: Client, source: FileSource, error: Exception) -> Exception:
    """Why the validating pass failed: the file's bad rows (a second pass, only for a failed
    file), FileRejected 'unreadable' when the engine cannot parse it, else `error` itself
    (not the file's fault: the caller re-raises it)."""
    try:
        found = _file_problems(client, source)
    except Exception as exc:  # the engine could not parse the file at all
        reason = engine_message(exc)[:500] if str(exc) else type(exc).__name__
        return FileRejected(source.path, [f"unreadable as {source.fmt}: {reason}"])
    problems, bad_rows = problem_list(found)
    return FileRejected(source.path, problems, bad_rows) if problems else error


def _file_problems(client: Client, source: FileSource) -> list[tuple[Any, Any, Any]]:
    """The rows of `source.problems_sql()`, parsed where the file is."""
    sql = source.problems_sql()
    if reads_local_files(client):
        return client.query(sql).result_rows
    found = _local_arrow(sql)
    return list(zip(*(found.column(i).to_pylist() for i in range(found.num_columns))))


def _summarize(client: Client, stage: str) -> StageSummary:
    """Rows, distinct ids and time range of the written rows. Ids are counted by a 64-bit
    hash: a collision can only make a file look like it repeats ids, which costs the exact
    dedup pass, never a duplicate row."""
    rows, distinct, lo, hi = client.query(
        f"SELECT count(), uniqExact(cityHash64(id)), minOrNull(timestamp), maxOrNull(timestamp) FROM {stage}"
    ).result_rows[0]
    return StageSummary(int(rows), int(distinct), lo, hi)


LOAD_STAGES = ("hash", "parse", "dedup", "publish", "other")


class _Laps:
    """Seconds spent per stage of a file's load (FileLoad.phases), in LOAD_STAGES order."""

    def __init__(self) -> None:
        self.started = self._last = time.monotonic()
        self.seconds: dict[str, float] = dict.fromkeys(LOAD_STAGES, 0.0)

    def lap(self, stage: str) -> None:
        now = time.monotonic()
        self.seconds[stage] = round(self.seconds.get(stage, 0.0) + now - self._last, 4)
        self._last = now

    def total(self) -> float:
        return time.monotonic() - self.started


def _checked_source(client: Client, path: Path, fmt: str, window: Window) -> FileSource:
    """The file's version, from its declared columns (Parquet) or first line (JSONL);
    a Parquet file missing a required column is rejected before any row is read."""
    declared = _source_columns(client, path, fmt)
    if declared is None:
        return FileSource(path, fmt, window, dataset_version(_first_line_keys(path) or []))
    version = dataset_version(declared)
    missing = [c for c in REQUIRED_BY_VERSION[version] if c not in declared]
    if missing:
        raise FileRejected(path, [f"missing columns: {', '.join(missing)}"])
    return FileSource(path, fmt, window, version)


def _keep_first_of_each_id(
    client: Client, stage: str, source: FileSource, summary: StageSummary
) -> tuple[int, list[str]]:
    """Rewrite the staging table with each id's first row in file order: the file repeats
    ids (rare: a second pass over the file, with a sort). Returns the ids it repeats with
    different content, and examples."""
    conflicting, examples = fill_store.repeated_conflicts(client, stage)
    log.info(
        "file repeats ids: keeping each id's first row",
        extra={
            "ctx": {
                "file": source.path.name,
                "rows": summary.rows,
                "distinct_ids": summary.distinct_ids,
                "ids_with_other_content": conflicting,
            }
        },
    )
    client.command(f"TRUNCATE TABLE {stage}")
    _write_rows(client, stage, source, first_of_each_id=True)
    return conflicting, examples


def _load_rows(
    client: Client, source: FileSource, laps: _Laps
) -> tuple[StageSummary, fill_store.Publication]:
    """Write, check and publish the file's rows through a staging table that is always
    dropped; returns what was written and what publishing it did."""
    stage = fill_store.create_raw_stage(client)
    try:
        try:
            _write_rows(client, stage, source)
        except Exception as exc:
            raise _rejection(client, source, exc) from None
        laps.lap("parse")
        summary = _summarize(client, stage)
        if summary.rows == 0:
            raise FileRejected(source.path, ["no rows (an empty file)"])
        repeated = (0, [])
        if summary.distinct_ids != summary.rows:
            repeated = _keep_first_of_each_id(client, stage, source, summary)
        laps.lap("dedup")
        published = fill_store.publish(client, stage, label=source.path.name)
        published.rows_conflicting += repeated[0]
        published.conflict_examples = (published.conflict_examples + repeated[1])[: fill_store.EXAMPLES]
    finally:
        client.command(f"DROP TABLE IF EXISTS {stage}")
    laps.lap("publish")
    return summary, published


def _record(client: Client, digest: str, path: Path, summary: StageSummary, rows_new: int) -> None:
    """The manifest row that makes this content load once. A parameterized INSERT ...
    SELECT: `client.insert` would import pandas on its first call (~0.4 s per process)."""
    client.command(
        "INSERT INTO ops.loaded_files (sha256, file_name, path, size_bytes, rows, rows_new, "
        "min_ts, max_ts, loaded_at) SELECT {sha256:String}, {file_name:String}, {path:String}, "
        "{size_bytes:UInt64}, {rows:UInt64}, {rows_new:UInt64}, "
        "{min_ts:Nullable(DateTime64(3, 'UTC'))}, {max_ts:Nullable(DateTime64(3, 'UTC'))}, "
        "{loaded_at:DateTime64(3, 'UTC')}",
        parameters={
            "sha256": digest,
            "file_name": path.name,
            "path": str(path),
            "size_bytes": path.stat().st_size,
            "rows": summary.rows,
            "rows_new": rows_new,
            "min_ts": summary.lo,
            "max_ts": summary.hi,
            "loaded_at": _now(),
        },
    )


def record_rejection(client: Client, path: Path, rejected: FileRejected) -> None:
    """One ops.rejected_files row per rejection (a file is retried, and recorded, each night)."""
    try:
        size = path.stat().st_size
    except OSError:
        size = 0
    client.command(
        "INSERT INTO ops.rejected_files (sha256, file_name, path, size_bytes, reason, bad_rows, "
        "rejected_at) SELECT {sha256:String}, {file_name:String}, {path:String}, {size:UInt64}, "
        "{reason:String}, {bad:UInt64}, {at:DateTime64(3, 'UTC')}",
        parameters={
            "sha256": rejected.sha256,
            "file_name": path.name,
            "path": str(path),
            "size": size,
            "reason": str(rejected)[:4000],
            "bad": rejected.bad_rows or (1 if rejected.problems else 0),
            "at": _now(),
        },
    )


def already_loaded(client: Client, sha256: str) -> bool:
    """Whether this content was loaded before. A record of no rows does not count: earlier
    versions recorded empty files as loaded, which are now rejected (and reported)."""
    return bool(
        client.command(
            "SELECT count() FROM ops.loaded_files WHERE sha256 = {h:String} AND rows > 0",
            parameters={"h": sha256},
        )
    )


def load_file(client: Client, path: Path, now: dt.datetime | None = None, sync: bool = True) -> FileLoad:
    """Load one file, all or nothing. Raises FileRejected (after recording it in
    ops.rejected_files) when the file breaks the contract or cannot be read; `now` is when
    the load began (the plausible window's upper end); `sync` first indexes raw rows the id
    index may lack (load_directory does that once for all its files)."""
    try:
        return _load_file(client, path, plausible_window(now), sync)
    except FileRejected as exc:
        record_rejection(client, path, exc)
        raise


def _load_file(client: Client, path: Path, window: Window, sync: bool) -> FileLoad:
    laps = _Laps()
    fmt = file_format(path)
    if fmt is None:
        raise FileRejected(path, [f"not a dataset file ({_suffix(path)})"])
    try:
        size = path.stat().st_size
        digest = sha256_of(path)
    except OSError as exc:
        raise FileRejected(path, [f"unreadable: {exc.strerror or exc}"]) from None
    try:
        if size == 0:
            raise FileRejected(path, ["zero-byte file"])
        if already_loaded(client, digest):
            return FileLoad(path, "skipped", seconds=laps.total())
        laps.lap("hash")
        if sync:
            fill_store.sync(client)
        source = _checked_source(client, path, fmt, window)
        laps.lap("other")
        summary, published = _load_rows(client, source, laps)
    except FileRejected as exc:
        exc.sha256 = digest
        raise
    _record(client, digest, path, summary, published.rows_new)
    laps.lap("other")
    return FileLoad(
        path,
        "loaded",
        rows=summary.rows,
        rows_new=published.rows_new,
        seconds=laps.total(),
        version=source.version,
        route=published.route,
        rows_resent=published.rows_resent,
        rows_conflicting=published.rows_conflicting,
        conflict_examples=published.conflict_examples,
        phases=laps.seconds,
    )


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def load_directory(client: Client, directory: Path, now: dt.datetime | None = None) -> IngestReport:
    """Load every new dataset file under `directory`, each on its own: a rejected file is
    reported and recorded and does not stop the others. Logs one line per file that loads
    or is rejected (files loaded before go to DEBUG and into the counts)."""
    now = now or _now()
    report = IngestReport(directory=directory)
    stage_tables.drop_orphans(client, embedded=reads_local_files(client))
    files = discover(directory)
    report.unknown = unknown_files(directory)
    for path in report.unknown:
        log.warning(
            "not a dataset file: ignored",
            extra={"ctx": {"file": _shown(path, directory), "suffix": _suffix(path)}},
        )
    if files:
        fill_store.sync(client)
    for index, path in enumerate(files, 1):
        try:
            result = load_file(client, path, now=now, sync=False)
        except FileRejected as exc:
            result = FileLoad(path, "rejected", error=str(exc))
            log.warning(
                "dataset file rejected",
                extra={
                    "ctx": {
                        "file": path.name,
                        "progress": f"{index}/{len(files)}",
                        "rows": 0,
                        "problems": exc.problems,
                        "bad_rows": exc.bad_rows,
                    }
                },
            )
        else:
            _log_file(result, index, len(files))
        report.files.append(result)
    log.info(
        "dataset files done",
        extra={
            "ctx": {
                **report.counts(),
                "rows": report.rows_in,
                "rows_new": report.rows_new,
                "rows_resent": report.rows_resent,
                "rows_conflicting": report.rows_conflicting,
            }
        },
    )
    return report


def _log_file(result: FileLoad, index: int, total: int) -> None:
    if result.status == "skipped":
        log.debug(
            "dataset file already loaded",
            extra={"ctx": {"file": result.path.name, "progress": f"{index}/{total}", "rows": 0}},
        )
        return
    ctx: dict[str, Any] = {
        "file": result.path.name,
        "progress": f"{index}/{total}",
        "rows": result.rows,
        "rows_new": result.rows_new,
        "seconds": round(result.seconds, 3),
    }
    if result.rows_resent:
        ctx.update(rows_resent=result.rows_resent, rows_conflicting=result.rows_conflicting)
    log.info("dataset file loaded", extra={"ctx": ctx})
    if result.rows_conflicting:
        log.warning(result.conflict_warning(), extra={"ctx": {"file": result.path.name}})
    log.debug(
        "dataset file load stages",
        extra={
            "ctx": {
                "file": result.path.name,
                "contract_version": result.version,
                "route": result.route,
                "phases": result.phases,
            }
        },
    )
