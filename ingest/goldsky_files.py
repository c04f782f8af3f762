"""Load Goldsky `polymarket.order_filled` dataset files into `raw.order_filled`.

One pass over a file does the work: the engine parses it (`file()` table function), checks
every row against the contract (a row that breaks it aborts the query), converts the rows to
the raw types and writes them, sorted, into an empty staging table shaped like
`raw.order_filled`. Only a file that passed whole reaches `raw.order_filled`: its parts are
attached as they are (no second write) or, when some of its ids may be stored already,
inserted minus those ids. A bad file therefore loads nothing; a second pass over it, only
then, names its bad rows (row numbers and reasons), while the other files still load. A
manifest of content hashes in `ops.loaded_files` makes each file load once, and rows whose
id is already stored in the file's time window are not inserted again, so overlapping
deliveries add no rows; ids repeated inside a file load once (the first occurrence).

Both dataset versions load: 1.1.0 (v1 exchanges: maker/taker asset ids) and 2.0.0 (v2
exchanges since 2026-04-28: the maker order's `side` and one `token_id`). The version is
told per file from its columns (a JSONL file's first line) and v2 rows are normalized to
the v1 shape as they are read, so validation, dedup and everything downstream is one code
path; `contract_version` records where a row came from.

The subgraph source (ingest/subgraph.py) stages its pages as strings and shares the same
rules and conversion: `create_stage`, `find_problems`, `insert_new_rows`.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
import logging
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clickhouse_connect.driver.client import Client

log = logging.getLogger(__name__)

# Columns of the 1.1.0 dataset that the pipeline needs; others (vid, chain_id, _gs_*) are
# tolerated and ignored.
REQUIRED_COLUMNS = (
    "id",
    "timestamp",
    "transaction_hash",
    "order_hash",
    "maker",
    "taker",
    "maker_asset_id",
    "taker_asset_id",
    "maker_amount_filled",
    "taker_amount_filled",
)
OPTIONAL_COLUMNS = ("fee", "block_number")
# The 2.0.0 dataset (v2 exchanges) names the maker order's side (0 BUY, 1 SELL) and the
# outcome token instead of the two asset ids; `builder` and `metadata` are not kept.
V2_COLUMNS = ("side", "token_id")
REQUIRED_COLUMNS_V2 = (
    tuple(c for c in REQUIRED_COLUMNS if c not in ("maker_asset_id", "taker_asset_id")) + V2_COLUMNS
)
STAGE_COLUMNS = REQUIRED_COLUMNS + OPTIONAL_COLUMNS + V2_COLUMNS
REQUIRED_BY_VERSION = {"v1": REQUIRED_COLUMNS, "v2": REQUIRED_COLUMNS_V2}

SUFFIX_FORMATS = {
    ".parquet": "Parquet",
    ".jsonl": "JSONEachRow",
    ".ndjson": "JSONEachRow",
    ".jsonl.gz": "JSONEachRow",
    ".ndjson.gz": "JSONEachRow",
}
MAX_REPORTED_ERRORS = 20
# How the engine reads a dataset file: every value as a string (the rules below judge the
# text), unknown columns skipped, optional Parquet columns may be absent.
FILE_SETTINGS = (
    "input_format_json_read_numbers_as_strings = 1, "
    "input_format_skip_unknown_fields = 1, "
    "input_format_parquet_allow_missing_columns = 1"
)


class FileRejected(ValueError):
    """A dataset file breaks the contract; nothing from it was loaded."""

    def __init__(self, path: Path, problems: list[str], bad_rows: int = 0):
        self.path = path
        self.problems = problems
        self.bad_rows = bad_rows
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
    # seconds per stage of load_file (hash, parse, dedup, publish, other): the benchmark's
    # breakdown of where a load's time goes
    phases: dict[str, float] = field(default_factory=dict)


@dataclass
class IngestReport:
    files: list[FileLoad] = field(default_factory=list)

    @property
    def rows_in(self) -> int:
        return sum(f.rows for f in self.files if f.status == "loaded")

    @property
    def rows_new(self) -> int:
        return sum(f.rows_new for f in self.files if f.status == "loaded")

    @property
    def rejected(self) -> list[FileLoad]:
        return [f for f in self.files if f.status == "rejected"]


def file_format(path: Path) -> str | None:
    name = path.name.lower()
    for suffix, fmt in SUFFIX_FORMATS.items():
        if name.endswith(suffix):
            return fmt
    return None


def discover(directory: Path) -> list[Path]:
    """Dataset files under `directory`, in name order (Goldsky names sort by time)."""
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.rglob("*") if p.is_file() and file_format(p))


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
    """Column names a self-describing file declares (Parquet), else None."""
    if fmt != "Parquet":
        return None
    described = _parse(client, f"DESCRIBE file({_sql_str(str(path))}, 'Parquet')", reads_local_files(client))
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
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None  # the engine reports the unreadable file when it parses it
    return None


# --- the contract's rules and the conversion to raw types (shared with the subgraph) ------

# v2 side -> 0 (BUY) / 1 (SELL) / -1 (anything else). The dataset's UInt8 arrives as '0'/'1'.
_SIDE_EXPR = "multiIf(upper(trim(side)) IN ('0', 'BUY'), 0, upper(trim(side)) IN ('1', 'SELL'), 1, -1)"
_TS_EXPR = (
    "if(match(timestamp, '^[0-9]+$'), "
    "if(toUInt64(timestamp) > 100000000000, "
    "fromUnixTimestamp64Milli(toInt64(timestamp), 'UTC'), "
    "toDateTime64(toUInt64(timestamp), 3, 'UTC')), "
    "parseDateTime64BestEffortOrNull(timestamp, 3, 'UTC'))"
)


def _row_problem(version: str | None = None) -> str:
    """One expression that names the first broken rule of a row of strings, '' when clean.

    `version` None reads each row's `contract_version` (a stage may mix versions); a file
    has one version, and a v1 file has no side/token_id columns for the v2 rules to read."""
    guard = "contract_version = 'v2' AND " if version is None else ""
    v2_rules = (
        "".join(f"{guard}`{c}` IS NULL, 'field {c} is missing', " for c in V2_COLUMNS)
        + f"{guard}{_SIDE_EXPR} = -1, "
        "concat('side ', side, ' is not 0 (BUY) or 1 (SELL)'), "
        f"{guard}NOT match(token_id, '^[0-9]{{1,78}}$'), "
        "concat('token_id ', token_id, ' is not a decimal token id'), "
    )
    rules = (
        "".join(f"`{c}` IS NULL, 'field {c} is missing', " for c in REQUIRED_COLUMNS)
        + "id = '', 'field id is empty', "
        + f"{_TS_EXPR} IS NULL, concat('timestamp ', timestamp, ' is not a unix time or ISO date'), "
        + "".join(
            f"NOT match({c}, '^0[xX][0-9a-fA-F]{{40}}$'), concat('{c} ', {c}, ' is not an address'), "
            for c in ("maker", "taker")
        )
        + "".join(
            f"NOT match({c}, '^[0-9]{{1,78}}$'), concat('{c} ', {c}, ' is not a decimal token id'), "
            for c in ("maker_asset_id", "taker_asset_id")
        )
        + "(maker_asset_id = '0') + (taker_asset_id = '0') != 1, "
        "concat('asset pair (', maker_asset_id, ', ', taker_asset_id, ') needs exactly one \"0\"'), "
        + "".join(
            f"toUInt64OrNull({c}) IS NULL, concat('{c} ', {c}, ' is not an unsigned 64-bit integer'), "
            for c in ("maker_amount_filled", "taker_amount_filled")
        )
        + "".join(
            f"{c} IS NOT NULL AND toUInt64OrNull({c}) IS NULL, "
            f"concat('{c} ', {c}, ' is not an unsigned 64-bit integer'), "
            for c in OPTIONAL_COLUMNS
        )
    )
    # v2 rows first: their asset pair is derived from side/token_id, so name those fields
    return "multiIf(" + ("" if version == "v1" else v2_rules) + rules + "'')"


_ROW_PROBLEM = _row_problem()

# raw.order_filled's columns and the conversion of a clean row of strings to them. Files and
# subgraph pages both go through this list, so a fill is stored the same from either.
_RAW_SELECT = (
    ("id", "id"),
    ("timestamp", _TS_EXPR),
    ("transaction_hash", "lower(transaction_hash)"),
    ("order_hash", "lower(order_hash)"),
    ("maker", "lower(maker)"),
    ("taker", "lower(taker)"),
    ("maker_asset_id", "maker_asset_id"),
    ("taker_asset_id", "taker_asset_id"),
    ("maker_amount_filled", "toUInt64(maker_amount_filled)"),
    ("taker_amount_filled", "toUInt64(taker_amount_filled)"),
    ("fee", "toUInt64(ifNull(fee, '0'))"),
    ("block_number", "toUInt64(ifNull(block_number, '0'))"),
    ("contract_version", "contract_version"),
)
RAW_COLUMNS = tuple(name for name, _ in _RAW_SELECT)
_RAW_COLUMN_LIST = ", ".join(f"`{c}`" for c in RAW_COLUMNS)
# Positional (no aliases): an alias named like a source column would replace that column
# in the query's other expressions.
_RAW_EXPRESSIONS = ", ".join(expr for _, expr in _RAW_SELECT)
# Every insert here carries distinct ids (deduplicated by the loader), so the table's own
# insert-time collapsing of equal sort keys (ReplacingMergeTree) would only cost time.
_INSERT_SETTINGS = "max_partitions_per_insert_block = 0, optimize_on_insert = 0"
# The stored ids an event could collide with: an event's id fixes its timestamp, so only
# the batch's time window is read (partition pruning).
_STORED_IDS = (
    "SELECT id FROM raw.order_filled WHERE timestamp "
    "BETWEEN {lo:DateTime64(3, 'UTC')} AND {hi:DateTime64(3, 'UTC')}"
)


def _problems_sql(relation: str, problem: str, limit: int) -> str:
    """The first `limit` broken rows of `relation` (row_number, problem, bad rows in all)."""
    return (
        f"SELECT row_number, problem, count() OVER () AS bad FROM "
        f"(SELECT row_number, {problem} AS problem FROM {relation}) "
        f"WHERE problem != '' ORDER BY row_number LIMIT {int(limit)}"
    )


def _problem_list(rows: list[tuple[Any, Any, Any]]) -> tuple[list[str], int]:
    """'row N: why' for each broken row, and how many broken rows there are in all."""
    if not rows:
        return [], 0
    return [f"row {r[0]}: {r[1]}" for r in rows], int(rows[0][2])


# --- the subgraph's staging table of strings ---------------------------------------------


def create_stage(client: Client, name: str | None = None, memory: bool = False) -> str:
    """An empty staging table of nullable strings, the shape the subgraph stages pages in.
    A fixed `name` replaces what a killed run of the same source left behind; `memory` suits
    small batches (no parts to write), MergeTree a large batch."""
    stage = name or f"raw._stage_order_filled_{uuid.uuid4().hex[:12]}"
    client.command(f"DROP TABLE IF EXISTS {stage}")
    cols = ", ".join(f"`{c}` Nullable(String)" for c in STAGE_COLUMNS)
    engine = "Memory" if memory else "MergeTree ORDER BY row_number"
    client.command(
        f"CREATE TABLE {stage} (row_number UInt64, {cols}, "
        f"contract_version LowCardinality(String) DEFAULT 'v1') ENGINE = {engine}"
    )
    return stage


def find_problems(client: Client, stage: str, limit: int = MAX_REPORTED_ERRORS) -> tuple[list[str], int]:
    """The first `limit` broken rows of a staging table as 'row N: why', and how many in all."""
    return _problem_list(client.query(_problems_sql(stage, _ROW_PROBLEM, limit)).result_rows)


def insert_new_rows(client: Client, stage: str) -> int:
    """Insert the staged (validated) rows whose id is not stored yet, each id once; returns
    the rows inserted, so a re-fetched event never becomes a second row."""
    lo, hi, n = client.query(f"SELECT min({_TS_EXPR}), max({_TS_EXPR}), count() FROM {stage}").result_rows[0]
    if n == 0:
        return 0
    before = client.command("SELECT count() FROM raw.order_filled")
    client.command(
        f"INSERT INTO raw.order_filled ({_RAW_COLUMN_LIST}) SELECT {_RAW_EXPRESSIONS} "
        f"FROM {stage} WHERE id NOT IN ({_STORED_IDS}) "
        f"ORDER BY row_number LIMIT 1 BY id SETTINGS {_INSERT_SETTINGS}",
        parameters={"lo": lo, "hi": hi},
    )
    return int(client.command("SELECT count() FROM raw.order_filled")) - int(before)


# --- a dataset file, read by the engine ---------------------------------------------------


@dataclass(frozen=True)
class FileSource:
    """A dataset file as the engine reads it: the staging columns as nullable strings, with
    1-based row numbers, v2 rows already in the v1 shape (BUY: the maker gives "0" and gets
    the token, SELL: the reverse)."""

    path: Path
    fmt: str
    version: str = "v1"

    def relation(self) -> str:
        """A subquery over `file()` with the staging columns (side/token_id only for v2)."""
        file_cols = REQUIRED_BY_VERSION[self.version] + OPTIONAL_COLUMNS
        structure = ", ".join(f"`{c}` Nullable(String)" for c in file_cols)
        select = {c: f"`{c}`" for c in file_cols}
        if self.version == "v2":
            select["maker_asset_id"] = f"multiIf({_SIDE_EXPR} = 0, '0', {_SIDE_EXPR} = 1, token_id, NULL)"
            select["taker_asset_id"] = f"multiIf({_SIDE_EXPR} = 0, token_id, {_SIDE_EXPR} = 1, '0', NULL)"
        return (
            "(SELECT _row_number + 1 AS row_number, "
            + ", ".join(f"{expr} AS `{name}`" for name, expr in select.items())
            + f", '{self.version}' AS contract_version "
            f"FROM file({_sql_str(str(self.path))}, '{self.fmt}', {_sql_str(structure)}))"
        )

    def raw_rows_sql(self, first_of_each_id: bool = False) -> str:
        """The file's rows converted to raw.order_filled's columns. The query fails on the
        first row that breaks the contract, so the one pass that writes the rows also
        validates every one of them. `first_of_each_id` keeps each id's first occurrence in
        file order (only asked for when the file repeats ids: it costs a sort)."""
        dedup = " ORDER BY row_number LIMIT 1 BY id" if first_of_each_id else ""
        return (
            f"SELECT {_RAW_EXPRESSIONS} FROM {self.relation()} "
            f"WHERE throwIf({_row_problem(self.version)} != '', 'a row breaks the data contract') = 0"
            f"{dedup} SETTINGS {FILE_SETTINGS}"
        )

    def problems_sql(self, limit: int = MAX_REPORTED_ERRORS) -> str:
        """The file's first broken rows and their count (the second pass of a failed file)."""
        return (
            _problems_sql(self.relation(), _row_problem(self.version), limit) + f" SETTINGS {FILE_SETTINGS}"
        )


