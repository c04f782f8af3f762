"""Load the platform's reference files from DATA_DIR into `raw`, each all-or-nothing.

The resolution map's entries live in its `resolutions` array (reading the top-level object
instead was critical bug 1), and an entry counts as resolved only when its outcome and
payouts agree; a null payout never means NO. Each table is replaced through a staging table
and an atomic EXCHANGE, so a file that fails to parse leaves the last good version in place.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from clickhouse_connect.driver.client import Client

from ingest.tables import RAW_TABLES

log = logging.getLogger(__name__)

RESOLUTION_MAP = "expanded_resolution_map.json"
MARKETS = "markets.jsonl"
CATEGORY_DEFINITIONS = "category_definitions.json"
UNCATEGORIZED = "Uncategorized"

CONDITION_ID = re.compile(r"^0x[0-9a-f]{64}$")
PAYOUTS = {"YES": (1, 0), "NO": (0, 1)}


class ReferenceFileError(ValueError):
    """A reference file cannot be loaded; the table keeps its previous contents."""

    def __init__(self, path: Path, where: str, reason: str):
        self.path, self.where, self.reason = path, where, reason
        super().__init__(f"{path.name}: {where}: {reason}")


@dataclass
class ReferenceLoad:
    file_name: str
    table: str
    entries: int
    resolved: int | None = None
    claimed: int | None = None
    last_updated: dt.datetime | None = None
    warnings: list[str] = field(default_factory=list)


def is_resolved(entry: dict[str, Any]) -> bool:
    """Resolved means YES/NO with the matching payout pair; anything else is not resolved."""
    expected = PAYOUTS.get(entry.get("resolved_outcome"))  # type: ignore[arg-type]
    return expected is not None and (entry.get("payout_yes"), entry.get("payout_no")) == expected


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
        parsed = parsed.replace(tzinfo=dt.timezone.utc)
    return parsed.astimezone(dt.timezone.utc)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ReferenceFileError(path, "/", f"not valid JSON: {exc}") from None


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def resolution_rows(path: Path) -> tuple[list[list[Any]], ReferenceLoad]:
    doc = _read_json(path)
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
        rows.append([
            cid,
            entry.get("market_id"),
            entry.get("resolved_outcome"),
            entry.get("payout_yes"),
            entry.get("payout_no"),
            parse_time(entry.get("resolved_at"), path, f"{where}/resolved_at"),
            entry.get("error"),
            i,
        ])
    load = ReferenceLoad(RESOLUTION_MAP, "resolutions", len(rows), resolved=resolved,
                         claimed=doc.get("resolved_conditions"),
                         last_updated=parse_time(doc.get("last_updated"), path, "/last_updated"))
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


def market_rows(path: Path) -> tuple[list[list[Any]], ReferenceLoad]:
    rows = []
    for number, m in _jsonl(path):
        where = f"line {number}"
        tokens = m.get("token_ids")
        if not (isinstance(tokens, list) and len(tokens) == 2 and all(isinstance(t, str) for t in tokens)):
            raise ReferenceFileError(path, f"{where} token_ids", "expected [yes_token, no_token] strings")
        rows.append([
            m.get("condition_id"), str(m.get("market_id")), m.get("question") or "",
            m.get("category") or "", list(m.get("tags") or []), tokens, m.get("event_id"),
            parse_time(m.get("end_date"), path, f"{where} end_date"), number,
        ])
    return rows, ReferenceLoad(MARKETS, "markets", len(rows))


def category_rows(path: Path) -> tuple[list[list[Any]], ReferenceLoad]:
    """Flatten the definitions into (canonical, kind, key, priority) lookup rows."""
    doc = _read_json(path)
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
    return rows, ReferenceLoad(CATEGORY_DEFINITIONS, "category_map", len(doc["categories"]),
                               last_updated=parse_time(doc.get("last_updated"), path, "/last_updated"))


def replace_table(client: Client, table: str, rows: list[list[Any]], columns: list[str]) -> None:
    """Swap `raw.<table>` for a fully written copy: readers see the old or the new, never half."""
    stage = f"raw._stage_{table}_{uuid.uuid4().hex[:12]}"
    ddl = RAW_TABLES[table].replace(f"raw.{table}", stage, 1)
    client.command(ddl)
    try:
        if rows:
            client.insert(stage, rows, column_names=columns)
        client.command(f"EXCHANGE TABLES {stage} AND raw.{table}")
    finally:
        client.command(f"DROP TABLE IF EXISTS {stage}")


COLUMNS = {
    "resolutions": ["condition_id", "market_id", "resolved_outcome", "payout_yes", "payout_no",
                    "resolved_at", "error", "entry_index"],
    "markets": ["condition_id", "market_id", "question", "category", "tags", "token_ids",
                "event_id", "end_date", "line_number"],
    "category_map": ["canonical", "kind", "key", "priority"],
}
PARSERS = {RESOLUTION_MAP: resolution_rows, MARKETS: market_rows, CATEGORY_DEFINITIONS: category_rows}


def load_reference_file(client: Client, path: Path) -> ReferenceLoad:
    rows, load = PARSERS[path.name](path)
    replace_table(client, load.table, rows, COLUMNS[load.table])
    client.insert(
        "ops.reference_loads",
        [[path.name, _sha256(path), path.stat().st_size, load.entries, load.resolved,
          load.claimed, load.last_updated, dt.datetime.now(dt.timezone.utc)]],
        column_names=["file_name", "sha256", "size_bytes", "entries", "resolved", "claimed",
                      "last_updated", "loaded_at"],
    )
    for warning in load.warnings:
        log.warning(warning, extra={"ctx": {"file": path.name}})
    return load
