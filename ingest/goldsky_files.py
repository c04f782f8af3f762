"""Load Goldsky `polymarket.order_filled` dataset files into `raw.order_filled`.

The engine parses the files (`file()` table function) into a per-file staging table of
strings; one SQL pass finds every row that breaks the contract; only a clean file is
converted and inserted. A bad file therefore loads nothing and is reported with its row
numbers, while the other files still load. A manifest of content hashes in
`ops.loaded_files` makes each file load once, and rows whose id is already stored in the
file's time window are not inserted again, so overlapping deliveries add no rows.

Both dataset versions load: 1.1.0 (v1 exchanges: maker/taker asset ids) and 2.0.0 (v2
exchanges since 2026-04-28: the maker order's `side` and one `token_id`). The version is
told per file from its columns (a JSONL file's first line) and v2 rows are normalized to
the v1 shape in the staging step, so validation, dedup and everything downstream is one
code path; `contract_version` records where a row came from.

The staging table, its validation and the insert of new ids are shared with the subgraph
source (ingest/subgraph.py): `create_stage`, `find_problems`, `insert_new_rows`.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import logging
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

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
REQUIRED_COLUMNS_V2 = tuple(
    c for c in REQUIRED_COLUMNS if c not in ("maker_asset_id", "taker_asset_id")
) + V2_COLUMNS
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
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


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
    described = _parse(client, f"DESCRIBE file({_sql_str(str(path))}, 'Parquet')",
                       reads_local_files(client))
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
        return None  # the engine reports the unreadable file when it stages it
    return None


def create_stage(client: Client, name: str | None = None, memory: bool = False) -> str:
    """An empty staging table of nullable strings, the shape every source stages into. A
    fixed `name` replaces what a killed run of the same source left behind; `memory` suits
    small batches (no parts to write), MergeTree a whole file of any size."""
    stage = name or f"raw._stage_order_filled_{uuid.uuid4().hex[:12]}"
    client.command(f"DROP TABLE IF EXISTS {stage}")
    cols = ", ".join(f"`{c}` Nullable(String)" for c in STAGE_COLUMNS)
    engine = "Memory" if memory else "MergeTree ORDER BY row_number"
    client.command(
        f"CREATE TABLE {stage} (row_number UInt64, {cols}, "
        f"contract_version LowCardinality(String) DEFAULT 'v1') ENGINE = {engine}"
    )
    return stage


# v2 side -> 0 (BUY) / 1 (SELL) / -1 (anything else). The dataset's UInt8 arrives as '0'/'1'.
_SIDE_EXPR = "multiIf(upper(trim(side)) IN ('0', 'BUY'), 0, upper(trim(side)) IN ('1', 'SELL'), 1, -1)"


def _stage(client: Client, path: Path, fmt: str, version: str = "v1") -> str:
    """Parse the file with the engine into a staging table of nullable strings; a v2 file's
    side/token_id become the v1 asset pair here (BUY: maker gives "0", SELL: the reverse)."""
    stage = create_stage(client)
    file_cols = REQUIRED_BY_VERSION[version] + OPTIONAL_COLUMNS
    structure = ", ".join(f"`{c}` Nullable(String)" for c in file_cols)
    select = {c: f"`{c}`" for c in file_cols}
    if version == "v2":
        select["maker_asset_id"] = f"multiIf({_SIDE_EXPR} = 0, '0', {_SIDE_EXPR} = 1, token_id, NULL)"
        select["taker_asset_id"] = f"multiIf({_SIDE_EXPR} = 0, token_id, {_SIDE_EXPR} = 1, '0', NULL)"
    names = list(select)
    columns = ["row_number", *names, "contract_version"]
    parse_sql = (
        f"SELECT _row_number + 1 AS row_number, "
        + ", ".join(f"{expr} AS `{name}`" for name, expr in select.items())
        + f", '{version}' AS contract_version "
        f"FROM file({_sql_str(str(path))}, '{fmt}', {_sql_str(structure)}) "
        "SETTINGS input_format_json_read_numbers_as_strings = 1, "
        "input_format_skip_unknown_fields = 1, "
        "input_format_parquet_allow_missing_columns = 1"
    )
    try:
        if reads_local_files(client):  # the engine reads the file itself: one INSERT ... SELECT
            client.command(f"INSERT INTO {stage} ({', '.join(f'`{c}`' for c in columns)}) {parse_sql}")
        else:
            client.insert_arrow(stage, _local_arrow(parse_sql))
    except Exception:  # an unparseable file must not leave its staging table behind
        client.command(f"DROP TABLE IF EXISTS {stage}")
        raise
    return stage


# One expression that names the first broken rule of a staged row, or '' when it is clean.
_TS_EXPR = (
    "if(match(timestamp, '^[0-9]+$'), "
    "if(toUInt64(timestamp) > 100000000000, "
    "fromUnixTimestamp64Milli(toInt64(timestamp), 'UTC'), "
    "toDateTime64(toUInt64(timestamp), 3, 'UTC')), "
    "parseDateTime64BestEffortOrNull(timestamp, 3, 'UTC'))"
)
_ROW_PROBLEM = (
    "multiIf("
    # v2 rows first: their asset pair is derived from side/token_id, so name those fields
    + "".join(f"contract_version = 'v2' AND `{c}` IS NULL, 'field {c} is missing', " for c in V2_COLUMNS)
    + f"contract_version = 'v2' AND {_SIDE_EXPR} = -1, "
    "concat('side ', side, ' is not 0 (BUY) or 1 (SELL)'), "
    "contract_version = 'v2' AND NOT match(token_id, '^[0-9]{1,78}$'), "
    "concat('token_id ', token_id, ' is not a decimal token id'), "
    + "".join(f"`{c}` IS NULL, 'field {c} is missing', " for c in REQUIRED_COLUMNS)
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
    + "'')"
)


def find_problems(client: Client, stage: str, limit: int = MAX_REPORTED_ERRORS) -> tuple[list[str], int]:
    """The first `limit` broken rows of a staging table as 'row N: why', and how many in all."""
    result = client.query(
        f"SELECT row_number, problem, count() OVER () FROM "
        f"(SELECT row_number, {_ROW_PROBLEM} AS problem FROM {stage}) "
        f"WHERE problem != '' ORDER BY row_number LIMIT {int(limit)}"
    ).result_rows
    if not result:
        return [], 0
    return [f"row {r[0]}: {r[1]}" for r in result], int(result[0][2])


def insert_new_rows(client: Client, stage: str) -> int:
    """Insert the staged (validated) rows whose id is not stored yet, each id once; returns
    the rows inserted. Every source goes through here, so a re-delivered or re-fetched
    event never becomes a second row. An event's id fixes its timestamp, so looking for
    stored ids inside the batch's time window (partition pruning) is enough."""
    lo, hi, n = client.query(
        f"SELECT min({_TS_EXPR}), max({_TS_EXPR}), count() FROM {stage}"
    ).result_rows[0]
    if n == 0:
        return 0
    before = client.command("SELECT count() FROM raw.order_filled")
    client.command(
        f"""
        INSERT INTO raw.order_filled
        SELECT
            id,
            {_TS_EXPR},
            lower(transaction_hash),
            lower(order_hash),
            lower(maker),
            lower(taker),
            maker_asset_id,
            taker_asset_id,
            toUInt64(maker_amount_filled),
            toUInt64(taker_amount_filled),
            toUInt64(ifNull(fee, '0')),
            toUInt64(ifNull(block_number, '0')),
            contract_version
        FROM {stage}
        WHERE id NOT IN (
            SELECT id FROM raw.order_filled
            WHERE timestamp BETWEEN {{lo:DateTime64(3, 'UTC')}} AND {{hi:DateTime64(3, 'UTC')}}
        )
        ORDER BY row_number
        LIMIT 1 BY id
        SETTINGS max_partitions_per_insert_block = 0
        """,
        parameters={"lo": lo, "hi": hi},
    )
    return int(client.command("SELECT count() FROM raw.order_filled")) - int(before)