@dataclass(frozen=True)
class StageSummary:
    """What the written rows say about the file: rows, distinct ids, time range."""

    rows: int
    distinct_ids: int
    lo: dt.datetime | None
    hi: dt.datetime | None


def _create_raw_stage(client: Client) -> str:
    """An empty table with raw.order_filled's columns, partitioning and sort order, so its
    parts can be attached to raw.order_filled as they are. Plain MergeTree: it keeps every
    row written (no collapsing on insert or merge), so its count is the file's."""
    part_key, sort_key, primary_key = client.query(
        "SELECT partition_key, sorting_key, primary_key FROM system.tables "
        "WHERE database = 'raw' AND name = 'order_filled'"
    ).result_rows[0]
    stage = f"raw._stage_order_filled_{uuid.uuid4().hex[:12]}"
    partition = f" PARTITION BY {part_key}" if part_key else ""
    client.command(
        f"CREATE TABLE {stage} AS raw.order_filled ENGINE = MergeTree{partition} "
        f"ORDER BY ({sort_key}) PRIMARY KEY ({primary_key})"
    )
    return stage


def _write_rows(client: Client, stage: str, source: FileSource, first_of_each_id: bool = False) -> None:
    """Parse, validate, convert and write the file's rows into `stage` in one pass: the
    engine reads the file itself, or for a server a local chDB does and the rows go over
    as Arrow (a server's `file()` would read the server's disk)."""
    sql = source.raw_rows_sql(first_of_each_id)
    if reads_local_files(client):
        client.command(f"INSERT INTO {stage} ({_RAW_COLUMN_LIST}) {sql}, max_partitions_per_insert_block = 0")
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
        reason = (str(exc).strip() or type(exc).__name__).splitlines()[0][:300]
        return FileRejected(source.path, [f"unreadable as {source.fmt}: {reason}"])
    problems, bad_rows = _problem_list(found)
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


