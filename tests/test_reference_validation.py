"""Reference-file validation: schemas, semantic rules, the malformed inputs, the CLI.

Every malformed input is checked twice: validation names its specific error (file, location,
rule), and loading it into a warehouse that already holds a good version raises, writes
nothing and leaves the good rows in place (the module's warehouse is loaded once; each test
opens and closes its own client, as chDB requires).
"""

from __future__ import annotations

import copy
import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

import runner
from ingest import reference_files as rf
from ingest import sample_data, validate_cli
from ingest import validation as v
from ingest.reference_contract import RESOLUTION_PAYOUTS
from ingest.tables import ensure_tables
from pipeline import warehouse
from tests.support.factories import CATEGORIES, condition, market
from tests.support.settings import make_settings

FETCHED = "2025-10-26T21:00:00.000Z"


# --------------------------------------------------------------------------------------
# good files, in the real files' shapes (our own ids, not the real ones)
# --------------------------------------------------------------------------------------


def map_entry(
    n: int, outcome: str | None, *, market_id: str | None = None, resolved_at: str | None = FETCHED
) -> dict[str, Any]:
    """An entry as the real map writes it: YES/NO with a 1/0 pair, null while unresolved,
    `market_id: "unknown"` plus `error` when the producer found no market."""
    if market_id == "unknown":
        return {
            "condition_id": condition(n),
            "market_id": "unknown",
            "resolved_outcome": None,
            "payout_yes": None,
            "payout_no": None,
            "resolved_at": None,
            "error": "No market_id available",
        }
    pair = RESOLUTION_PAYOUTS[outcome] if outcome else (None, None)
    return {
        "condition_id": condition(n),
        "market_id": market_id or str(500000 + n),
        "resolved_outcome": outcome,
        "payout_yes": pair[0],
        "payout_no": pair[1],
        "resolved_at": resolved_at if outcome else None,
    }


def good_map() -> dict[str, Any]:
    entries = [
        map_entry(1, "YES"),
        map_entry(2, "NO"),
        map_entry(3, "NO", resolved_at=None),
        map_entry(4, "YES"),
        map_entry(5, None),
        map_entry(6, None, market_id="unknown"),
    ]
    return {
        "total_conditions": 6,
        "resolved_conditions": 4,
        "last_updated": "2025-10-29T18:00:00.000Z",
        "resolutions": entries,
    }


def good_markets() -> list[dict[str, Any]]:
    return [
        market(n, category=c, tags=t)
        for n, c, t in (
            (1, "Politics", ["elections"]),
            (2, "", ["bitcoin"]),
            (3, "Sports", []),
            (4, "NBA", ["nba"]),
        )
    ]


def good_lookups() -> list[dict[str, Any]]:
    return [{"condition_id": condition(n), "market_id": str(500000 + n)} for n in (1, 2, 3, 4)] + [
        {"condition_id": condition(9), "market_id": None}
    ]


def good_backfill() -> dict[str, Any]:
    return {
        "generated_at": "2025-10-27T18:30:00.000Z",
        "summary": {
            "total_conditions_missing_market_id": 1000,
            "num_with_valid_market_id": 40,
            "num_with_unknown_or_empty": 160,
            "num_not_found_in_local": 800,
            "num_remaining_needing_external_lookup": 960,
            "pct_remaining_needing_external_lookup": "96.00",
            "valid_recovery_rate_pct": "4.00",
            "total_trades_affected": 2109,
            "total_trades": 2455,
            "trades_missing_pct": "85.91",
        },
        "valid_backfill_mappings": [
            {"condition_id": condition(20), "market_id": "600020", "source": "markets_api"}
        ],
        "unknown_market_id_mappings": [
            {"condition_id": condition(6), "market_id": "unknown", "source": "resolution_map"}
        ],
        "not_found_in_local_sample": [condition(21), condition(22)],
    }


def as_json(doc: Any) -> bytes:
    return (json.dumps(doc, indent=2) + "\n").encode()


def as_jsonl(rows: list[Any], sep: str = "\n") -> bytes:
    return "".join(json.dumps(r, separators=(",", ":")) + sep for r in rows).encode()


GOOD: dict[str, Callable[[], bytes]] = {
    rf.RESOLUTION_MAP: lambda: as_json(good_map()),
    rf.MARKETS: lambda: as_jsonl(good_markets()),
    rf.CATEGORY_DEFINITIONS: lambda: as_json(CATEGORIES),
    rf.LOOKUPS: lambda: as_jsonl(good_lookups()),
    rf.BACKFILL: lambda: as_json(good_backfill()),
}
TABLES = {
    rf.RESOLUTION_MAP: "raw.resolutions",
    rf.MARKETS: "raw.markets",
    rf.CATEGORY_DEFINITIONS: "raw.category_map",
    rf.LOOKUPS: "raw.market_id_lookups",
    rf.BACKFILL: None,
}


