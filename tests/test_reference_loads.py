"""Reference loads into the warehouse: what a good file writes, how it is recorded, the
regressions of critical bug 1, atomic replacement, and the nightly step around them.

One warehouse directory serves the module (chDB: one directory per process at a time); every
test opens and closes its own client, and loads what it checks, so order does not matter.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import pytest

from ingest import reference_files as rf
from ingest.reference_files import LOAD_COLUMNS
from ingest.tables import REFERENCE_LOADS, ensure_tables
from nightly.steps import step_load_reference
from pipeline import warehouse
from pipeline.names import OPTIONAL_REFERENCE_FILES, REFERENCE_FILES
from pipeline.steps import RunContext
from tests.support.factories import condition
from tests.support.settings import make_settings
from tests.test_reference_validation import (
    GOOD,
    as_json,
    as_jsonl,
    good_lookups,
    good_map,
    good_markets,
    map_entry,
)

UTC = dt.UTC


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("reference-loads")
    with warehouse.connect(make_settings(root)) as ch:
        ensure_tables(ch)
    return root


@pytest.fixture
def ch(root):
    with warehouse.connect(make_settings(root)) as client:
        yield client


def write(directory: Path, name: str, data: bytes) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_bytes(data)
    return path


def last_record(ch, name: str) -> dict:
    result = ch.query(
        "SELECT * FROM ops.reference_loads WHERE file_name = {f:String} ORDER BY loaded_at DESC LIMIT 1",
        parameters={"f": name},
    )
    return dict(zip(result.column_names, result.result_rows[0]))


def utc(moment: dt.datetime) -> dt.datetime:
    """The embedded client returns UTC times without their zone."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def rows(ch, sql: str) -> list[tuple]:
    return [tuple(r) for r in ch.query(sql).result_rows]


# --------------------------------------------------------------------------------------
# good loads and their records
# --------------------------------------------------------------------------------------