def _stored_between(client: Client, lo: dt.datetime, hi: dt.datetime) -> bool:
    """Whether raw.order_filled has any row in [lo, hi]: only then can a file's id be stored
    already (an event's id fixes its timestamp). Partition pruning makes this cheap."""
    return bool(
        client.query(
            "SELECT 1 FROM raw.order_filled WHERE timestamp BETWEEN "
            "{lo:DateTime64(3, 'UTC')} AND {hi:DateTime64(3, 'UTC')} LIMIT 1",
            parameters={"lo": lo, "hi": hi},
        ).result_rows
    )


def _attach(client: Client, stage: str) -> None:
    """Move the written parts into raw.order_filled (hard links, no rewrite): the file's ids
    are all new there and distinct."""
    database, table = stage.split(".", 1)
    partitions = client.query(
        "SELECT DISTINCT partition_id FROM system.parts "
        "WHERE database = {d:String} AND table = {t:String} AND active",
        parameters={"d": database, "t": table},
    ).result_rows
    for (partition,) in partitions:
        client.command(f"ALTER TABLE raw.order_filled ATTACH PARTITION ID {_sql_str(partition)} FROM {stage}")


def _insert_not_stored(client: Client, stage: str, summary: StageSummary) -> None:
    """Insert the written rows whose id raw.order_filled does not hold yet."""
    client.command(
        f"INSERT INTO raw.order_filled ({_RAW_COLUMN_LIST}) SELECT {_RAW_COLUMN_LIST} FROM {stage} "
        f"WHERE id NOT IN ({_STORED_IDS}) SETTINGS {_INSERT_SETTINGS}",
        parameters={"lo": summary.lo, "hi": summary.hi},
    )