def check(name: str, data: bytes) -> v.Report:
    """Validate `data` as a file called `name` (without touching the disk)."""
    return v.validate_bytes(Path(name), data, v.kind_of(Path(name)) or name)


def rules(report: v.Report) -> list[tuple[str, str]]:
    return [(p.rule, p.location) for p in report.problems()]


# --------------------------------------------------------------------------------------
# malformed inputs
# --------------------------------------------------------------------------------------


def edit_map(fn: Callable[[dict], Any]) -> bytes:
    doc = good_map()
    fn(doc)
    return as_json(doc)


def edit_markets(fn: Callable[[list], Any]) -> bytes:
    rows = good_markets()
    fn(rows)
    return as_jsonl(rows)


def line_count(data: bytes) -> int:
    """Number of the line on which `data` ends (a final newline starts a new line)."""
    return data.count(b"\n") + 1


def line_of(name: str, needle: str) -> int:
    return next(i for i, line in enumerate(GOOD[name]().decode().splitlines(), 1) if needle in line)


def _set(obj: dict, key: str, value: Any) -> None:
    obj[key] = value


@dataclass(frozen=True)
class Case:
    id: str
    file: str
    content: Callable[[], bytes]
    rule: str
    location: str

    def __repr__(self) -> str:
        return self.id


RM, MK, CAT, LK, BF = rf.RESOLUTION_MAP, rf.MARKETS, rf.CATEGORY_DEFINITIONS, rf.LOOKUPS, rf.BACKFILL
UPPER = "0x" + "AB" * 32
TOO_BIG_TOKEN = str(2**256)  # 78 digits, one more than a uint256 holds