def test_good_map_is_loaded_and_recorded(ch, tmp_path):
    path = write(tmp_path, rf.RESOLUTION_MAP, GOOD[rf.RESOLUTION_MAP]())
    load = rf.load_reference_file(ch, path)
    assert (load.table, load.entries, load.resolved, load.claimed, load.warnings) == (
        "resolutions",
        6,
        4,
        4,
        [],
    )
    record = last_record(ch, rf.RESOLUTION_MAP)
    assert record["status"] == "loaded" and (record["warnings"], record["errors"]) == (0, 0)
    assert record["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert record["size_bytes"] == path.stat().st_size
    assert (record["entries"], record["resolved"], record["claimed"]) == (6, 4, 4)
    assert utc(record["last_updated"]) == dt.datetime(2025, 10, 29, 18, 0, tzinfo=UTC)
    assert utc(record["loaded_at"]) > dt.datetime.now(UTC) - dt.timedelta(minutes=5)


def test_markets_categories_lookups_and_backfill_load(ch, tmp_path):
    for name in (rf.MARKETS, rf.CATEGORY_DEFINITIONS, rf.LOOKUPS, rf.BACKFILL):
        write(tmp_path, name, GOOD[name]())
    loads = {
        name: rf.load_reference_file(ch, tmp_path / name)
        for name in (rf.MARKETS, rf.CATEGORY_DEFINITIONS, rf.LOOKUPS, rf.BACKFILL)
    }
    assert warehouse.count_rows(ch, "raw.markets") == 4
    assert rows(
        ch, "SELECT condition_id, market_id, line_number FROM raw.market_id_lookups ORDER BY line_number"
    ) == [(condition(n), str(500000 + n), n) for n in (1, 2, 3, 4)] + [(condition(9), None, 5)]
    assert rows(ch, "SELECT canonical FROM raw.category_map WHERE kind = 'tag' AND key = 'bitcoin'") == [
        ("Crypto / DeFi",)
    ]
    backfill = loads[rf.BACKFILL]
    assert backfill.table is None and backfill.entries == 4
    assert backfill.last_updated == dt.datetime(2025, 10, 27, 18, 30, tzinfo=UTC)
    assert last_record(ch, rf.BACKFILL)["status"] == "loaded"


def test_optional_market_fields_may_be_absent_or_null(ch, tmp_path):
    markets = good_markets()
    del markets[0]["event_id"], markets[0]["end_date"]
    markets[1]["end_date"] = None
    rf.load_reference_file(ch, write(tmp_path, rf.MARKETS, as_jsonl(markets)))
    assert rows(ch, "SELECT event_id, end_date FROM raw.markets ORDER BY line_number LIMIT 2") == [
        (None, None),
        (None, None),
    ]


def test_crlf_markets_load_like_lf(ch, tmp_path):
    rf.load_reference_file(ch, write(tmp_path / "lf", rf.MARKETS, as_jsonl(good_markets())))
    lf = rows(ch, "SELECT * FROM raw.markets ORDER BY line_number")
    load = rf.load_reference_file(
        ch, write(tmp_path / "crlf", rf.MARKETS, as_jsonl(good_markets(), sep="\r\n"))
    )
    assert load.warnings == []
    assert rows(ch, "SELECT * FROM raw.markets ORDER BY line_number") == lf


# --------------------------------------------------------------------------------------
# critical bug 1: entries from `resolutions`, the real field names, null is not NO
# --------------------------------------------------------------------------------------


def test_bug1_entries_come_from_the_resolutions_array_with_their_real_field_names(ch, tmp_path):
    doc = good_map()
    rf.load_reference_file(ch, write(tmp_path, rf.RESOLUTION_MAP, as_json(doc)))
    loaded = rows(
        ch,
        "SELECT condition_id, market_id, resolved_outcome, payout_yes, payout_no, error "
        "FROM raw.resolutions ORDER BY entry_index",
    )
    assert loaded == [
        (
            e["condition_id"],
            e["market_id"],
            e["resolved_outcome"],
            e["payout_yes"],
            e["payout_no"],
            e.get("error"),
        )
        for e in doc["resolutions"]
    ]
    # The header's keys are not entries (the old code iterated the top-level object).
    assert not {"total_conditions", "resolved_conditions", "last_updated", "resolutions"} & {
        r[0] for r in loaded
    }
    # Outcomes are read from `resolved_outcome`; the field `outcome` does not exist.
    assert rows(ch, "SELECT resolved_outcome, count() FROM raw.resolutions GROUP BY 1 ORDER BY 1") == [
        ("NO", 2),
        ("YES", 2),
        (None, 2),
    ]


def test_bug1_a_map_keyed_at_the_top_level_or_using_outcome_is_rejected(ch, tmp_path):
    rf.load_reference_file(ch, write(tmp_path / "good", rf.RESOLUTION_MAP, GOOD[rf.RESOLUTION_MAP]()))
    before = rows(ch, "SELECT * FROM raw.resolutions ORDER BY entry_index")
    keyed = {e["condition_id"]: e for e in good_map()["resolutions"]}
    with pytest.raises(rf.ReferenceFileRejected) as info:
        rf.load_reference_file(ch, write(tmp_path / "keyed", rf.RESOLUTION_MAP, as_json(keyed)))
    assert ("schema:required", "(root)") in [(p.rule, p.location) for p in info.value.report.errors]
    old_names = good_map()
    for e in old_names["resolutions"]:
        e["outcome"] = e.pop("resolved_outcome")
    with pytest.raises(rf.ReferenceFileRejected) as info:
        rf.load_reference_file(ch, write(tmp_path / "old", rf.RESOLUTION_MAP, as_json(old_names)))
    assert "'resolved_outcome' is a required property" in str(info.value)
    assert rows(ch, "SELECT * FROM raw.resolutions ORDER BY entry_index") == before


def test_null_payouts_are_unresolved_never_no(ch, tmp_path):
    doc = good_map()
    doc["resolutions"] += [map_entry(n, None) for n in (40, 41, 42)]
    doc["total_conditions"] = len(doc["resolutions"])
    load = rf.load_reference_file(ch, write(tmp_path, rf.RESOLUTION_MAP, as_json(doc)))
    assert load.resolved == 4
    unresolved = rows(
        ch,
        "SELECT resolved_outcome, payout_yes, payout_no FROM raw.resolutions "
        f"WHERE condition_id IN {tuple(condition(n) for n in (40, 41, 42))}",
    )
    assert unresolved == [(None, None, None)] * 3
    assert rows(ch, "SELECT count() FROM raw.resolutions WHERE resolved_outcome = 'NO'") == [(2,)]
    assert not rf.is_resolved({"resolved_outcome": None, "payout_yes": None, "payout_no": None})
    assert not rf.is_resolved({"resolved_outcome": "NO", "payout_yes": None, "payout_no": 1})
    assert rf.is_resolved({"resolved_outcome": "NO", "payout_yes": 0, "payout_no": 1})


def test_a_fifty_fifty_map_loads_its_split_payouts(ch, tmp_path):
    doc = good_map()
    doc["resolutions"].append(map_entry(7, "50-50"))
    doc["total_conditions"], doc["resolved_conditions"] = 7, 5
    load = rf.load_reference_file(ch, write(tmp_path, rf.RESOLUTION_MAP, as_json(doc)))
    assert (load.entries, load.resolved, load.warnings) == (7, 5, [])
    assert rows(
        ch,
        "SELECT resolved_outcome, payout_yes, payout_no, entry_index FROM raw.resolutions "
        f"WHERE condition_id = '{condition(7)}'",
    ) == [("50-50", 1, 1, 6)]
    assert last_record(ch, rf.RESOLUTION_MAP)["status"] == "loaded"


def test_header_that_overstates_resolved_loads_with_a_warning_and_the_actual_count(ch, tmp_path):
    doc = good_map()
    doc["resolved_conditions"] = 6
    load = rf.load_reference_file(ch, write(tmp_path, rf.RESOLUTION_MAP, as_json(doc)))
    assert (load.resolved, load.claimed, load.warning_count) == (4, 6, 1)
    assert "[header-count]" in load.warnings[0] and "/resolved_conditions" in load.warnings[0]
    record = last_record(ch, rf.RESOLUTION_MAP)
    assert (record["resolved"], record["claimed"], record["warnings"]) == (4, 6, 1)
    assert "header-count" in record["problems"]


# --------------------------------------------------------------------------------------
# atomic replacement
# --------------------------------------------------------------------------------------


def test_a_new_version_replaces_the_old_one_entirely(ch, tmp_path):
    rf.load_reference_file(ch, write(tmp_path / "v1", rf.RESOLUTION_MAP, GOOD[rf.RESOLUTION_MAP]()))
    v2 = {
        "total_conditions": 2,
        "resolved_conditions": 1,
        "last_updated": "2025-10-30T00:00:00.000Z",
        "resolutions": [map_entry(70, "YES"), map_entry(71, None)],
    }
    rf.load_reference_file(ch, write(tmp_path / "v2", rf.RESOLUTION_MAP, as_json(v2)))
    assert rows(ch, "SELECT condition_id FROM raw.resolutions ORDER BY entry_index") == [
        (condition(70),),
        (condition(71),),
    ]


def test_a_rejected_file_leaves_no_staging_table_and_a_rejected_record(ch, tmp_path):
    rf.load_reference_file(ch, write(tmp_path / "good", rf.LOOKUPS, GOOD[rf.LOOKUPS]()))
    before = rows(ch, "SELECT * FROM raw.market_id_lookups ORDER BY line_number")
    corrupt = as_jsonl([{"condition_id": condition(n), "market_id": "12"} for n in range(100)])
    path = write(tmp_path / "bad", rf.LOOKUPS, corrupt)
    with pytest.raises(rf.ReferenceFileRejected, match=r"lookup-uniform"):
        rf.load_reference_file(ch, path)
    assert rows(ch, "SELECT * FROM raw.market_id_lookups ORDER BY line_number") == before
    assert rows(ch, "SELECT name FROM system.tables WHERE database = 'raw' AND name LIKE '%stage%'") == []
    record = last_record(ch, rf.LOOKUPS)
    assert (record["status"], record["errors"], record["entries"]) == ("rejected", 1, 100)
    assert record["sha256"] == hashlib.sha256(corrupt).hexdigest()


def test_a_rejected_file_is_not_validated_again_until_it_changes(ch, tmp_path, monkeypatch):
    """A rejected file stays in DATA_DIR until someone replaces it, and validating a large
    one costs seconds: the same bytes are rejected again from the recorded reason, each
    attempt still recorded; changed bytes, or `force`, are validated again."""
    corrupt = as_jsonl([{"condition_id": condition(n), "market_id": "12"} for n in range(50)])
    path = write(tmp_path / "bad", rf.LOOKUPS, corrupt)
    with pytest.raises(rf.ReferenceFileRejected):
        rf.load_reference_file(ch, path)
    validated = []
    real_validate = rf.validation.validate_file
    monkeypatch.setattr(rf.validation, "validate_file", lambda p: validated.append(p) or real_validate(p))

    with pytest.raises(rf.ReferenceFileError) as again:
        rf.load_reference_file(ch, path)
    assert validated == []
    assert "lookup-uniform" in str(again.value) and "previous contents kept" in str(again.value)
    assert "not validated again" in str(again.value)
    digest = hashlib.sha256(corrupt).hexdigest()
    attempts = ch.query(
        "SELECT status, errors, entries FROM ops.reference_loads WHERE sha256 = {d:String}",
        parameters={"d": digest},
    ).result_rows
    assert [tuple(a) for a in attempts] == [("rejected", 1, 50), ("rejected", 1, 50)]

    with pytest.raises(rf.ReferenceFileRejected):
        rf.load_reference_file(ch, path, force=True)
    assert validated == [path]
    # rules changed by an upgrade: the same bytes are judged again, by the new rules
    monkeypatch.setattr(rf.validation, "rules_fingerprint", lambda: "other-rules")
    with pytest.raises(rf.ReferenceFileRejected):
        rf.load_reference_file(ch, path)
    assert validated == [path, path]
    with pytest.raises(rf.ReferenceFileStillRejected):
        rf.load_reference_file(ch, path)
    assert validated == [path, path]
    fixed = as_jsonl([{"condition_id": condition(n), "market_id": str(7000 + n)} for n in range(50)])
    assert rf.load_reference_file(ch, write(tmp_path / "bad", rf.LOOKUPS, fixed)).entries == 50
    assert validated == [path, path, path]


def test_lookup_contradicting_markets_loads_with_a_warning(ch, tmp_path):
    write(tmp_path, rf.MARKETS, GOOD[rf.MARKETS]())
    lookups = good_lookups()
    lookups[0]["market_id"] = "777777"
    load = rf.load_reference_file(ch, write(tmp_path, rf.LOOKUPS, as_jsonl(lookups)))
    assert load.warning_count == 1 and "[lookup-contradicts-markets]" in load.warnings[0]
    assert rows(ch, "SELECT market_id FROM raw.market_id_lookups WHERE line_number = 1") == [("777777",)]


def test_a_20_mb_map_loads(ch, tmp_path):
    entries = [map_entry(n, ("YES", "NO", None)[n % 3]) for n in range(80_000)]
    doc = {
        "total_conditions": len(entries),
        "resolved_conditions": 53_334,
        "last_updated": "2025-10-29T18:00:00.000Z",
        "resolutions": entries,
    }
    path = write(tmp_path, rf.RESOLUTION_MAP, as_json(doc))
    assert path.stat().st_size > 20_000_000
    load = rf.load_reference_file(ch, path)
    assert (load.entries, load.resolved, load.warnings) == (80_000, 53_334, [])
    assert warehouse.count_rows(ch, "raw.resolutions") == 80_000


# --------------------------------------------------------------------------------------
# ops.reference_loads migration and the nightly step
# --------------------------------------------------------------------------------------


def test_ensure_tables_adds_the_new_columns_to_an_old_reference_loads_table(tmp_path):
    old_ddl = (
        REFERENCE_LOADS.split("status")[0].rstrip().rstrip(",")
        + "\n)\nENGINE = MergeTree\nORDER BY (file_name, loaded_at)"
    )
    assert "warnings" not in old_ddl
    settings = make_settings(tmp_path)
    with warehouse.connect(settings) as ch:
        warehouse.ensure_databases(ch)
        ch.command(old_ddl)
        ch.insert(
            "ops.reference_loads",
            [["markets.jsonl", "ab", 1, 1, None, None, None, dt.datetime.now(UTC)]],
            column_names=LOAD_COLUMNS[:8],
        )
        ensure_tables(ch)
        ensure_tables(ch)  # idempotent
        assert rows(ch, "SELECT status, warnings, errors, problems, validator FROM ops.reference_loads") == [
            ("loaded", 0, 0, "", "")
        ]


@pytest.fixture
def step_settings(root, tmp_path):
    return make_settings(root, DATA_DIR=str(tmp_path / "data"))


def run_step(settings):
    now = dt.datetime.now(UTC)
    return step_load_reference(RunContext(settings, "test-run", "test", now))


def test_step_message_counts_in_words(step_settings):
    """A count of one takes the singular: the message said "1 reference files loaded"."""
    write(step_settings.data_dir, rf.MARKETS, GOOD[rf.MARKETS]())
    assert run_step(step_settings).message.startswith("1 reference file loaded, 0 unchanged")


def test_step_loads_the_optional_files_too(step_settings):
    assert set(OPTIONAL_REFERENCE_FILES) == {rf.LOOKUPS, rf.BACKFILL}
    for name in REFERENCE_FILES + OPTIONAL_REFERENCE_FILES:
        write(step_settings.data_dir, name, GOOD[name]())
    result = run_step(step_settings)
    assert result.status == "success" and result.warnings == []
    assert set(result.details) == set(REFERENCE_FILES + OPTIONAL_REFERENCE_FILES)


def test_step_reports_a_rejected_optional_file_as_a_warning(step_settings):
    for name in REFERENCE_FILES:
        write(step_settings.data_dir, name, GOOD[name]())
    write(
        step_settings.data_dir,
        rf.LOOKUPS,
        as_jsonl([{"condition_id": condition(n), "market_id": "12"} for n in range(20)]),
    )
    result = run_step(step_settings)
    assert result.status == "success"
    assert len(result.warnings) == 1 and rf.LOOKUPS in result.warnings[0]
    assert "lookup-uniform" in result.warnings[0] and "previous contents kept" in result.warnings[0]


def test_a_rejected_required_file_makes_the_step_partial_and_keeps_its_last_good_version(step_settings):
    doc = good_map()
    doc["resolved_conditions"] = 6
    write(step_settings.data_dir, rf.RESOLUTION_MAP, as_json(doc))
    write(step_settings.data_dir, rf.MARKETS, GOOD[rf.MARKETS]().replace(b"\n", b"\n\n", 1))
    result = run_step(step_settings)
    assert result.status == "partial"  # the build still runs, on the last good markets.jsonl
    assert "markets.jsonl: line 2: [blank-line]" in result.error
    assert any("markets.jsonl" in w and "last good version stays in use" in w for w in result.warnings)
    assert any("[header-count]" in w for w in result.warnings)
    assert result.details[rf.RESOLUTION_MAP] == {
        "entries": 6,
        "resolved": 4,
        "claimed": 6,
        "unchanged": False,
    }
    # the next night, the same bad file: the same error, from the record
    again = run_step(step_settings)
    assert again.status == "partial"
    assert "markets.jsonl: line 2: [blank-line]" in again.error and "not validated again" in again.error


def test_an_unchanged_file_is_not_loaded_again_but_keeps_its_warnings(step_settings):
    doc = good_map()
    doc["resolved_conditions"] = 7
    write(step_settings.data_dir, rf.RESOLUTION_MAP, as_json(doc))
    first = run_step(step_settings)
    again = run_step(step_settings)
    assert first.details[rf.RESOLUTION_MAP]["unchanged"] is False
    assert again.details[rf.RESOLUTION_MAP] == {"entries": 6, "resolved": 4, "claimed": 7, "unchanged": True}
    assert any("[header-count]" in w for w in again.warnings)
    # a changed file is loaded again
    doc["resolved_conditions"] = 4
    write(step_settings.data_dir, rf.RESOLUTION_MAP, as_json(doc))
    third = run_step(step_settings)
    assert third.details[rf.RESOLUTION_MAP]["unchanged"] is False
    assert not any("[header-count]" in w for w in third.warnings)