def _publish(client: Client, stage: str, summary: StageSummary, path: Path) -> str:
    """Put the file's (distinct) rows into raw.order_filled, skipping ids stored already;
    returns the route taken. Nothing reaches the table before this point. A server that
    refuses the attach (e.g. another storage policy) gets the insert instead; it is right
    even after some partitions were attached, since their ids now count as stored."""
    if summary.rows and _stored_between(client, summary.lo, summary.hi):
        _insert_not_stored(client, stage, summary)
        return "filtered"
    try:
        _attach(client, stage)
    except Exception as exc:
        log.warning(
            "attach refused, inserting instead",
            extra={"ctx": {"file": path.name, "error": str(exc).splitlines()[0][:300]}},
        )
        _insert_not_stored(client, stage, summary)
        return "filtered"
    return "attached"


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


def _checked_source(client: Client, path: Path, fmt: str) -> FileSource:
    """The file's version, from its declared columns (Parquet) or first line (JSONL);
    a Parquet file missing a required column is rejected before any row is read."""
    declared = _source_columns(client, path, fmt)
    if declared is None:
        return FileSource(path, fmt, dataset_version(_first_line_keys(path) or []))
    version = dataset_version(declared)
    missing = [c for c in REQUIRED_BY_VERSION[version] if c not in declared]
    if missing:
        raise FileRejected(path, [f"missing columns: {', '.join(missing)}"])
    return FileSource(path, fmt, version)