MALFORMED = [
    # --- files that are not JSON at all -----------------------------------------------
    Case("empty-file", RM, lambda: b"", "empty-file", "(file)"),
    Case("whitespace-only", RM, lambda: b" \n\n\t\n", "empty-file", "(file)"),
    Case(
        "truncated-json",
        RM,
        lambda: GOOD[RM]()[:700],
        "json-truncated",
        f"line {line_count(GOOD[RM]()[:700])}",
    ),
    Case("utf8-bom", RM, lambda: b"\xef\xbb\xbf" + GOOD[RM](), "utf8-bom", "line 1"),
    Case(
        "invalid-utf8",
        RM,
        lambda: GOOD[RM]().replace(b"No market_id", b"No m\xe4rket_id"),
        "invalid-utf8",
        f"line {line_of(RM, 'No market_id')}",
    ),
    Case(
        "trailing-garbage-json",
        RM,
        lambda: GOOD[RM]() + b"garbage\n",
        "json-syntax",
        f"line {line_count(GOOD[RM]())}",
    ),
    Case(
        "nan",
        RM,
        lambda: edit_map(lambda d: _set(d["resolutions"][0], "payout_yes", float("nan"))),
        "non-finite-number",
        "/resolutions/0/payout_yes",
    ),
    Case(
        "infinity",
        RM,
        lambda: edit_map(lambda d: _set(d, "total_conditions", float("inf"))),
        "non-finite-number",
        "/total_conditions",
    ),
    Case(
        "float-overflow",
        RM,
        lambda: GOOD[RM]().replace(b'"total_conditions": 6', b'"total_conditions": 1e400'),
        "number-too-large",
        "/total_conditions",
    ),
    Case(
        "huge-integer",
        RM,
        lambda: GOOD[RM]().replace(b'"payout_yes": 1', b'"payout_yes": ' + b"9" * 500, 1),
        "number-too-large",
        "/resolutions/0/payout_yes",
    ),
    Case(
        "duplicate-key",
        RM,
        lambda: GOOD[RM]().replace(b'"market_id": "500001",', b'"market_id": "500001", "market_id": "7",'),
        "duplicate-key",
        "/resolutions/0",
    ),
    # --- wrong shape ----------------------------------------------------------------------
    Case("top-level-array", RM, lambda: as_json(good_map()["resolutions"]), "schema:type", "(root)"),
    Case(
        "missing-resolutions",
        RM,
        lambda: edit_map(lambda d: d.pop("resolutions")),
        "schema:required",
        "(root)",
    ),
    Case(
        "resolutions-not-array",
        RM,
        lambda: edit_map(lambda d: _set(d, "resolutions", {"0": d["resolutions"][0]})),
        "schema:type",
        "/resolutions",
    ),
    Case(
        "resolutions-empty",
        RM,
        lambda: edit_map(lambda d: _set(d, "resolutions", [])),
        "schema:minItems",
        "/resolutions",
    ),
    Case(
        "payout-as-string",
        RM,
        lambda: edit_map(lambda d: _set(d["resolutions"][1], "payout_no", "1")),
        "schema:type",
        "/resolutions/1/payout_no",
    ),
    Case(
        "market-id-as-number",
        RM,
        lambda: edit_map(lambda d: _set(d["resolutions"][0], "market_id", 500001)),
        "schema:type",
        "/resolutions/0/market_id",
    ),
    Case(
        "upper-case-hex",
        RM,
        lambda: edit_map(lambda d: _set(d["resolutions"][2], "condition_id", UPPER)),
        "schema:pattern",
        "/resolutions/2/condition_id",
    ),
    Case(
        "short-hex",
        RM,
        lambda: edit_map(lambda d: _set(d["resolutions"][0], "condition_id", condition(1)[:-1])),
        "schema:pattern",
        "/resolutions/0/condition_id",
    ),
    Case(
        "lower-case-outcome",
        RM,
        lambda: edit_map(lambda d: _set(d["resolutions"][0], "resolved_outcome", "yes")),
        "schema:enum",
        "/resolutions/0/resolved_outcome",
    ),
    Case(
        "old-outcome-field",
        RM,
        lambda: edit_map(
            lambda d: _set(d["resolutions"][0], "outcome", d["resolutions"][0].pop("resolved_outcome"))
        ),
        "schema:required",
        "/resolutions/0",
    ),
    Case(
        "header-count-too-large",
        RM,
        lambda: edit_map(lambda d: _set(d, "resolved_conditions", 10**30)),
        "schema:maximum",
        "/resolved_conditions",
    ),
    Case(
        "payout-out-of-range",
        RM,
        lambda: edit_map(lambda d: _set(d["resolutions"][0], "payout_yes", 2)),
        "schema:maximum",
        "/resolutions/0/payout_yes",
    ),
    Case(
        "time-not-rfc3339",
        RM,
        lambda: edit_map(lambda d: _set(d["resolutions"][0], "resolved_at", "yesterday")),
        "schema:format",
        "/resolutions/0/resolved_at",
    ),
    Case(
        "time-without-offset",
        RM,
        lambda: edit_map(lambda d: _set(d, "last_updated", "2025-10-29T18:00:00")),
        "schema:format",
        "/last_updated",
    ),
    # --- semantic rules ------------------------------------------------------------------
    Case(
        "duplicate-condition-id",
        RM,
        lambda: edit_map(lambda d: d["resolutions"].append(copy.deepcopy(d["resolutions"][1]))),
        "duplicate-condition-id",
        "/resolutions/6/condition_id",
    ),
    Case(
        "payouts-contradict-outcome",
        RM,
        lambda: edit_map(lambda d: d["resolutions"][0].update(payout_yes=0, payout_no=1)),
        "payout-mismatch",
        "/resolutions/0",
    ),
    Case(
        "null-payout-with-no",
        RM,
        lambda: edit_map(lambda d: _set(d["resolutions"][1], "payout_yes", None)),
        "payout-mismatch",
        "/resolutions/1",
    ),
    Case(
        "fifty-fifty-with-a-winner's-payouts",
        RM,
        lambda: edit_map(lambda d: _set(d["resolutions"][0], "resolved_outcome", "50-50")),
        "payout-mismatch",
        "/resolutions/0",
    ),
    Case(
        "fifty-fifty-with-null-payouts",
        RM,
        lambda: edit_map(lambda d: _set(d["resolutions"][4], "resolved_outcome", "50-50")),
        "payout-mismatch",
        "/resolutions/4",
    ),
    Case(
        "fifty-fifty-spelled-otherwise",
        RM,
        lambda: edit_map(lambda d: d["resolutions"][0].update(resolved_outcome="50/50", payout_no=1)),
        "schema:enum",
        "/resolutions/0/resolved_outcome",
    ),
    Case(
        "split-payouts-claimed-as-yes",
        RM,
        lambda: edit_map(lambda d: d["resolutions"][0].update(payout_no=1)),
        "payout-mismatch",
        "/resolutions/0",
    ),
    Case(
        "payouts-without-outcome",
        RM,
        lambda: edit_map(lambda d: d["resolutions"][4].update(payout_yes=0, payout_no=1)),
        "payout-mismatch",
        "/resolutions/4",
    ),
    # --- markets.jsonl -------------------------------------------------------------------
    Case("markets-empty", MK, lambda: b"", "empty-file", "(file)"),
    Case("markets-blank-line", MK, lambda: GOOD[MK]().replace(b"\n", b"\n\n", 1), "blank-line", "line 2"),
    Case(
        "markets-trailing-garbage",
        MK,
        lambda: GOOD[MK]().replace(b"}\n", b"} xyz\n", 2).replace(b"} xyz\n", b"}\n", 1),
        "json-syntax",
        "line 2",
    ),
    Case("markets-truncated", MK, lambda: GOOD[MK]()[:-40], "json-truncated", "line 4"),
    Case("markets-bom", MK, lambda: b"\xef\xbb\xbf" + GOOD[MK](), "utf8-bom", "line 1"),
    Case(
        "markets-invalid-utf8",
        MK,
        lambda: GOOD[MK]().replace(b"thing 3", b"thing \xff3"),
        "invalid-utf8",
        "line 3",
    ),
    Case(
        "markets-not-an-object",
        MK,
        lambda: edit_markets(lambda r: _set(r, 1, [r[1]["condition_id"]])),
        "schema:type",
        "line 2 (root)",
    ),
    Case(
        "markets-one-token",
        MK,
        lambda: edit_markets(lambda r: r[0]["token_ids"].pop()),
        "schema:minItems",
        "line 1 /token_ids",
    ),
    Case(
        "markets-token-as-number",
        MK,
        lambda: edit_markets(
            lambda r: _set(r[2], "token_ids", [int(r[2]["token_ids"][0]), r[2]["token_ids"][1]])
        ),
        "schema:type",
        "line 3 /token_ids/0",
    ),
    Case(
        "markets-token-too-large",
        MK,
        lambda: edit_markets(lambda r: r[0]["token_ids"].__setitem__(1, TOO_BIG_TOKEN)),
        "token-id-too-large",
        "line 1 /token_ids/1",
    ),
    Case(
        "markets-duplicate-condition",
        MK,
        lambda: edit_markets(lambda r: _set(r[3], "condition_id", r[0]["condition_id"])),
        "duplicate-condition-id",
        "line 4 /condition_id",
    ),
    Case(
        "markets-upper-case-hex",
        MK,
        lambda: edit_markets(lambda r: _set(r[1], "condition_id", UPPER)),
        "schema:pattern",
        "line 2 /condition_id",
    ),
    Case(
        "markets-nan",
        MK,
        lambda: edit_markets(lambda r: _set(r[0], "end_date", float("nan"))),
        "non-finite-number",
        "line 1 /end_date",
    ),
    Case(
        "markets-missing-question",
        MK,
        lambda: edit_markets(lambda r: r[2].pop("question")),
        "schema:required",
        "line 3 (root)",
    ),
    # --- market_id_lookup_results.jsonl ----------------------------------------------------
    Case(
        "lookup-uniform",
        LK,
        lambda: as_jsonl([{"condition_id": condition(n), "market_id": "12"} for n in range(30)]),
        "lookup-uniform",
        "(file)",
    ),
    Case(
        "lookup-mostly-uniform",
        LK,
        lambda: as_jsonl(
            [
                {"condition_id": condition(n), "market_id": "12" if n % 3 else str(700000 + n)}
                for n in range(30)
            ]
        ),
        "lookup-uniform",
        "(file)",
    ),
    Case(
        "lookup-bad-market-id",
        LK,
        lambda: as_jsonl([*good_lookups()[:2], {"condition_id": condition(3), "market_id": "m-3"}]),
        "schema:pattern",
        "line 3 /market_id",
    ),
    Case(
        "lookup-duplicate-condition",
        LK,
        lambda: as_jsonl([*good_lookups(), good_lookups()[0]]),
        "duplicate-condition-id",
        "line 6 /condition_id",
    ),
    Case(
        "lookup-extra-field",
        LK,
        lambda: as_jsonl([dict(good_lookups()[0], error="rate limited")]),
        "schema:additionalProperties",
        "line 1 (root)",
    ),
    # --- category_definitions.json ---------------------------------------------------------
    Case(
        "categories-upper-case-key",
        CAT,
        lambda: as_json(
            {
                **CATEGORIES,
                "categories": [
                    dict(CATEGORIES["categories"][0], categories=["Politics"]),
                    *CATEGORIES["categories"][1:],
                ],
            }
        ),
        "schema:pattern",
        "/categories/0/categories/0",
    ),
    Case(
        "categories-ambiguous-tag",
        CAT,
        lambda: as_json(
            {
                **CATEGORIES,
                "categories": [
                    *CATEGORIES["categories"][:2],
                    dict(CATEGORIES["categories"][2], tags=["nba", "bitcoin"]),
                ],
            }
        ),
        "ambiguous-category-key",
        "/categories/2/tags/1",
    ),
    Case(
        "categories-duplicate-name",
        CAT,
        lambda: as_json(
            {
                **CATEGORIES,
                "categories": CATEGORIES["categories"]
                + [{"name": "Sports", "categories": ["esports"], "tags": []}],
            }
        ),
        "duplicate-category-name",
        "/categories/3/name",
    ),
    Case(
        "categories-version", CAT, lambda: as_json({**CATEGORIES, "version": 2}), "schema:const", "/version"
    ),
    # --- backfilled_market_ids.json --------------------------------------------------------
    Case(
        "backfill-pct-as-number",
        BF,
        lambda: as_json(
            {**good_backfill(), "summary": dict(good_backfill()["summary"], trades_missing_pct=85.91)}
        ),
        "schema:type",
        "/summary/trades_missing_pct",
    ),
    Case(
        "backfill-bare-hex-upper",
        BF,
        lambda: as_json({**good_backfill(), "not_found_in_local_sample": [UPPER]}),
        "schema:pattern",
        "/not_found_in_local_sample/0",
    ),
    Case(
        "backfill-condition-in-two-lists",
        BF,
        lambda: as_json({**good_backfill(), "not_found_in_local_sample": [condition(6)]}),
        "duplicate-condition-id",
        "/not_found_in_local_sample/0",
    ),
]


