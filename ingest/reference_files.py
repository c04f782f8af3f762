"""Load the platform's reference files from DATA_DIR into `raw`, each all-or-nothing.

The resolution map's entries live in its `resolutions` array (reading the top-level object
instead was critical bug 1), and an entry counts as resolved only when its outcome and
payouts agree; a null payout never means NO. Each file is validated in full first
(ingest/validation.py: JSON Schema plus semantic rules), and a file with any error is
rejected before anything is written. Each table is then replaced through a staging table and
an atomic EXCHANGE, so readers see the last good version or the new one, never a mix. Every
attempt, loaded or rejected, is recorded in `ops.reference_loads`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clickhouse_connect.driver.client import Client

from ingest import stage_tables, validation
from ingest.reference_contract import CONDITION_ID, is_resolved
from ingest.tables import RAW_TABLES
from pipeline.names import BACKFILL, CATEGORY_DEFINITIONS, LOOKUPS, MARKETS, RESOLUTION_MAP, UNCATEGORIZED

__all__ = [
    "BACKFILL",
    "CATEGORY_DEFINITIONS",
    "LOOKUPS",
    "MARKETS",
    "RESOLUTION_MAP",
    "UNCATEGORIZED",
    "ReferenceFileError",
    "ReferenceFileRejected",
    "ReferenceFileStillRejected",
    "ReferenceLoad",
    "is_resolved",
    "load_reference_file",
    "resolution_rows",
]

log = logging.getLogger(__name__)


class ReferenceFileError(ValueError):
    """A reference file cannot be loaded; the table keeps its previous contents."""

    def __init__(self, path: Path, where: str, reason: str):
        self.path, self.where, self.reason = path, where, reason
        super().__init__(f"{path.name}: {where}: {reason}")


class ReferenceFileRejected(ReferenceFileError):
    """Validation found errors: nothing was loaded. `report` lists every problem (up to a cap)."""

    SHOWN = 5

    def __init__(self, report: validation.Report):
        self.report = report
        first = report.errors[0]
        shown = "; ".join(f"{p.location}: [{p.rule}] {p.message}" for p in report.errors[1 : self.SHOWN])
        more = report.error_count - min(len(report.errors), self.SHOWN)
        reason = (
            f"[{first.rule}] {first.message}"
            + (f"; {shown}" if shown else "")
            + (f"; and {more} more error(s)" if more > 0 else "")
            + f" -- file rejected ({report.error_count} error(s)), previous contents kept; "
            f"see `runner.py validate {report.path}`"
        )
        super().__init__(report.path, first.location, reason)


class ReferenceFileStillRejected(ReferenceFileError):
    """The very bytes an earlier load rejected, rejected again from that load's record: a
    rejected file stays in DATA_DIR until someone replaces it, and validating a large one
    again every night would cost seconds to say the same thing."""

    def __init__(self, path: Path, rejected_at: dt.datetime, errors: int, problems: str):
        first = next((line for line in problems.splitlines() if line), "")
        first = first.removeprefix(f"{path.name}: ")
        where, _, reason = first.partition(": ")
        super().__init__(
            path,
            where or "(file)",
            f"{reason or 'see the recorded problems'} -- file rejected ({errors} error(s)) at "
            f"{rejected_at:%Y-%m-%d %H:%M} UTC and not validated again while unchanged, previous "
            f"contents kept; see `runner.py validate {path}`",
        )


@dataclass
class ReferenceLoad:
    file_name: str
    table: str | None  # None: the file is validated and recorded, not loaded into a table
    entries: int
    resolved: int | None = None
    claimed: int | None = None
    last_updated: dt.datetime | None = None
    warnings: list[str] = field(default_factory=list)
    warning_count: int = 0  # all warnings; `warnings` holds at most validation.MAX_PROBLEMS
    unchanged: bool = False  # identical to the last loaded version: not loaded again


def parse_time(value: Any, path: Path, where: str) -> dt.datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ReferenceFileError(path, where, f"expected an ISO-8601 time, got {value!r}")
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ReferenceFileError(path, where, f"{value!r} is not an ISO-8601 time") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ReferenceFileError(path, "/", f"not valid JSON: {exc}") from None


def _int_or_none(value: Any) -> int | None:
    """JSON Schema counts 1.0 as an integer; the Int64 columns want a real int."""
    return None if value is None else int(value)


def resolution_rows(path: Path, doc: Any = None) -> tuple[list[list[Any]], ReferenceLoad]:
    doc = _read_json(path) if doc is None else doc
    if not isinstance(doc, dict) or not isinstance(doc.get("resolutions"), list):
        raise ReferenceFileError(path, "/resolutions", "expected an object with a 'resolutions' array")
    rows, resolved = [], 0
    for i, entry in enumerate(doc["resolutions"]):
        where = f"/resolutions/{i}"
        if not isinstance(entry, dict):
            raise ReferenceFileError(path, where, "entry is not an object")
        cid = entry.get("condition_id")
        if not isinstance(cid, str) or not CONDITION_ID.match(cid):
            raise ReferenceFileError(path, f"{where}/condition_id", f"{cid!r} is not 0x + 64 lower-case hex")
        resolved += is_resolved(entry)
        rows.append(
            [
                cid,
                entry.get("market_id"),
                entry.get("resolved_outcome"),
                _int_or_none(entry.get("payout_yes")),
                _int_or_none(entry.get("payout_no")),
                parse_time(entry.get("resolved_at"), path, f"{where}/resolved_at"),
                entry.get("error"),
                i,
            ]
        )
    load = ReferenceLoad(
        RESOLUTION_MAP,
        "resolutions",
        len(rows),
        resolved=resolved,
        claimed=doc.get("resolved_conditions"),
        last_updated=parse_time(doc.get("last_updated"), path, "/last_updated"),
    )
    if load.claimed is not None and load.claimed != resolved:
        load.warnings.append(
            f"{path.name}: header claims resolved_conditions={load.claimed} but {resolved} "
            "entries are resolved; using the actual count"
        )
    return rows, load


def _jsonl(path: Path) -> Iterable[tuple[int, dict[str, Any]]]:
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ReferenceFileError(path, f"line {number}", f"not valid JSON: {exc}") from None
            if not isinstance(obj, dict):
                raise ReferenceFileError(path, f"line {number}", "not a JSON object")
            yield number, obj


def market_rows(
    path: Path, lines: list[tuple[int, Any]] | None = None
) -> tuple[list[list[Any]], ReferenceLoad]:
    rows = []
    for number, m in _jsonl(path) if lines is None else lines:
        where = f"line {number}"
        tokens = m.get("token_ids")
        if not (isinstance(tokens, list) and len(tokens) == 2 and all(isinstance(t, str) for t in tokens)):
            raise ReferenceFileError(path, f"{where} token_ids", "expected [yes_token, no_token] strings")
        rows.append(
            [
                m.get("condition_id"),
                str(m.get("market_id")),
                m.get("question") or "",
                m.get("category") or "",
                list(m.get("tags") or []),
                tokens,
                m.get("event_id"),
                parse_time(m.get("end_date"), path, f"{where} end_date"),
                number,
            ]
        )
    return rows, ReferenceLoad(MARKETS, "markets", len(rows))


def category_rows(path: Path, doc: Any = None) -> tuple[list[list[Any]], ReferenceLoad]:
    """Flatten the definitions into (canonical, kind, key, priority) lookup rows."""
    doc = _read_json(path) if doc is None else doc
    if not isinstance(doc, dict) or not isinstance(doc.get("categories"), list):
        raise ReferenceFileError(path, "/categories", "expected an object with a 'categories' array")
    rows = []
    for priority, cat in enumerate(doc["categories"]):
        name = cat.get("name") if isinstance(cat, dict) else None
        if not isinstance(name, str) or not name:
            raise ReferenceFileError(path, f"/categories/{priority}/name", "missing canonical name")
        rows.append([name, "category", name.lower(), priority])
        for kind, key in (("category", "categories"), ("tag", "tags")):
            for value in cat.get(key) or []:
                rows.append([name, kind, str(value).strip().lower(), priority])
    return rows, ReferenceLoad(
        CATEGORY_DEFINITIONS,
        "category_map",
        len(doc["categories"]),
        last_updated=parse_time(doc.get("last_updated"), path, "/last_updated"),
    )


def lookup_rows(
    path: Path, lines: list[tuple[int, Any]] | None = None
) -> tuple[list[list[Any]], ReferenceLoad]:
    """One row per looked-up condition; only ever called on a file that passed validation,
    which rejects the corrupt all-one-market-id shape of the real file."""
    rows = [
        [obj.get("condition_id"), obj.get("market_id"), number]
        for number, obj in (_jsonl(path) if lines is None else lines)
    ]
    return rows, ReferenceLoad(LOOKUPS, "market_id_lookups", len(rows))


def backfill_summary(path: Path, doc: Any = None) -> tuple[list[list[Any]], ReferenceLoad]:
    """The backfill report is a diagnostic with truncated sample lists: nothing downstream
    reads it, so it is validated and recorded in ops.reference_loads but not loaded."""
    doc = _read_json(path) if doc is None else doc
    lists = ("valid_backfill_mappings", "unknown_market_id_mappings", "not_found_in_local_sample")
    return [], ReferenceLoad(
        BACKFILL,
        None,
        sum(len(doc.get(k) or []) for k in lists),
        last_updated=parse_time(doc.get("generated_at"), path, "/generated_at"),
    )


def replace_table(client: Client, table: str, rows: list[list[Any]], columns: list[str]) -> None:
    """Swap `raw.<table>` for a fully written copy: readers see the old or the new, never half."""
    stage = stage_tables.stage_name(table)
    ddl = RAW_TABLES[table].replace(f"raw.{table}", stage, 1)
    client.command(ddl)
    try:
        if rows:
            client.insert(stage, rows, column_names=columns)
        client.command(f"EXCHANGE TABLES {stage} AND raw.{table}")
    finally:
        client.command(f"DROP TABLE IF EXISTS {stage}")


COLUMNS = {
    "resolutions": [
        "condition_id",
        "market_id",
        "resolved_outcome",
        "payout_yes",
        "payout_no",
        "resolved_at",
        "error",
        "entry_index",
    ],
    "markets": [
        "condition_id",
        "market_id",
        "question",
        "category",
        "tags",
        "token_ids",
        "event_id",
        "end_date",
        "line_number",
    ],
    "category_map": ["canonical", "kind", "key", "priority"],
    "market_id_lookups": ["condition_id", "market_id", "line_number"],
}
# The raw table each file replaces (None: validated and recorded only).
TABLES = {
    RESOLUTION_MAP: "resolutions",
    MARKETS: "markets",
    CATEGORY_DEFINITIONS: "category_map",
    LOOKUPS: "market_id_lookups",
    BACKFILL: None,
}
PARSERS = {
    RESOLUTION_MAP: resolution_rows,
    MARKETS: market_rows,
    CATEGORY_DEFINITIONS: category_rows,
    LOOKUPS: lookup_rows,
    BACKFILL: backfill_summary,
}
LOAD_COLUMNS = [
    "file_name",
    "sha256",
    "size_bytes",
    "entries",
    "resolved",
    "claimed",
    "last_updated",
    "loaded_at",
    "status",
    "warnings",
    "errors",
    "problems",
    "validator",
]


def _record(
    client: Client, report: validation.Report, status: str, load: ReferenceLoad | None = None
) -> None:
    """One ops.reference_loads row per attempt: what was read (hash, size, counts, the
    file's own last_updated) and whether it was loaded, so freshness and history can be
    checked later. Freshness must look at status = 'loaded' rows only."""
    last_updated = load.last_updated if load else None
    if load is None and report.last_updated:
        try:
            last_updated = parse_time(report.last_updated, report.path, "/last_updated")
        except ReferenceFileError:
            last_updated = None
    client.insert(
        "ops.reference_loads",
        [
            [
                report.path.name,
                report.sha256,
                report.size,
                load.entries if load else report.entries or 0,
                load.resolved if load else report.resolved,
                load.claimed if load else report.claimed,
                last_updated,
                dt.datetime.now(dt.UTC),
                status,
                report.warning_count,
                report.error_count,
                "\n".join(str(p) for p in report.problems()[:20]),
                validation.rules_fingerprint(),
            ]
        ],
        column_names=LOAD_COLUMNS,
    )


def unchanged_since_last_load(client: Client, path: Path, digest: str | None = None) -> ReferenceLoad | None:
    """The last successful load of this very content, when its table still holds it.

    Reference files change far less often than nightly; validating a large markets file
    costs seconds, so identical bytes are not validated and swapped in again. The stored
    record's counts and warnings are carried forward for the run summary.
    """
    digest = digest or hashlib.sha256(path.read_bytes()).hexdigest()
    rows = client.query(
        "SELECT sha256, entries, resolved, claimed, last_updated, warnings, problems "
        "FROM ops.reference_loads WHERE file_name = {f:String} AND status = 'loaded' "
        "ORDER BY loaded_at DESC LIMIT 1",
        parameters={"f": path.name},
    ).result_rows
    if not rows or rows[0][0] != digest:
        return None
    _, entries, resolved, claimed, last_updated, warning_count, problems = rows[0]
    table = TABLES.get(path.name)
    if table is not None and not client.command(f"SELECT count() FROM raw.{table}"):
        return None
    return ReferenceLoad(
        path.name,
        table,
        int(entries),
        resolved=resolved,
        claimed=claimed,
        last_updated=last_updated,
        unchanged=True,
        warnings=[w for w in (problems or "").splitlines() if w] if warning_count else [],
        warning_count=int(warning_count or 0),
    )


def rejected_before(client: Client, path: Path, digest: str) -> ReferenceFileStillRejected | None:
    """The rejection of this very content, when the file's last attempt rejected it by the
    rules in force (the same validation.rules_fingerprint); that attempt's record is written
    again, with this attempt's time, so every night's attempt stays on record."""
    found = client.query(
        "SELECT status, sha256, validator, loaded_at, errors, problems FROM ops.reference_loads "
        "WHERE file_name = {f:String} ORDER BY loaded_at DESC LIMIT 1",
        parameters={"f": path.name},
    ).result_rows
    if not found or tuple(found[0][:3]) != ("rejected", digest, validation.rules_fingerprint()):
        return None
    *_, rejected_at, errors, problems = found[0]
    columns = ", ".join(LOAD_COLUMNS)
    again = ", ".join("now64(3)" if c == "loaded_at" else c for c in LOAD_COLUMNS)
    client.command(
        f"INSERT INTO ops.reference_loads ({columns}) SELECT {again} FROM ops.reference_loads "
        "WHERE file_name = {f:String} AND loaded_at = {t:DateTime64(3)} LIMIT 1",
        parameters={"f": path.name, "t": rejected_at},
    )
    return ReferenceFileStillRejected(path, rejected_at, int(errors), problems or "")


def load_reference_file(client: Client, path: Path, force: bool = False) -> ReferenceLoad:
    """Validate `path` in full, then replace its table; a file with any error writes nothing
    but its `rejected` record and raises ReferenceFileRejected (the table keeps its rows).
    A file identical to the one last loaded is skipped unless `force`, and so is a file
    identical to the one last rejected: it raises ReferenceFileStillRejected with the
    recorded reason.

    The file is read once: the rows come from the very bytes that were validated and hashed.
    """
    if not force:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        unchanged = unchanged_since_last_load(client, path, digest)
        if unchanged is not None:
            return unchanged
        still_rejected = rejected_before(client, path, digest)
        if still_rejected is not None:
            log.error(str(still_rejected), extra={"ctx": {"file": path.name}})
            raise still_rejected
    report = validation.validate_file(path)
    if report.kind is not None and path.name not in PARSERS:
        report.error("unknown-file", f"not a loadable reference file; known: {', '.join(PARSERS)}")
    if not report.ok:
        _record(client, report, "rejected")
        rejected = ReferenceFileRejected(report)
        log.error(str(rejected), extra={"ctx": {"file": path.name}})
        raise rejected
    rows, load = PARSERS[path.name](path, report.data)
    load.warnings = [str(w) for w in report.warnings]
    load.warning_count = report.warning_count
    if load.table is not None:
        replace_table(client, load.table, rows, COLUMNS[load.table])
    _record(client, report, "loaded", load)
    for warning in load.warnings:
        log.warning(warning, extra={"ctx": {"file": path.name}})
    return load