def _keep_first_of_each_id(client: Client, stage: str, source: FileSource, summary: StageSummary) -> None:
    """Rewrite the staging table with each id's first row in file order: the file repeats
    ids (rare: a second pass over the file, with a sort)."""
    log.info(
        "file repeats ids: keeping each id's first row",
        extra={"ctx": {"file": source.path.name, "rows": summary.rows, "distinct_ids": summary.distinct_ids}},
    )
    client.command(f"TRUNCATE TABLE {stage}")
    _write_rows(client, stage, source, first_of_each_id=True)


def _load_rows(client: Client, source: FileSource, laps: _Laps) -> tuple[StageSummary, str]:
    """Write, check and publish the file's rows through a staging table that is always
    dropped; returns what was written and the route to raw.order_filled."""
    stage = _create_raw_stage(client)
    try:
        try:
            _write_rows(client, stage, source)
        except Exception as exc:
            raise _rejection(client, source, exc) from None
        laps.lap("parse")
        summary = _summarize(client, stage)
        if summary.distinct_ids != summary.rows:
            _keep_first_of_each_id(client, stage, source, summary)
        laps.lap("dedup")
        route = _publish(client, stage, summary, source.path)
    finally:
        client.command(f"DROP TABLE IF EXISTS {stage}")
    laps.lap("publish")
    return summary, route


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