def test_there_are_at_least_25_distinct_malformed_cases():
    assert len(MALFORMED) >= 25
    assert len({c.id for c in MALFORMED}) == len(MALFORMED)


@pytest.mark.parametrize("case", MALFORMED, ids=lambda c: c.id)
def test_malformed_input_gives_its_specific_error(case: Case):
    report = check(case.file, case.content())
    assert report.status == "invalid"
    assert (case.rule, case.location) in [(p.rule, p.location) for p in report.errors], "\n".join(
        map(str, report.problems())
    )
    assert all(p.file == case.file for p in report.problems())
    message = next(str(p) for p in report.errors if p.rule == case.rule)
    assert message.startswith(f"{case.file}: {case.location}: [{case.rule}]")


# --------------------------------------------------------------------------------------
# a warehouse holding the good version of every file; each test opens its own client
# --------------------------------------------------------------------------------------


def snapshot(ch, name: str) -> list[tuple]:
    table = TABLES[name]
    if table is None:  # validated and recorded only: the last good load is what must not move
        return ch.query(
            "SELECT sha256 FROM ops.reference_loads WHERE file_name = {f:String} "
            "AND status = 'loaded' ORDER BY loaded_at DESC LIMIT 1",
            parameters={"f": name},
        ).result_rows
    return [tuple(r) for r in ch.query(f"SELECT * FROM {table} ORDER BY ALL").result_rows]


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    root = tmp_path_factory.mktemp("reference-validation")
    settings = make_settings(root)
    settings.data_dir.mkdir(parents=True)
    for name, content in GOOD.items():
        (settings.data_dir / name).write_bytes(content())
    with warehouse.connect(settings) as ch:
        ensure_tables(ch)
        for name in GOOD:  # markets before the lookups: dict order
            rf.load_reference_file(ch, settings.data_dir / name)
        good = {name: snapshot(ch, name) for name in GOOD}
    assert all(good[n] for n in GOOD)
    return settings, good