def already_loaded(client: Client, sha256: str) -> bool:
    return bool(
        client.command(
            "SELECT count() FROM ops.loaded_files WHERE sha256 = {h:String}",
            parameters={"h": sha256},
        )
    )


def load_file(client: Client, path: Path) -> FileLoad:
    """Load one file, all or nothing. Raises FileRejected when the file breaks the contract."""
    started = time.monotonic()
    fmt = file_format(path)
    if fmt is None:
        raise FileRejected(path, ["not a .parquet, .jsonl or .jsonl.gz file"])
    digest = sha256_of(path)
    if already_loaded(client, digest):
        return FileLoad(path, "skipped", seconds=time.monotonic() - started)
    declared = _source_columns(client, path, fmt)
    if declared is None:
        declared = _first_line_keys(path)
        version = dataset_version(declared or [])
    else:
        version = dataset_version(declared)
        missing = [c for c in REQUIRED_BY_VERSION[version] if c not in declared]
        if missing:
            raise FileRejected(path, [f"missing columns: {', '.join(missing)}"])
    try:
        stage = _stage(client, path, fmt, version)
    except Exception as exc:  # the engine could not parse the file at all
        raise FileRejected(path, [f"unreadable as {fmt}: {str(exc).splitlines()[0][:300]}"]) from None
    try:
        problems, bad_rows = find_problems(client, stage)
        if problems:
            raise FileRejected(path, problems, bad_rows)
        rows, lo, hi = client.query(
            f"SELECT count(), min({_TS_EXPR}), max({_TS_EXPR}) FROM {stage}"
        ).result_rows[0]
        rows_new = insert_new_rows(client, stage)
    finally:
        client.command(f"DROP TABLE IF EXISTS {stage}")
    client.insert(
        "ops.loaded_files",
        [[digest, path.name, str(path), path.stat().st_size, rows, rows_new, lo, hi, _now()]],
        column_names=[
            "sha256", "file_name", "path", "size_bytes", "rows", "rows_new",
            "min_ts", "max_ts", "loaded_at",
        ],
    )
    return FileLoad(path, "loaded", rows=int(rows), rows_new=rows_new,
                    seconds=time.monotonic() - started, version=version)


def _now():
    import datetime as dt

    return dt.datetime.now(dt.timezone.utc)


def load_directory(client: Client, directory: Path) -> IngestReport:
    """Load every new file under `directory`; a rejected file does not stop the others."""
    report = IngestReport()
    files = discover(directory)
    for index, path in enumerate(files, 1):
        try:
            result = load_file(client, path)
        except FileRejected as exc:
            log.error("file rejected", extra={"ctx": {"file": str(path), "problems": exc.problems,
                                                      "bad_rows": exc.bad_rows}})
            result = FileLoad(path, "rejected", error=str(exc))
        report.files.append(result)
        log.info(
            "dataset file %s", result.status,
            extra={"ctx": {"file": path.name, "progress": f"{index}/{len(files)}",
                           "contract_version": result.version,
                           "rows": result.rows, "rows_new": result.rows_new,
                           "seconds": round(result.seconds, 3)}},
        )
    return report
