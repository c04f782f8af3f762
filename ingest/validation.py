"""Strict validation of the reference files: the JSON Schemas in `schemas/` plus the rules a
schema cannot express.

Why this exists: the platform's reference files were wrong for weeks without anyone noticing
(a header that overstates its resolved count, a lookup file whose 15,733 rows all point to
market "12", entries read from the wrong place). Every fault must be loud and harmless: each
problem names the file, the line (JSON Lines) or JSON pointer (JSON), the rule and the value;
all problems are listed up to a cap, not only the first. Errors reject the file (the loader
writes nothing); warnings are carried into the run summary.

Parsing is stricter than Python's `json`: NaN and Infinity (which `json` accepts), integers
too long to be numbers, repeated keys in one object, a UTF-8 byte-order mark, blank lines in
JSON Lines and invalid UTF-8 are all reported. CRLF line ends are accepted.
"""

from __future__ import annotations

import codecs
import datetime as dt
import hashlib
import json
import math
import re
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema_rs

from ingest.reference_contract import RESOLUTION_PAYOUTS, is_resolved
from pipeline.config import PROJECT_ROOT
from pipeline.names import (
    BACKFILL,
    CATEGORY_DEFINITIONS,
    LOOKUPS,
    MARKETS,
    MARKETS_SEED,
    RESOLUTION_MAP,
    UNCATEGORIZED,
)

SCHEMA_DIR = PROJECT_ROOT / "schemas"

MAX_PROBLEMS = 50  # per severity; the rest are counted, not listed
MAX_BYTES = 256 * 1024 * 1024  # a mistaken multi-GB file must not exhaust memory
MAX_INT_DIGITS = 100  # longer integers are reported rather than parsed
UNIFORM_SHARE = 0.5  # a lookup where one market id covers more rows is corrupt
UNIFORM_MIN_ROWS = 3
UINT256_MAX = 2**256 - 1
VALUE_WIDTH = 80

ERROR, WARNING = "error", "warning"


# --------------------------------------------------------------------------------------
# problems and reports
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """One finding. `line` is set for JSON Lines (and for JSON syntax errors), `pointer` is
    an RFC 6901 JSON pointer into the document (or into the line's object)."""

    severity: str
    file: str
    rule: str
    message: str
    line: int | None = None
    pointer: str | None = None
    value: str | None = None

    @property
    def location(self) -> str:
        parts = [f"line {self.line}"] if self.line is not None else []
        if self.pointer is not None:
            parts.append(self.pointer or "(root)")
        return " ".join(parts) or "(file)"

    def __str__(self) -> str:
        shown = f" (value: {self.value})" if self.value is not None else ""
        return f"{self.file}: {self.location}: [{self.rule}] {self.message}{shown}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "severity": self.severity,
            "file": self.file,
            "location": self.location,
            "line": self.line,
            "pointer": self.pointer,
            "rule": self.rule,
            "message": self.message,
            "value": self.value,
        }


@dataclass
class Report:
    """What validating one file found, plus what the loader needs from the same read:
    the parsed data (so the file is parsed once), its hash and size, and entry counts."""

    path: Path
    kind: str | None
    errors: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    error_count: int = 0
    warning_count: int = 0
    size: int = 0
    sha256: str = ""
    data: Any = None  # JSON: the document; JSON Lines: [(line number, object), ...]
    entries: int | None = None
    resolved: int | None = None
    claimed: int | None = None
    last_updated: str | None = None
    bad: set[Any] = field(default_factory=set, repr=False)  # entries with shape errors

    @property
    def ok(self) -> bool:
        return self.error_count == 0

    @property
    def status(self) -> str:
        return "invalid" if self.error_count else "warnings" if self.warning_count else "valid"

    def add(
        self,
        severity: str,
        rule: str,
        message: str,
        *,
        line: int | None = None,
        pointer: str | None = None,
        value: Any = None,
        show: bool = True,
    ) -> None:
        problem = Problem(
            severity,
            self.path.name,
            rule,
            message,
            line,
            pointer,
            _show(value) if show and value is not None else None,
        )
        if severity == ERROR:
            self.error_count += 1
            if len(self.errors) < MAX_PROBLEMS:
                self.errors.append(problem)
        else:
            self.warning_count += 1
            if len(self.warnings) < MAX_PROBLEMS:
                self.warnings.append(problem)

    def error(self, rule: str, message: str, **where: Any) -> None:
        self.add(ERROR, rule, message, **where)

    def warn(self, rule: str, message: str, **where: Any) -> None:
        self.add(WARNING, rule, message, **where)

    def problems(self) -> list[Problem]:
        return self.errors + self.warnings

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": str(self.path),
            "kind": self.kind,
            "status": self.status,
            "errors": self.error_count,
            "warnings": self.warning_count,
            "size_bytes": self.size,
            "sha256": self.sha256,
            "entries": self.entries,
            "resolved": self.resolved,
            "claimed": self.claimed,
            "last_updated": self.last_updated,
            "problems": [p.to_dict() for p in self.problems()],
            "unlisted": (self.error_count - len(self.errors)) + (self.warning_count - len(self.warnings)),
        }


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=repr)
    return text if len(text) <= VALUE_WIDTH else text[: VALUE_WIDTH - 1] + "…"