@pytest.mark.parametrize("case", MALFORMED, ids=lambda c: c.id)
def test_malformed_input_loads_nothing_and_keeps_the_good_rows(case: Case, loaded, tmp_path):
    settings, good = loaded
    bad = tmp_path / case.file
    bad.write_bytes(case.content())
    with warehouse.connect(settings) as ch:
        with pytest.raises(rf.ReferenceFileRejected) as info:
            rf.load_reference_file(ch, bad)
        assert (case.rule, case.location) in [(p.rule, p.location) for p in info.value.report.errors]
        assert snapshot(ch, case.file) == good[case.file]
        status, sha, errors = ch.query(
            "SELECT status, sha256, errors FROM ops.reference_loads WHERE file_name = {f:String} "
            "ORDER BY loaded_at DESC LIMIT 1",
            parameters={"f": case.file},
        ).result_rows[0]
    assert (status, sha) == ("rejected", info.value.report.sha256)
    assert errors >= 1
    assert case.file in str(info.value) and case.rule in str(info.value)


# --------------------------------------------------------------------------------------
# schemas
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(v.KINDS))
def test_schema_is_valid_2020_12_and_its_examples_validate(name: str):
    schema = json.loads((v.SCHEMA_DIR / v.KINDS[name].schema).read_text())
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)
    assert schema["examples"] and schema["description"]
    for example in schema["examples"]:
        data = as_jsonl([example]) if v.KINDS[name].jsonl else as_json(example)
        report = check(name, data)
        assert report.problems() == [], "\n".join(map(str, report.problems()))


def test_every_schema_property_has_a_description():
    def walk(node: Any, where: str):
        if isinstance(node, dict):
            for key, sub in (node.get("properties") or {}).items():
                has = "description" in sub or ("$ref" in sub and "description" in resolve(sub["$ref"]))
                assert has, f"{where}/properties/{key} has no description"
            for key, sub in node.items():
                walk(sub, f"{where}/{key}")
        elif isinstance(node, list):
            for i, sub in enumerate(node):
                walk(sub, f"{where}/{i}")

    for name, kind in v.KINDS.items():
        schema = json.loads((v.SCHEMA_DIR / kind.schema).read_text())

        def resolve(ref: str, schema=schema) -> dict:
            node = schema
            for part in ref.lstrip("#/").split("/"):
                node = node[part]
            return node

        walk({k: s for k, s in schema.items() if k != "examples"}, name)