def already_loaded(client: Client, sha256: str) -> bool:
    return bool(
        client.command(
            "SELECT count() FROM ops.loaded_files WHERE sha256 = {h:String}",
            parameters={"h": sha256},
        )
    )


def load_file(client: Client, path: Path) -> FileLoad:
    """Load one file, all or nothing. Raises FileRejected when the file breaks the contract."""
    laps = _Laps()
    fmt = file_format(path)
    if fmt is None:
        raise FileRejected(path, ["not a .parquet, .jsonl or .jsonl.gz file"])
    digest = sha256_of(path)
    if already_loaded(client, digest):
        return FileLoad(path, "skipped", seconds=laps.total())
    laps.lap("hash")
    source = _checked_source(client, path, fmt)
    before = int(client.command("SELECT count() FROM raw.order_filled"))
    laps.lap("other")
    summary, route = _load_rows(client, source, laps)
    rows_new = int(client.command("SELECT count() FROM raw.order_filled")) - before
    _record(client, digest, path, summary, rows_new)
    laps.lap("other")
    return FileLoad(
        path,
        "loaded",
        rows=summary.rows,
        rows_new=rows_new,
        seconds=laps.total(),
        version=source.version,
        route=route,
        phases=laps.seconds,
    )


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def load_directory(client: Client, directory: Path) -> IngestReport:
    """Load every new file under `directory`; a rejected file does not stop the others."""
    report = IngestReport()
    files = discover(directory)
    for index, path in enumerate(files, 1):
        try:
            result = load_file(client, path)
        except FileRejected as exc:
            log.error(
                "file rejected",
                extra={"ctx": {"file": str(path), "problems": exc.problems, "bad_rows": exc.bad_rows}},
            )
            result = FileLoad(path, "rejected", error=str(exc))
        report.files.append(result)
        log.info(
            "dataset file %s",
            result.status,
            extra={
                "ctx": {
                    "file": path.name,
                    "progress": f"{index}/{len(files)}",
                    "contract_version": result.version,
                    "rows": result.rows,
                    "rows_new": result.rows_new,
                    "route": result.route,
                    "seconds": round(result.seconds, 3),
                    "phases": result.phases or None,
                }
            },
        )
    return report