def pointer(*parts: Any) -> str:
    """RFC 6901 pointer for a path of keys and indexes ("" is the whole document)."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


# --------------------------------------------------------------------------------------
# parsing: stricter than `json`
# --------------------------------------------------------------------------------------


class BadNumber:
    """Stands in for a number JSON cannot carry (NaN, ±Infinity, a float that overflows, an
    integer of absurd length) so that it is reported with its location instead of loaded."""

    __slots__ = ("literal", "reason", "rule")

    def __init__(self, literal: str, rule: str, reason: str):
        self.literal, self.rule, self.reason = literal, rule, reason

    def __repr__(self) -> str:
        return self.literal


class DuplicateKeys(dict):
    """An object in which a key occurred more than once (`json` silently keeps the last)."""

    duplicates: list[str]


class _Parser:
    """`json.loads` with hooks that mark what strict JSON forbids; `flagged` says whether
    the result must be walked for markers (most files need no walk)."""

    def __init__(self) -> None:
        self.flagged = False

    def _constant(self, literal: str) -> BadNumber:
        self.flagged = True
        return BadNumber(literal, "non-finite-number", f"{literal} is not a JSON number")

    def _float(self, literal: str) -> float | BadNumber:
        value = float(literal)
        if math.isinf(value):
            self.flagged = True
            return BadNumber(literal, "number-too-large", "number overflows a 64-bit float")
        return value

    def _int(self, literal: str) -> int | BadNumber:
        if len(literal.lstrip("-")) > MAX_INT_DIGITS:
            self.flagged = True
            return BadNumber(literal, "number-too-large", f"integer of {len(literal.lstrip('-'))} digits")
        return int(literal)

    def _object(self, pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        obj = dict(pairs)
        if len(obj) == len(pairs):
            return obj
        self.flagged = True
        marked = DuplicateKeys(obj)
        marked.duplicates = sorted(k for k, n in Counter(k for k, _ in pairs).items() if n > 1)
        return marked

    def loads(self, text: str) -> Any:
        self.flagged = False
        return json.loads(
            text,
            parse_constant=self._constant,
            parse_float=self._float,
            parse_int=self._int,
            object_pairs_hook=self._object,
        )


def _markers(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    if isinstance(value, BadNumber):
        yield path, value
    elif isinstance(value, dict):
        if isinstance(value, DuplicateKeys):
            yield path, value
        for key, item in value.items():
            yield from _markers(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _markers(item, (*path, index))


def _report_markers(report: Report, value: Any, line: int | None, root: Any) -> None:
    for path, marker in _markers(value):
        report.bad.add(root(path))
        if isinstance(marker, BadNumber):
            report.error(marker.rule, marker.reason, line=line, pointer=pointer(*path), value=marker)
        else:
            keys = ", ".join(repr(k) for k in marker.duplicates)
            report.error(
                "duplicate-key",
                f"key {keys} occurs more than once in one object "
                "(a JSON reader would silently keep only the last)",
                line=line,
                pointer=pointer(*path),
            )


def _json_error(
    report: Report, exc: json.JSONDecodeError, text: str, *, line: int | None, last: bool, hint: str = ""
) -> None:
    unterminated = exc.msg.startswith("Unterminated string") and '"' not in text[exc.pos + 1 :]
    if last and (exc.pos >= len(text.rstrip()) or unterminated):
        report.error(
            "json-truncated",
            f"{exc.msg} (column {exc.colno}): the text ends before "
            "the JSON value is complete (truncated file?)",
            line=line or exc.lineno,
        )
    elif exc.msg == "Extra data":
        report.error(
            "json-syntax",
            f"unexpected text after the JSON value at column {exc.colno}",
            line=line or exc.lineno,
            value=text[exc.pos : exc.pos + 40],
        )
    else:
        report.error("json-syntax", f"{exc.msg} (column {exc.colno}){hint}", line=line or exc.lineno)


def _invalid_utf8(report: Report, data: bytes, exc: UnicodeDecodeError, line: int | None) -> None:
    start = exc.start
    line_start = data.rfind(b"\n", 0, start) + 1
    report.error(
        "invalid-utf8",
        f"byte 0x{data[start]:02x} at column {start - line_start + 1} "
        "is not valid UTF-8 (files must be UTF-8)",
        line=line if line is not None else data.count(b"\n", 0, start) + 1,
    )


def _parse_json(report: Report, data: bytes, depth: int) -> Any:
    if data.startswith(codecs.BOM_UTF8):
        report.error(
            "utf8-bom", "the file starts with a UTF-8 byte-order mark; write UTF-8 without a BOM", line=1
        )
        data = data[len(codecs.BOM_UTF8) :]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        _invalid_utf8(report, data, exc, None)
        return None
    parser = _Parser()
    try:
        doc = parser.loads(text)
    except json.JSONDecodeError as exc:
        _json_error(report, exc, text, line=None, last=True)
        return None
    except RecursionError:
        report.error("json-too-deep", "the document is nested too deeply to read")
        return None
    if parser.flagged:
        _report_markers(report, doc, None, lambda path: path[:depth])
    return doc


def _parse_jsonl(report: Report, data: bytes) -> list[tuple[int, Any]]:
    """Parse line by line so that every bad line is reported, not only the first."""
    lines = data.split(b"\n")
    complete = lines[-1] == b""
    if complete:
        lines.pop()
    parser, rows = _Parser(), []
    for number, raw in enumerate(lines, 1):
        if number == 1 and raw.startswith(codecs.BOM_UTF8):
            report.error(
                "utf8-bom", "the file starts with a UTF-8 byte-order mark; write UTF-8 without a BOM", line=1
            )
            raw = raw[len(codecs.BOM_UTF8) :]
        if raw.endswith(b"\r"):  # CRLF line ends are accepted
            raw = raw[:-1]
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            _invalid_utf8(report, raw, exc, number)
            continue
        if not text.strip():
            report.error(
                "blank-line", "blank line: JSON Lines holds exactly one JSON value per line", line=number
            )
            continue
        try:
            obj = parser.loads(text)
        except json.JSONDecodeError as exc:
            hint = (
                " (this looks like a JSON array, not JSON Lines)"
                if number == 1 and text.lstrip().startswith("[")
                else ""
            )
            _json_error(report, exc, text, line=number, last=number == len(lines) and not complete, hint=hint)
            continue
        except RecursionError:
            report.error("json-too-deep", "the line is nested too deeply to read", line=number)
            continue
        if parser.flagged:
            _report_markers(report, obj, number, lambda path, n=number: n)
        rows.append((number, obj))
    return rows


# --------------------------------------------------------------------------------------
# JSON Schema
# --------------------------------------------------------------------------------------

_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:Z|[+-]\d{2}:\d{2})$")


def date_time_problem(value: object) -> str | None:
    """Why `value` is not a `date-time` as the warehouse stores it (RFC 3339 with an explicit
    offset, years 1970-2299), or None when it is one. Our own check: the compiled validator's
    built-in one accepts what DateTime64 cannot hold."""
    if not isinstance(value, str):
        return None
    if not _RFC3339.match(value):
        return "expected RFC 3339 with an offset, e.g. 2025-10-29T18:00:00.000Z"
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        return str(exc)
    if not 1970 <= parsed.astimezone(dt.UTC).year <= 2299:
        return "year outside 1970-2299"
    return None


@cache
def rules_fingerprint() -> str:
    """A digest of what decides a file's verdict: this module, the contract it imports and
    every kind's schema. A rejection recorded under the same fingerprint is final for the
    same bytes (ingest/reference_files.py does not validate them again); after an upgrade
    that changes a rule the fingerprint differs, and the file is judged by the new rules."""
    digest = hashlib.sha256()
    sources = [Path(__file__), Path(__file__).with_name("reference_contract.py")]
    for path in sources + sorted(SCHEMA_DIR / kind.schema for kind in KINDS.values()):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


@cache
def _schema(kind: str) -> dict[str, Any]:
    return json.loads((SCHEMA_DIR / KINDS[kind].schema).read_text(encoding="utf-8"))


@cache
def schema_validator(kind: str) -> jsonschema_rs.Validator:
    """The compiled validator of a file kind's schema (schemas/<stem>.schema.json).

    jsonschema-rs (Rust) instead of the pure-Python `jsonschema`: the same Draft 2020-12
    semantics, about fifty times faster on a 55,750-entry map (2 s -> 0.04 s)."""
    schema = _schema(kind)
    jsonschema_rs.meta.validate(schema)
    return jsonschema_rs.validator_for(
        schema, validate_formats=True, formats={"date-time": lambda v: date_time_problem(v) is None}
    )


_JSON_TYPES = (
    (bool, "boolean"),
    (int, "integer"),
    (float, "number"),
    (str, "string"),
    (list, "array"),
    (dict, "object"),
    (type(None), "null"),
)


def _type_name(value: Any) -> str:
    return next((name for cls, name in _JSON_TYPES if isinstance(value, cls)), type(value).__name__)


def _schema_value(kind: str, path: list[Any]) -> Any:
    """The keyword's value in the schema document (`path` is the error's schema path)."""
    node: Any = _schema(kind)
    for part in path:
        if isinstance(node, list):
            node = node[int(part)]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            return None
    return node


def _describe(kw: str, want: Any, got: Any, details: dict[str, Any], message: str) -> tuple[str, bool]:
    """A short message for a schema error, and whether the offending value is worth showing
    (a validator's own messages embed the whole instance, which may be megabytes)."""
    if kw == "type":
        wanted = " or ".join(want) if isinstance(want, list) else want
        return f"expected {wanted}, got {_type_name(got)}", True
    if kw == "pattern":
        return f"does not match {want}", True
    if kw == "enum":
        return f"is not one of {json.dumps(want)}", True
    if kw == "const":
        return f"must be {json.dumps(want)}", True
    if kw == "format":
        cause = date_time_problem(got) if want == "date-time" else None
        return f"is not a valid {want}" + (f": {cause}" if cause else ""), True
    if kw in ("minimum", "maximum"):
        return f"must be {'at least' if kw == 'minimum' else 'at most'} {want}", True
    if kw in ("minItems", "maxItems"):
        has = len(got) if isinstance(got, list) else "?"
        return f"must have {'at least' if kw == 'minItems' else 'at most'} {want} item(s), has {has}", False
    if kw == "minLength":
        return ("must not be empty" if want == 1 else f"must be at least {want} characters"), True
    if kw == "uniqueItems":
        return "holds the same item more than once", True
    if kw == "required":
        return f"{details.get('property')!r} is a required property", False
    if kw == "additionalProperties":
        extra = [str(x) for x in details.get("unexpected") or []]
        verb = "was" if len(extra) == 1 else "were"
        shown = ", ".join(repr(x) for x in extra[:5]) + (", ..." if len(extra) > 5 else "")
        return f"Additional properties are not allowed ({shown} {verb} unexpected)", False
    return message[:300], False


def _sanitized(value: Any, markers: set[tuple[Any, ...]], path: tuple[Any, ...] = ()) -> Any:
    """A copy without the parser's markers: a BadNumber becomes null (its path is in
    `markers`, so the schema's view of it is ignored: it is reported where it was parsed)
    and an object with repeated keys a plain dict."""
    if isinstance(value, BadNumber):
        markers.add(path)
        return None
    if isinstance(value, dict):
        return {k: _sanitized(item, markers, (*path, k)) for k, item in value.items()}
    if isinstance(value, list):
        return [_sanitized(item, markers, (*path, i)) for i, item in enumerate(value)]
    return value


def _schema_problems(
    report: Report,
    kind: str,
    instance: Any,
    *,
    line: int | None,
    root: Callable[[tuple[Any, ...]], Any],
    flagged: bool = False,
) -> None:
    """Every schema error of `instance`. `flagged`: the parser marked something in it
    (a bad number, repeated keys) that was already reported and the validator cannot read."""
    markers: set[tuple[Any, ...]] = set()
    if flagged:
        instance = _sanitized(instance, markers)
    for err in schema_validator(kind).iter_errors(instance):
        path = tuple(err.instance_path)
        if path in markers:
            continue  # already reported where it was parsed
        report.bad.add(root(path))
        schema_path = list(err.schema_path)
        message, show = _describe(
            err.kind.name,
            _schema_value(kind, schema_path),
            err.instance,
            err.kind.as_dict(),
            err.message,
        )
        report.error(
            f"schema:{err.kind.name}",
            message,
            line=line,
            pointer=pointer(*path),
            value=err.instance,
            show=show,
        )


# --------------------------------------------------------------------------------------
# semantic rules per file kind
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Context:
    """What other files say, for cross-file rules: condition id -> market id of markets.jsonl."""

    markets: Mapping[str, str] | None = None


def _check_resolution_map(report: Report, doc: Any, ctx: Context) -> None:
    if not isinstance(doc, dict) or not isinstance(doc.get("resolutions"), list):
        return
    entries = doc["resolutions"]
    report.entries = len(entries)
    report.last_updated = doc.get("last_updated") if isinstance(doc.get("last_updated"), str) else None
    claimed = doc.get("resolved_conditions")
    report.claimed = (
        claimed if isinstance(claimed, int) and ("resolved_conditions",) not in report.bad else None
    )
    seen: dict[str, int] = {}
    resolved: set[str] = set()
    skipped = 0
    for i, entry in enumerate(entries):
        if ("resolutions", i) in report.bad or not isinstance(entry, dict):
            skipped += 1
            continue
        cid = entry["condition_id"]
        if cid in seen:
            j = seen[cid]
            how = "an identical entry" if entries[j] == entry else "an entry with different values"
            report.error(
                "duplicate-condition-id",
                f"condition id already at {pointer('resolutions', j)} ({how}); condition ids must be unique",
                pointer=pointer("resolutions", i, "condition_id"),
                value=cid,
            )
        else:
            seen[cid] = i
        outcome, pair = entry["resolved_outcome"], (entry["payout_yes"], entry["payout_no"])
        expected = RESOLUTION_PAYOUTS.get(outcome) if outcome is not None else (None, None)
        if pair != expected:
            why = (
                "an unresolved entry (null outcome) must have null payouts"
                if outcome is None
                else f"{outcome} requires payout_yes={expected[0]}, payout_no={expected[1]}"
                + (" (a null payout is not 0, and never means NO)" if None in pair else "")
            )
            report.error(
                "payout-mismatch",
                f"payout pair inconsistent with the outcome: {why}",
                pointer=pointer("resolutions", i),
                value={"resolved_outcome": outcome, "payout_yes": pair[0], "payout_no": pair[1]},
            )
            skipped += 1
        if is_resolved(entry):
            resolved.add(cid)
    report.resolved = len(resolved)
    # With broken entries the count is incomplete; the file is rejected for them anyway.
    if report.claimed is not None and report.claimed != report.resolved and not skipped:
        report.warn(
            "header-count",
            f"header claims resolved_conditions={report.claimed} but "
            f"{report.resolved} conditions are resolved; the actual count is used",
            pointer="/resolved_conditions",
            value=report.claimed,
        )
    total = doc.get("total_conditions")
    if isinstance(total, int) and ("total_conditions",) not in report.bad and total != len(entries):
        report.warn(
            "header-count",
            f"header claims total_conditions={total} but the file holds "
            f"{len(entries)} entries; the actual count is used",
            pointer="/total_conditions",
            value=total,
        )


def _first_seen(
    report: Report, seen: dict[Any, int], key: Any, *, rule: str, what: str, line: int, where: str, value: Any
) -> None:
    if key in seen:
        report.error(
            rule,
            f"{what} already on line {seen[key]}; {what}s must be unique",
            line=line,
            pointer=where,
            value=value,
        )
    else:
        seen[key] = line


def _check_markets(report: Report, rows: list[tuple[int, Any]], ctx: Context) -> None:
    report.entries = len(rows)
    conditions: dict[str, int] = {}
    markets: dict[str, int] = {}
    tokens: dict[str, int] = {}
    for line, m in rows:
        if line in report.bad:
            continue
        _first_seen(
            report,
            conditions,
            m["condition_id"],
            rule="duplicate-condition-id",
            what="condition id",
            line=line,
            where="/condition_id",
            value=m["condition_id"],
        )
        _first_seen(
            report,
            markets,
            m["market_id"],
            rule="duplicate-market-id",
            what="market id",
            line=line,
            where="/market_id",
            value=m["market_id"],
        )
        yes, no = m["token_ids"]
        if yes == no:
            report.error(
                "same-yes-no-token",
                "the YES and NO token ids are the same",
                line=line,
                pointer="/token_ids",
                value=yes,
            )
        for k, token in enumerate((yes, no)):
            if int(token) > UINT256_MAX:
                report.error(
                    "token-id-too-large",
                    "token id exceeds 2^256 - 1 (uint256)",
                    line=line,
                    pointer=f"/token_ids/{k}",
                    value=token,
                )
            elif not (k == 1 and yes == no):
                _first_seen(
                    report,
                    tokens,
                    token,
                    rule="duplicate-token-id",
                    what="token id",
                    line=line,
                    where=f"/token_ids/{k}",
                    value=token,
                )


def _check_lookups(report: Report, rows: list[tuple[int, Any]], ctx: Context) -> None:
    report.entries = len(rows)
    conditions: dict[str, int] = {}
    lines_of: dict[str, list[int]] = {}
    for line, row in rows:
        if line in report.bad:
            continue
        _first_seen(
            report,
            conditions,
            row["condition_id"],
            rule="duplicate-condition-id",
            what="condition id",
            line=line,
            where="/condition_id",
            value=row["condition_id"],
        )
        mid = row["market_id"]
        if mid is not None:
            lines_of.setdefault(mid, []).append(line)
            known = (ctx.markets or {}).get(row["condition_id"])
            if known is not None and known != mid:
                report.warn(
                    "lookup-contradicts-markets",
                    f"markets.jsonl gives market id {known!r} for this condition",
                    line=line,
                    pointer="/market_id",
                    value=mid,
                )
    found = sum(len(v) for v in lines_of.values())
    uniform = None
    if found >= UNIFORM_MIN_ROWS:
        top, top_lines = max(lines_of.items(), key=lambda kv: len(kv[1]))
        if len(top_lines) / found > UNIFORM_SHARE:
            uniform = top
            report.error(
                "lookup-uniform",
                f"{len(top_lines)} of {found} rows "
                f"({100 * len(top_lines) / found:.0f} %) give the same market id: a market "
                "belongs to one condition, so the lookup is corrupt (it probably took "
                "the first answer of a query that ignored its filter)",
                value=top,
            )
    for mid, lines in lines_of.items():
        if len(lines) > 1 and mid != uniform:
            shown = ", ".join(map(str, lines[:5])) + (", …" if len(lines) > 5 else "")
            report.warn(
                "lookup-shared-market-id",
                f"market id given for {len(lines)} conditions "
                f"(lines {shown}); a market belongs to one condition",
                line=lines[0],
                pointer="/market_id",
                value=mid,
            )


def _check_categories(report: Report, doc: Any, ctx: Context) -> None:
    if not isinstance(doc, dict) or not isinstance(doc.get("categories"), list):
        return
    buckets = doc["categories"]
    report.entries = len(buckets)
    report.last_updated = doc.get("last_updated") if isinstance(doc.get("last_updated"), str) else None
    names: dict[str, int] = {}
    owner: dict[tuple[str, str], int] = {}
    for i, bucket in enumerate(buckets):
        if ("categories", i) in report.bad:
            continue
        name = bucket["name"]
        if name in names:
            report.error(
                "duplicate-category-name",
                f"bucket name already used at {pointer('categories', names[name], 'name')}",
                pointer=pointer("categories", i, "name"),
                value=name,
            )
            continue
        names[name] = i
        keys = [("categories", name.lower(), None)] + [
            (kind, key, k) for kind in ("categories", "tags") for k, key in enumerate(bucket[kind])
        ]
        for kind, key, k in keys:
            j = owner.setdefault((kind, key), i)
            if j != i:
                where = (
                    pointer("categories", i, kind, k) if k is not None else pointer("categories", i, "name")
                )
                report.error(
                    "ambiguous-category-key",
                    f"{kind[:-1] if kind == 'tags' else 'category'} "
                    f"{key!r} is also listed under {buckets[j]['name']!r} "
                    f"({pointer('categories', j)}); a raw value may map to one bucket only",
                    pointer=where,
                    value=key,
                )
    default = doc.get("default")
    if isinstance(default, str) and default != UNCATEGORIZED:
        report.warn(
            "default-category",
            f"default bucket {default!r} differs from {UNCATEGORIZED!r}, which is what the marts use",
            pointer="/default",
            value=default,
        )


def _pct_mismatch(text: str, numerator: int, denominator: int) -> bool:
    if denominator == 0:
        return False
    return abs(float(text) - 100 * numerator / denominator) > 0.0051


def _check_backfill(report: Report, doc: Any, ctx: Context) -> None:
    if not isinstance(doc, dict):
        return
    lists = ("valid_backfill_mappings", "unknown_market_id_mappings", "not_found_in_local_sample")
    report.last_updated = doc.get("generated_at") if isinstance(doc.get("generated_at"), str) else None
    report.entries = sum(len(doc[k]) for k in lists if isinstance(doc.get(k), list))
    seen: dict[str, str] = {}
    for key in lists:
        items = doc.get(key)
        if not isinstance(items, list):
            continue
        for i, item in enumerate(items):
            if (key, i) in report.bad:
                continue
            cid = item if isinstance(item, str) else item["condition_id"]
            where = pointer(key, i) if isinstance(item, str) else pointer(key, i, "condition_id")
            if cid in seen:
                report.error(
                    "duplicate-condition-id",
                    f"condition id already at {seen[cid]}; a condition appears once across the three lists",
                    pointer=where,
                    value=cid,
                )
            else:
                seen[cid] = where
    s = doc.get("summary")
    if not isinstance(s, dict) or any(k[:1] == ("summary",) for k in report.bad):
        return
    total, valid = s["total_conditions_missing_market_id"], s["num_with_valid_market_id"]
    parts = valid + s["num_with_unknown_or_empty"] + s["num_not_found_in_local"]
    if parts != total:
        report.warn(
            "summary-mismatch",
            f"valid + unknown + not found = {parts}, not total_conditions_missing_market_id = {total}",
            pointer="/summary",
            value=total,
        )
    if s["num_remaining_needing_external_lookup"] != total - valid:
        report.warn(
            "summary-mismatch",
            f"remaining should be total - valid = {total - valid}",
            pointer="/summary/num_remaining_needing_external_lookup",
            value=s["num_remaining_needing_external_lookup"],
        )
    for key, num, den in (
        ("pct_remaining_needing_external_lookup", s["num_remaining_needing_external_lookup"], total),
        ("valid_recovery_rate_pct", valid, total),
        ("trades_missing_pct", s["total_trades_affected"], s["total_trades"]),
    ):
        if _pct_mismatch(s[key], num, den):
            report.warn(
                "summary-mismatch",
                f"percentage disagrees with the counts (100 x {num} / {den} = {100 * num / den:.2f})",
                pointer=pointer("summary", key),
                value=s[key],
            )
    if s["total_trades_affected"] > s["total_trades"]:
        report.warn(
            "summary-mismatch",
            "more trades affected than trades in total",
            pointer="/summary/total_trades_affected",
            value=s["total_trades_affected"],
        )
    for key, count_key in zip(
        lists, ("num_with_valid_market_id", "num_with_unknown_or_empty", "num_not_found_in_local")
    ):
        if isinstance(doc.get(key), list) and len(doc[key]) > s[count_key]:
            report.warn(
                "list-longer-than-count",
                f"{len(doc[key])} items listed but summary.{count_key} = {s[count_key]}",
                pointer=pointer(key),
                value=s[count_key],
            )


def _check_markets_seed(report: Report, doc: Any, ctx: Context) -> None:
    if not isinstance(doc, list):
        return
    report.entries = len(doc)
    seen: dict[str, int] = {}
    resolved = 0
    for i, m in enumerate(doc):
        if (i,) in report.bad:
            continue
        cid = m["condition_id"]
        if cid in seen:
            report.error(
                "duplicate-condition-id",
                f"condition id already at {pointer(seen[cid])}",
                pointer=pointer(i, "condition_id"),
                value=cid,
            )
        else:
            seen[cid] = i
        outcome = m["resolved_outcome"]
        if outcome is None:
            ok = m["payout_yes"] is None and m["payout_no"] is None
        else:
            # the seed's shape of the payout rule: a losing payout may be null
            expected = RESOLUTION_PAYOUTS[outcome]
            ok = all(
                m[key] == 1 if pay == 1 else m[key] in (0, None)
                for key, pay in zip(("payout_yes", "payout_no"), expected)
            )
            resolved += ok
        if not ok:
            report.error(
                "payout-mismatch",
                "payouts inconsistent with the outcome (the winner's "
                "payout is 1, the loser's 0 or null; unresolved: both null)",
                pointer=pointer(i),
                value={k: m[k] for k in ("resolved_outcome", "payout_yes", "payout_no")},
            )
    report.resolved = resolved


@dataclass(frozen=True)
class Kind:
    """How one reference file is read and checked."""

    file_name: str
    schema: str
    jsonl: bool
    check: Callable[[Report, Any, Context], None]
    loaded: bool = True  # False: validated only, never loaded into the warehouse
    depth: int = 2  # JSON path length that names one entry: ("resolutions", 3) or (3,)


KINDS: dict[str, Kind] = {
    k.file_name: k
    for k in (
        Kind(RESOLUTION_MAP, "expanded_resolution_map.schema.json", False, _check_resolution_map),
        Kind(MARKETS, "markets.schema.json", True, _check_markets),
        Kind(CATEGORY_DEFINITIONS, "category_definitions.schema.json", False, _check_categories),
        Kind(LOOKUPS, "market_id_lookup_results.schema.json", True, _check_lookups),
        Kind(BACKFILL, "backfilled_market_ids.schema.json", False, _check_backfill),
        Kind(MARKETS_SEED, "markets_dim_seed.schema.json", False, _check_markets_seed, loaded=False, depth=1),
    )
}


def kind_of(path: Path) -> str | None:
    """The file kind by name: exact (`markets.jsonl`) or by stem (`markets.2025-10-29.jsonl`,
    `expanded_resolution_map.excerpt.json`) with the kind's extension."""
    if path.name in KINDS:
        return path.name
    stem = path.name.split(".", 1)[0]
    for name, kind in KINDS.items():
        if stem == name.split(".", 1)[0] and path.name.endswith(".jsonl") == kind.jsonl:
            return name
    return None


# --------------------------------------------------------------------------------------
# entry points
# --------------------------------------------------------------------------------------


def validate_bytes(path: Path, data: bytes, kind: str, ctx: Context = Context()) -> Report:
    """Validate `data` as the content of `path` (of file kind `kind`)."""
    report = Report(path=path, kind=kind, size=len(data), sha256=hashlib.sha256(data).hexdigest())
    spec = KINDS[kind]
    if not data.strip():
        report.error("empty-file", "the file is empty" if not data else "the file holds only white space")
        return report
    if spec.jsonl:
        rows = _parse_jsonl(report, data)
        for line, obj in rows:
            if line not in report.bad:
                _schema_problems(report, kind, obj, line=line, root=lambda path, n=line: n)
        report.data = rows
        spec.check(report, rows, ctx)
        return report
    doc = _parse_json(report, data, spec.depth)
    if doc is None and report.error_count:
        return report
    _schema_problems(
        report, kind, doc, line=None, root=lambda path: path[: spec.depth], flagged=bool(report.bad)
    )
    report.data = doc
    # Entry rules need the containers to have their shape; bad entries are skipped one by one.
    if () not in report.bad and not any((c,) in report.bad for c in _CONTAINERS):
        spec.check(report, doc, ctx)
    return report


# Top-level members whose own shape errors make the entry rules meaningless.
_CONTAINERS = (
    "resolutions",
    "categories",
    "summary",
    "valid_backfill_mappings",
    "unknown_market_id_mappings",
    "not_found_in_local_sample",
)


def validate_file(path: Path, ctx: Context | None = None) -> Report:
    """Read `path` once and validate it. A lookup file is cross-checked against the
    markets.jsonl beside it unless `ctx` says otherwise."""
    path = Path(path)
    kind = kind_of(path)
    if not path.is_file():  # what the path is matters before what its name says
        report = Report(path=path, kind=kind)
        if path.exists():
            report.error("not-a-file", "not a regular file (a directory?)")
        else:
            report.error("not-found", "no such file")
        return report
    if kind is None:
        report = Report(path=path, kind=None)
        report.error("unknown-file", "no schema for this file name; known: " + ", ".join(KINDS))
        return report
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            report = Report(path=path, kind=kind, size=size)
            report.error(
                "file-too-large",
                f"{size} bytes is over the {MAX_BYTES}-byte limit (ingest.validation.MAX_BYTES)",
            )
            return report
        data = path.read_bytes()
    except OSError as exc:
        report = Report(path=path, kind=kind)
        report.error("unreadable", f"cannot read the file: {exc.strerror or exc}")
        return report
    if ctx is None:
        ctx = Context(markets=markets_index(path.with_name(MARKETS))) if kind == LOOKUPS else Context()
    return validate_bytes(path, data, kind, ctx)


def markets_index(path: Path) -> dict[str, str] | None:
    """condition id -> market id from a markets.jsonl, best effort (lines that do not parse
    are skipped: the file's own validation reports them); None when there is no file."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    index: dict[str, str] = {}
    for raw in data.splitlines():
        try:
            obj = json.loads(raw)
        except ValueError:
            continue
        if (
            isinstance(obj, dict)
            and isinstance(obj.get("condition_id"), str)
            and isinstance(obj.get("market_id"), str)
        ):
            index[obj["condition_id"]] = obj["market_id"]
    return index


def format_report(report: Report) -> str:
    """A readable block: one headline, then one line per problem."""
    counts = f"{report.error_count} error(s), {report.warning_count} warning(s)"
    entries = f", {report.entries} entries" if report.entries is not None else ""
    resolved = f", {report.resolved} resolved" if report.resolved is not None else ""
    lines = [f"{report.path}: {report.status.upper()} ({counts}{entries}{resolved})"]
    for p in report.problems():
        shown = f"  value: {p.value}" if p.value is not None else ""
        lines.append(f"  {p.severity:<7} {p.location}  [{p.rule}] {p.message}{shown}")
    unlisted = report.error_count - len(report.errors) + report.warning_count - len(report.warnings)
    if unlisted:
        lines.append(f"  ... and {unlisted} more problem(s) not listed (cap {MAX_PROBLEMS} per severity)")
    return "\n".join(lines)