# --------------------------------------------------------------------------------------
# the real shapes, with exactly the warnings they deserve
# --------------------------------------------------------------------------------------


def test_good_files_are_clean():
    for name, content in GOOD.items():
        report = check(name, content())
        assert report.status == "valid", (name, rules(report))


def test_map_in_the_real_shape_warns_only_about_its_overstated_header():
    doc = good_map()
    doc["resolved_conditions"] = doc["total_conditions"]  # the real header claims all are resolved
    report = check(RM, as_json(doc))
    assert rules(report) == [("header-count", "/resolved_conditions")]
    assert (report.claimed, report.resolved, report.entries) == (6, 4, 6)
    assert "claims resolved_conditions=6 but 4 conditions are resolved" in str(report.warnings[0])


def test_a_fifty_fifty_entry_is_valid_and_counts_as_resolved():
    doc = good_map()
    doc["resolutions"].append(map_entry(7, "50-50"))
    doc["total_conditions"], doc["resolved_conditions"] = 7, 5
    report = check(RM, as_json(doc))
    assert report.status == "valid", rules(report)
    assert (report.entries, report.resolved, report.claimed) == (7, 5, 5)
    assert doc["resolutions"][-1]["payout_yes"] == doc["resolutions"][-1]["payout_no"] == 1


def test_the_schema_accepts_exactly_the_outcomes_of_the_payout_rule():
    """The accepted outcomes are one rule (ingest.reference_contract.RESOLUTION_PAYOUTS):
    the schema's enum must not drift from it."""
    schema = json.loads((v.SCHEMA_DIR / v.KINDS[RM].schema).read_text())
    enum = schema["$defs"]["entry"]["properties"]["resolved_outcome"]["enum"]
    assert enum == [*RESOLUTION_PAYOUTS, None]
    assert rf.is_resolved({"resolved_outcome": "50-50", "payout_yes": 1, "payout_no": 1})
    for outcome, pair in RESOLUTION_PAYOUTS.items():
        for other in {(1, 0), (0, 1), (1, 1), (0, 0), (None, None)} - {pair}:
            entry = {"resolved_outcome": outcome, "payout_yes": other[0], "payout_no": other[1]}
            assert not rf.is_resolved(entry)


def test_header_total_that_disagrees_with_the_entries_is_a_warning():
    doc = good_map()
    doc["total_conditions"] = 2858
    assert rules(check(RM, as_json(doc))) == [("header-count", "/total_conditions")]


def test_identical_duplicates_are_errors_named_as_such_and_all_listed():
    doc = good_map()
    doc["resolutions"] += [copy.deepcopy(doc["resolutions"][0]), copy.deepcopy(doc["resolutions"][3])]
    doc["total_conditions"], doc["resolved_conditions"] = 8, 6  # what its producer counted
    report = check(RM, as_json(doc))
    assert rules(report) == [
        ("duplicate-condition-id", "/resolutions/6/condition_id"),
        ("duplicate-condition-id", "/resolutions/7/condition_id"),
        ("header-count", "/resolved_conditions"),
    ]
    assert "an identical entry" in report.errors[0].message
    assert report.resolved == 4  # distinct conditions, not entries


def test_conflicting_duplicates_say_the_values_differ():
    doc = good_map()
    twin = map_entry(1, "NO")
    doc["resolutions"].append(twin)
    report = check(RM, as_json(doc))
    assert "different values" in report.errors[0].message


def test_uniform_lookup_is_rejected_as_corrupt_without_a_warning_per_row():
    rows = [{"condition_id": condition(n), "market_id": "12"} for n in range(12)]
    report = check(LK, as_jsonl(rows))
    assert rules(report) == [("lookup-uniform", "(file)")]
    assert report.errors[0].value == '"12"' and "12 of 12 rows" in report.errors[0].message


def test_lookup_with_a_few_shared_market_ids_is_a_warning_only():
    rows = [*good_lookups(), {"condition_id": condition(30), "market_id": "500001"}]
    report = check(LK, as_jsonl(rows))
    assert report.status == "warnings"
    assert rules(report) == [("lookup-shared-market-id", "line 1 /market_id")]


def test_lookup_that_contradicts_markets_jsonl_is_reported(tmp_path):
    (tmp_path / MK).write_bytes(GOOD[MK]())
    rows = good_lookups()
    rows[1]["market_id"] = "999999"
    (tmp_path / LK).write_bytes(as_jsonl(rows))
    report = v.validate_file(tmp_path / LK)
    assert rules(report) == [("lookup-contradicts-markets", "line 2 /market_id")]
    assert "'500002'" in report.warnings[0].message
    (tmp_path / MK).unlink()  # without a markets.jsonl there is nothing to contradict
    assert v.validate_file(tmp_path / LK).status == "valid"


