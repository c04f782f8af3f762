"""Load Goldsky `polymarket.order_filled` dataset files into `raw.order_filled`.

The engine parses the files (`file()` table function) into a per-file staging table of
strings; one SQL pass finds every row that breaks the contract; only a clean file is
converted and inserted. A bad file therefore loads nothing and is reported with its row
numbers, while the other files still load. A manifest of content hashes in
`ops.loaded_files` makes each file load once, and rows whose id is already stored in the
file's time window are not inserted again, so overlapping deliveries add no rows.
"""
from __future__ import annotations

import hashlib
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
STAGE_COLUMNS = REQUIRED_COLUMNS + OPTIONAL_COLUMNS

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


def _source_columns(client: Client, path: Path, fmt: str) -> list[str] | None:
    """Column names a self-describing file declares (Parquet), else None."""
    if fmt != "Parquet":
        return None
    rows = client.query(f"DESCRIBE file({_sql_str(str(path))}, 'Parquet')").result_rows
    return [r[0] for r in rows]


def _stage(client: Client, path: Path, fmt: str) -> str:
    """Parse the file with the engine into a staging table of nullable strings."""
    stage = f"raw._stage_order_filled_{uuid.uuid4().hex[:12]}"
    cols = ", ".join(f"`{c}` Nullable(String)" for c in STAGE_COLUMNS)
    client.command(
        f"CREATE TABLE {stage} (row_number UInt64, {cols}) ENGINE = MergeTree ORDER BY row_number"
    )
    select = ", ".join(f"`{c}`" for c in STAGE_COLUMNS)
    client.command(
        f"INSERT INTO {stage} SELECT _row_number + 1, {select} "
        f"FROM file({_sql_str(str(path))}, '{fmt}', {_sql_str(cols)}) "
        "SETTINGS input_format_json_read_numbers_as_strings = 1, "
        "input_format_skip_unknown_fields = 1, "
        "input_format_parquet_allow_missing_columns = 1"
    )
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


def _problems(client: Client, stage: str) -> tuple[list[str], int]:
    result = client.query(
        f"SELECT row_number, problem, count() OVER () FROM "
        f"(SELECT row_number, {_ROW_PROBLEM} AS problem FROM {stage}) "
        f"WHERE problem != '' ORDER BY row_number LIMIT {MAX_REPORTED_ERRORS}"
    ).result_rows
    if not result:
        return [], 0
    return [f"row {r[0]}: {r[1]}" for r in result], int(result[0][2])


def _insert_new_rows(client: Client, stage: str) -> int:
    """Insert the staged rows whose id is not stored yet; returns the rows inserted."""
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
            'v1'
        FROM {stage}
        WHERE id NOT IN (
            SELECT id FROM raw.order_filled
            WHERE timestamp BETWEEN {{lo:DateTime64(3, 'UTC')}} AND {{hi:DateTime64(3, 'UTC')}}
        )
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
    if declared is not None:
        missing = [c for c in REQUIRED_COLUMNS if c not in declared]
        if missing:
            raise FileRejected(path, [f"missing columns: {', '.join(missing)}"])
    try:
        stage = _stage(client, path, fmt)
    except Exception as exc:  # the engine could not parse the file at all
        raise FileRejected(path, [f"unreadable as {fmt}: {str(exc).splitlines()[0][:300]}"]) from None
    try:
        problems, bad_rows = _problems(client, stage)
        if problems:
            raise FileRejected(path, problems, bad_rows)
        rows, lo, hi = client.query(
            f"SELECT count(), min({_TS_EXPR}), max({_TS_EXPR}) FROM {stage}"
        ).result_rows[0]
        rows_new = _insert_new_rows(client, stage)
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
                    seconds=time.monotonic() - started)


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
                           "rows": result.rows, "rows_new": result.rows_new,
                           "seconds": round(result.seconds, 3)}},
        )
    return report