def test_backfill_summary_that_does_not_add_up_is_a_warning():
    doc = good_backfill()
    doc["summary"]["num_not_found_in_local"] = 700
    doc["summary"]["trades_missing_pct"] = "12.34"
    report = check(BF, as_json(doc))
    assert rules(report) == [
        ("summary-mismatch", "/summary"),
        ("summary-mismatch", "/summary/trades_missing_pct"),
    ]


def test_backfill_lists_shorter_than_their_counts_are_normal():
    doc = good_backfill()  # 1 / 1 / 2 items listed against 40 / 160 / 800 counted
    assert check(BF, as_json(doc)).status == "valid"


def test_markets_seed_shape_with_null_losing_payouts_is_valid():
    seed = [
        {
            "condition_id": condition(1),
            "market_id": "600001",
            "event_id": None,
            "question": "Will it rain in Lisbon on October 26?",
            "resolved_outcome": "NO",
            "payout_yes": None,
            "payout_no": 1,
            "resolved_at": "2025-10-26T12:00:00.000Z",
        },
        {
            "condition_id": condition(2),
            "market_id": "600002",
            "event_id": "some-event",
            "question": "Will the ceasefire hold?",
            "resolved_outcome": None,
            "payout_yes": None,
            "payout_no": None,
            "resolved_at": None,
        },
    ]
    report = check("markets_dim_seed.json", as_json(seed))
    assert report.status == "valid" and report.resolved == 1
    seed[1]["payout_yes"] = 1
    assert rules(check("markets_dim_seed.json", as_json(seed))) == [("payout-mismatch", "/1")]


def test_categories_default_other_than_uncategorized_is_a_warning():
    report = check(CAT, as_json({**CATEGORIES, "default": "Other"}))
    assert rules(report) == [("default-category", "/default")]


def test_generated_sample_files_validate_clean(tmp_path):
    sample_data.generate_reference_files(tmp_path, dt.datetime(2025, 10, 29, tzinfo=dt.UTC))
    for name in (RM, MK, CAT):
        report = v.validate_file(tmp_path / name)
        assert report.status == "valid", (name, rules(report)[:5])


# --------------------------------------------------------------------------------------
# parsing details
# --------------------------------------------------------------------------------------


def test_crlf_line_ends_are_accepted():
    assert check(MK, as_jsonl(good_markets(), sep="\r\n")).status == "valid"
    assert check(LK, as_jsonl(good_lookups(), sep="\r\n")).status == "valid"
    assert check(RM, GOOD[RM]().replace(b"\n", b"\r\n")).status == "valid"


def test_jsonl_without_a_final_newline_is_accepted():
    assert check(MK, GOOD[MK]().rstrip(b"\n")).status == "valid"


def test_all_problems_are_listed_not_only_the_first():
    rows = good_markets()
    rows[0]["condition_id"] = UPPER
    rows[2]["market_id"] = 7
    data = as_jsonl(rows).replace(b"\n", b"\n\n", 1)
    report = check(MK, data)
    assert {p.location for p in report.errors} == {"line 1 /condition_id", "line 2", "line 4 /market_id"}


def test_problem_count_is_capped_but_every_problem_counted():
    rows = [dict(m, condition_id=UPPER) for m in good_markets() * 30]
    report = check(MK, as_jsonl(rows))
    assert report.error_count == 120 and len(report.errors) == v.MAX_PROBLEMS
    assert "70 more problem(s) not listed" in v.format_report(report)


def test_jsonl_written_as_a_json_array_gets_a_hint():
    report = check(MK, json.dumps(good_markets(), indent=2).encode())
    assert "looks like a JSON array" in report.errors[0].message


def test_values_in_messages_are_short():
    doc = good_map()
    doc["resolutions"][0]["error"] = "x" * 10_000
    doc["resolutions"][0]["payout_yes"] = "1" * 10_000
    for p in check(RM, as_json(doc)).problems():
        assert len(str(p)) < 400


def test_large_file_is_validated_and_a_late_error_found():
    """About 20 MB (the real map is 0.8 MB): one bad entry at the very end is still found."""
    entries = [map_entry(n, ("YES", "NO", None)[n % 3]) for n in range(84_000)]
    entries[-1]["payout_no"] = 1
    doc = {
        "total_conditions": len(entries),
        "resolved_conditions": 56_000,
        "last_updated": "2025-10-29T18:00:00.000Z",
        "resolutions": entries,
    }
    data = as_json(doc)
    assert len(data) > 20_000_000
    report = check(RM, data)
    assert rules(report) == [("payout-mismatch", "/resolutions/83999")]


def test_kind_is_taken_from_the_file_name():
    assert v.kind_of(Path("expanded_resolution_map.excerpt.json")) == RM
    assert v.kind_of(Path("market_id_lookup_results.excerpt.jsonl")) == LK
    assert v.kind_of(Path("markets_dim_seed.excerpt.json")) == "markets_dim_seed.json"
    assert v.kind_of(Path("markets.json")) is None  # markets are JSON Lines


def test_a_file_of_no_known_name_is_reported(tmp_path):
    (tmp_path / "notes.txt").write_text("{}")
    assert rules(v.validate_file(tmp_path / "notes.txt")) == [("unknown-file", "(file)")]


def test_a_missing_path_or_a_directory_says_so(tmp_path):
    """`runner.py validate /tmp/nonexistent.json` said "no schema for this file name": the
    name mattered before the file's existence did."""
    for path in (tmp_path / MK, tmp_path / "nonexistent.json"):
        report = v.validate_file(path)
        assert rules(report) == [("not-found", "(file)")] and "no such file" in report.errors[0].message
    (tmp_path / "folder.json").mkdir()
    assert rules(v.validate_file(tmp_path / "folder.json")) == [("not-a-file", "(file)")]


# --------------------------------------------------------------------------------------
# runner.py validate
# --------------------------------------------------------------------------------------


@pytest.fixture
def files(tmp_path) -> dict[str, Path]:
    good = tmp_path / "good" / MK
    good.parent.mkdir()
    good.write_bytes(GOOD[MK]())
    warn = tmp_path / "warn" / RM
    warn.parent.mkdir()
    warn.write_bytes(as_json({**good_map(), "resolved_conditions": 6}))
    bad = tmp_path / "bad" / LK
    bad.parent.mkdir()
    bad.write_bytes(as_jsonl([{"condition_id": condition(n), "market_id": "12"} for n in range(5)]))
    return {"good": good, "warn": warn, "bad": bad}


def test_cli_exit_codes_follow_the_worst_file(files, capsys):
    assert validate_cli.main([str(files["good"])], False) == 0
    assert validate_cli.main([str(files["good"]), str(files["warn"])], False) == 1
    assert validate_cli.main([str(files["warn"]), str(files["bad"])], False) == 2
    out = capsys.readouterr().out
    assert "VALID" in out and "WARNINGS" in out and "INVALID" in out
    assert "[lookup-uniform]" in out and "/resolved_conditions  [header-count]" in out


def test_cli_json_report(files, capsys):
    assert validate_cli.main([str(files["warn"]), str(files["bad"])], True) == 2
    out = json.loads(capsys.readouterr().out)
    assert out["status"] == "invalid" and out["exit_code"] == 2
    warn, bad = out["files"]
    assert warn["status"] == "warnings" and warn["resolved"] == 4 and warn["claimed"] == 6
    assert warn["problems"][0] | {"message": None} == {
        "severity": "warning",
        "file": RM,
        "location": "/resolved_conditions",
        "line": None,
        "pointer": "/resolved_conditions",
        "rule": "header-count",
        "message": None,
        "value": "6",
    }
    assert bad["problems"][0]["rule"] == "lookup-uniform"


def test_cli_without_files_validates_data_dir(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    assert validate_cli.main([], False) == 2
    assert "no reference files" in capsys.readouterr().out
    for name in (RM, MK, CAT):
        (tmp_path / name).write_bytes(GOOD[name]())
    assert validate_cli.main([], True) == 0
    assert [Path(f["file"]).name for f in json.loads(capsys.readouterr().out)["files"]] == [RM, MK, CAT]


def test_runner_validate_subcommand(files, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("CASCADIAN_HOME", str(tmp_path / "home"))
    assert runner.main(["validate", str(files["good"])]) == 0
    assert "VALID" in capsys.readouterr().out
    assert runner.main(["validate", "--json", str(files["bad"])]) == 2
    assert json.loads(capsys.readouterr().out)["status"] == "invalid"


def test_validation_does_not_import_the_loader():
    """The loader imports the validator; the rule both need lives in ingest.reference_contract,
    so the validator never imports the loader back (not even inside a function)."""
    import ast

    def imported(module: str) -> set[str]:
        tree = ast.parse((v.SCHEMA_DIR.parent / "ingest" / f"{module}.py").read_text())
        names = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                names.add(node.module)
                names.update(f"{node.module}.{a.name}" for a in node.names)
            elif isinstance(node, ast.Import):
                names.update(a.name for a in node.names)
        return names

    assert not {"ingest.reference_files", "ingest.validation"} & imported("reference_contract")
    assert "ingest.reference_files" not in imported("validation")
    assert "ingest.validation" in imported("reference_files")
