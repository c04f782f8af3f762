"""Loading Goldsky dataset files: formats, the manifest, overlap, and all-or-nothing rejection."""

from __future__ import annotations

import datetime as dt
import logging
import re

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ingest import fill_contract, fill_store, goldsky_files
from ingest.tables import ensure_tables
from pipeline import warehouse
from tests.support.factories import fill, token, wallet, write_jsonl
from tests.support.settings import make_settings

T0 = 1764300000  # 2025-11-28 03:20:00 UTC


def _fills(start: int, n: int) -> list[dict]:
    return [
        fill(
            i,
            T0 + i,
            wallet(i % 7),
            "BUY" if i % 3 else "SELL",
            token(i % 5, i % 2),
            1_000_000 * (i + 1),
            400_000 * (i + 1),
        )
        for i in range(start, start + n)
    ]


@pytest.fixture
def ch(tmp_path):
    settings = make_settings(tmp_path)
    with warehouse.connect(settings) as client:
        ensure_tables(client)
        yield client


def _ids(ch) -> list[str]:
    return [r[0] for r in ch.query("SELECT id FROM raw.order_filled ORDER BY id").result_rows]


def test_jsonl_gz_loads_typed_rows_and_tolerates_bookkeeping_columns(ch, tmp_path):
    rows = _fills(0, 20)
    rows[0]["maker"] = rows[0]["maker"].upper().replace("0X", "0x")
    rows[1]["maker_amount_filled"] = int(rows[1]["maker_amount_filled"])  # integers are fine too
    path = write_jsonl(tmp_path / "in" / "a.jsonl.gz", rows)
    result = goldsky_files.load_file(ch, path)
    assert (result.status, result.rows, result.rows_new) == ("loaded", 20, 20)
    row = ch.query(
        "SELECT maker, timestamp, maker_amount_filled, block_number FROM raw.order_filled "
        "WHERE id = {i:String}",
        parameters={"i": rows[0]["id"]},
    ).result_rows[0]
    assert row[0] == rows[0]["maker"].lower()
    assert row[1] == dt.datetime.fromtimestamp(T0, dt.UTC).replace(tzinfo=None)
    assert row[2] == int(rows[0]["maker_amount_filled"])
    assert row[3] == rows[0]["block_number"]


def test_parquet_with_integer_amounts_and_iso_timestamps(ch, tmp_path):
    rows = _fills(0, 5)
    table = pa.table(
        {
            "id": [r["id"] for r in rows],
            "timestamp": [dt.datetime.fromtimestamp(r["timestamp"], dt.UTC).isoformat() for r in rows],
            "transaction_hash": [r["transaction_hash"] for r in rows],
            "order_hash": [r["order_hash"] for r in rows],
            "maker": [r["maker"] for r in rows],
            "taker": [r["taker"] for r in rows],
            "maker_asset_id": [r["maker_asset_id"] for r in rows],
            "taker_asset_id": [r["taker_asset_id"] for r in rows],
            "maker_amount_filled": pa.array([int(r["maker_amount_filled"]) for r in rows], pa.uint64()),
            "taker_amount_filled": pa.array([int(r["taker_amount_filled"]) for r in rows], pa.uint64()),
            "vid": list(range(5)),
        }
    )
    path = tmp_path / "a.parquet"
    pq.write_table(table, path)
    assert goldsky_files.load_file(ch, path).rows_new == 5
    assert _ids(ch) == sorted(r["id"] for r in rows)


def test_same_file_is_loaded_once_and_overlapping_files_add_no_rows(ch, tmp_path):
    first = write_jsonl(tmp_path / "in" / "day1.jsonl", _fills(0, 30))
    report = goldsky_files.load_directory(ch, tmp_path / "in")
    assert report.rows_new == 30
    again = goldsky_files.load_directory(ch, tmp_path / "in")
    assert [f.status for f in again.files] == ["skipped"]
    # a second delivery overlapping the first by 10 events
    write_jsonl(tmp_path / "in" / "day1b.jsonl", _fills(20, 20))
    report = goldsky_files.load_directory(ch, tmp_path / "in")
    loaded = [f for f in report.files if f.status == "loaded"]
    assert [(f.rows, f.rows_new) for f in loaded] == [(20, 10)]
    assert ch.command("SELECT count() FROM raw.order_filled") == 40
    assert len(set(_ids(ch))) == 40
    assert first.exists()


@pytest.mark.parametrize(
    ("breakage", "reason"),
    [
        ({"maker_amount_filled": "12.5"}, "maker_amount_filled 12.5 is not an unsigned 64-bit integer"),
        ({"taker_amount_filled": "-3"}, "taker_amount_filled -3 is not an unsigned 64-bit integer"),
        ({"maker_asset_id": "0", "taker_asset_id": "0"}, 'asset pair (0, 0) needs exactly one "0"'),
        ({"maker_asset_id": "11", "taker_asset_id": "12"}, 'asset pair (11, 12) needs exactly one "0"'),
        ({"timestamp": "yesterday"}, "timestamp yesterday is not a unix time or ISO date"),
        ({"maker": "0x123"}, "maker 0x123 is not an address"),
        ({"taker_asset_id": "12ab"}, "taker_asset_id 12ab is not a decimal token id"),
    ],
)
def test_bad_value_rejects_the_whole_file_naming_row_and_reason(ch, tmp_path, breakage, reason):
    rows = _fills(0, 10)
    rows[6].update(breakage)
    write_jsonl(tmp_path / "in" / "a_good.jsonl", _fills(100, 5))
    bad = write_jsonl(tmp_path / "in" / "b_bad.jsonl", rows)
    report = goldsky_files.load_directory(ch, tmp_path / "in")
    assert [f.status for f in report.files] == ["loaded", "rejected"]
    error = report.rejected[0].error
    assert error.startswith(f"{bad.name}: rejected") and f"row 7: {reason}" in error
    # nothing from the bad file, everything from the good one
    assert ch.command("SELECT count() FROM raw.order_filled") == 5
    assert not ch.command("SELECT count() FROM ops.loaded_files WHERE file_name = 'b_bad.jsonl'")


def test_missing_field_and_missing_parquet_column_are_named(ch, tmp_path):
    rows = _fills(0, 3)
    del rows[2]["taker"]
    with pytest.raises(goldsky_files.FileRejected, match="row 3: field taker is missing"):
        goldsky_files.load_file(ch, write_jsonl(tmp_path / "a.jsonl", rows))
    pq.write_table(pa.table({"id": ["x"], "timestamp": [1]}), tmp_path / "b.parquet")
    with pytest.raises(
        goldsky_files.FileRejected, match=r"b\.parquet: rejected: missing columns: transaction_hash"
    ):
        goldsky_files.load_file(ch, tmp_path / "b.parquet")
    assert ch.command("SELECT count() FROM raw.order_filled") == 0


def test_unparseable_file_is_rejected_with_its_name(ch, tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_text('{"id": "a", "timestamp": 1\n')
    with pytest.raises(goldsky_files.FileRejected, match=r"c.jsonl: rejected: unreadable as JSONEachRow"):
        goldsky_files.load_file(ch, path)
    assert ch.command("SELECT count() FROM raw.order_filled") == 0
    assert not ch.command("SELECT count() FROM system.tables WHERE name LIKE '_stage%'")


def test_error_report_is_capped_but_counts_every_bad_row(ch, tmp_path):
    rows = _fills(0, 50)
    for r in rows:
        r["fee"] = "x"
    with pytest.raises(goldsky_files.FileRejected) as info:
        goldsky_files.load_file(ch, write_jsonl(tmp_path / "d.jsonl", rows))
    assert info.value.bad_rows == 50
    assert len(info.value.problems) == goldsky_files.MAX_REPORTED_ERRORS
    assert "(50 bad rows in all)" in str(info.value)


def test_for_a_server_files_are_parsed_locally_and_sent_as_arrow(ch, tmp_path, monkeypatch):
    """A server's file() would read the server's disk. Here the server is played by the
    embedded engine told it is remote; the local parser is the same engine (one process
    cannot open a second chDB), so the Arrow route from parse to staging is what is tested."""
    parsed = []

    def local_arrow(sql):
        parsed.append(sql)
        try:
            return ch.query_arrow(sql)
        except Exception:
            # chdb.query is stateless; this client's Arrow path instead hands a failed
            # query's leftover bytes to its next query. Drain them, as a fresh engine would.
            ch.command("SELECT 1")
            raise

    monkeypatch.setattr(goldsky_files, "reads_local_files", lambda client: False)
    monkeypatch.setattr(goldsky_files, "_local_arrow", local_arrow)
    rows = _fills(0, 12)
    rows[3]["maker_amount_filled"] = int(rows[3]["maker_amount_filled"])
    result = goldsky_files.load_file(ch, write_jsonl(tmp_path / "s.jsonl.gz", rows))
    assert (result.status, result.rows_new) == ("loaded", 12)
    assert parsed and all("FROM file(" in sql for sql in parsed)
    assert _ids(ch) == sorted(r["id"] for r in rows)
    bad = _fills(100, 3)
    bad[1]["taker_asset_id"] = "0"
    bad[1]["maker_asset_id"] = "0"
    with pytest.raises(goldsky_files.FileRejected, match="row 2: asset pair"):
        goldsky_files.load_file(ch, write_jsonl(tmp_path / "t.jsonl", bad))
    pq.write_table(pa.table({"id": ["x"]}), tmp_path / "u.parquet")
    with pytest.raises(goldsky_files.FileRejected, match="missing columns"):
        goldsky_files.load_file(ch, tmp_path / "u.parquet")
    assert ch.command("SELECT count() FROM raw.order_filled") == 12


def _stage_tables(ch) -> int:
    return ch.command("SELECT count() FROM system.tables WHERE name LIKE '_stage%'")


def test_ids_repeated_inside_a_file_load_once_keeping_the_first(ch, tmp_path):
    rows = _fills(0, 6)
    rows.insert(1, dict(rows[4], maker_amount_filled="777"))  # row 2 repeats row 6's id: row 2 wins
    rows.append(dict(rows[2]))
    result = goldsky_files.load_file(ch, write_jsonl(tmp_path / "rep.jsonl", rows))
    assert (result.rows, result.rows_new, result.route) == (8, 6, "attached")
    assert _ids(ch) == sorted({r["id"] for r in rows})
    assert (
        ch.command(
            "SELECT maker_amount_filled FROM raw.order_filled WHERE id = {i:String}",
            parameters={"i": rows[1]["id"]},
        )
        == 777
    )
    assert _stage_tables(ch) == 0


def test_rows_reach_the_table_by_attach_unless_one_of_their_ids_is_stored(ch, tmp_path):
    first = goldsky_files.load_file(ch, write_jsonl(tmp_path / "a.jsonl", _fills(0, 10)))
    later = goldsky_files.load_file(ch, write_jsonl(tmp_path / "b.jsonl", _fills(100, 10)))
    # new ids timestamped inside a.jsonl's range: the id index says none is stored: attached
    inside = [fill(500 + i, T0 + i, wallet(1), "BUY", token(1, 1), 10, 4) for i in range(5)]
    late = goldsky_files.load_file(ch, write_jsonl(tmp_path / "c.jsonl", inside))
    # two stored ids among three new ones: inserted minus the stored ids
    mixed = goldsky_files.load_file(ch, write_jsonl(tmp_path / "d.jsonl", _fills(8, 5)))
    assert [(f.route, f.rows_new) for f in (first, later, late, mixed)] == [
        ("attached", 10),
        ("attached", 10),
        ("attached", 5),
        ("filtered", 3),
    ]
    assert set(first.phases) == set(goldsky_files.LOAD_STAGES)
    assert ch.command("SELECT count() FROM raw.order_filled") == 28
    # the materialized columns are computed for attached rows as for inserted ones
    assert not ch.command(
        "SELECT countIf(token_id != if(maker_asset_id = '0', taker_asset_id, "
        "maker_asset_id) OR token_id = '' OR inserted_at < '2020-01-01') "
        "FROM raw.order_filled"
    )
    assert _stage_tables(ch) == 0


def test_a_failure_that_is_not_the_files_fault_is_raised_and_loads_nothing(ch, tmp_path, monkeypatch):
    def broken(client, stage, source, first_of_each_id=False):
        raise RuntimeError("disk full")

    monkeypatch.setattr(goldsky_files, "_write_rows", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        goldsky_files.load_file(ch, write_jsonl(tmp_path / "ok.jsonl", _fills(0, 3)))
    assert ch.command("SELECT count() FROM raw.order_filled") == 0
    assert not ch.command("SELECT count() FROM ops.loaded_files")
    assert _stage_tables(ch) == 0


def test_for_a_server_repeated_and_stored_ids_are_dropped_too(ch, tmp_path, monkeypatch):
    def local_arrow(sql):  # see test_for_a_server_files_are_parsed_locally_and_sent_as_arrow
        return ch.query_arrow(sql)

    monkeypatch.setattr(goldsky_files, "reads_local_files", lambda client: False)
    monkeypatch.setattr(goldsky_files, "_local_arrow", local_arrow)
    goldsky_files.load_file(ch, write_jsonl(tmp_path / "a.jsonl", _fills(0, 5)))
    rows = _fills(3, 5)
    rows.insert(0, dict(rows[2], taker_amount_filled="5"))  # repeats row 3's id; comes first
    result = goldsky_files.load_file(ch, write_jsonl(tmp_path / "b.jsonl", rows))
    assert (result.rows, result.rows_new, result.route) == (6, 3, "filtered")
    assert len(_ids(ch)) == len(set(_ids(ch))) == 8
    assert (
        ch.command(
            "SELECT taker_amount_filled FROM raw.order_filled WHERE id = {i:String}",
            parameters={"i": rows[0]["id"]},
        )
        == 5
    )


def test_a_refused_attach_falls_back_to_the_insert_even_halfway(ch, tmp_path, monkeypatch):
    """A server may refuse to attach parts (another storage policy): the rows are inserted
    instead, minus those of any partition that was attached before the refusal."""
    real_attach_sql = ch.command

    def attach_one_then_refuse(client, stage):
        first = client.command(
            f"SELECT min(partition_id) FROM system.parts WHERE table = '{stage.split('.')[1]}' AND active"
        )
        real_attach_sql(f"ALTER TABLE raw.order_filled ATTACH PARTITION ID '{first}' FROM {stage}")
        raise RuntimeError("storage policy mismatch")

    monkeypatch.setattr(fill_store, "_attach", attach_one_then_refuse)
    rows = [fill(i, T0 + i * 20 * 86400, wallet(i), "BUY", token(i, 0), 10, 4) for i in range(6)]
    result = goldsky_files.load_file(ch, write_jsonl(tmp_path / "months.jsonl", rows))
    assert (result.rows_new, result.route) == (6, "filtered")
    assert _ids(ch) == sorted(r["id"] for r in rows)
    assert _stage_tables(ch) == 0


# --- issue 15: no file can poison the load -------------------------------------------------


def _write_gz(path, text: str):
    import gzip

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(text.encode(), mtime=0))
    return path


def _empty_parquet(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    schema = pa.schema([(c, pa.string()) for c in goldsky_files.REQUIRED_COLUMNS])
    pq.write_table(schema.empty_table(), path)
    return path


EMPTY_FILES = {
    "zero-byte.parquet": (lambda p: p.write_bytes(b""), "zero-byte file"),
    "zero-byte.jsonl": (lambda p: p.write_bytes(b""), "zero-byte file"),
    "zero-byte.jsonl.gz": (lambda p: p.write_bytes(b""), "zero-byte file"),
    "blank.jsonl": (lambda p: p.write_text("\n\n  \n"), "no rows"),
    "empty.jsonl.gz": (lambda p: _write_gz(p, ""), "no rows"),
    "no-rows.parquet": (_empty_parquet, "no rows"),
    "garbage.parquet": (lambda p: p.write_bytes(b"PAR1 this is not parquet"), "unreadable as Parquet"),
    "garbage.jsonl.gz": (lambda p: p.write_bytes(b"\x1f\x8b\x08 not gzip at all"), "unreadable"),
}


def test_an_unreadable_parquet_file_is_rejected_with_the_engine_s_reason(ch, tmp_path):
    """The reason stopped at the engine's first line, "... from a Parquet format file. Error:",
    before the cause it goes on to give on the next."""
    bad = tmp_path / "in" / "garbage.parquet"
    bad.parent.mkdir()
    bad.write_bytes(b"PAR1 this is not parquet")
    report = goldsky_files.load_directory(ch, bad.parent)
    error = report.rejected[0].error
    assert "unreadable as Parquet: " in error and not error.rstrip().endswith("Error:"), error
    assert re.search(r"Error: \S", error) and "\n" not in error and "Code: " not in error, error


@pytest.mark.parametrize("name", list(EMPTY_FILES))
def test_an_empty_or_unreadable_file_is_rejected_alone_tonight_and_later(ch, tmp_path, name):
    """Issue 15, 1: a zero-byte .parquet aborted the whole step with a raw `DatabaseError ...
    file is empty`, and the files after it never loaded, on any night."""
    make, reason = EMPTY_FILES[name]
    directory = tmp_path / "in"
    write_jsonl(directory / "a_before.jsonl", _fills(0, 5))
    bad = directory / f"b_{name}"
    bad.parent.mkdir(parents=True, exist_ok=True)
    make(bad)
    write_jsonl(directory / "c_after.jsonl", _fills(100, 5))
    report = goldsky_files.load_directory(ch, directory)
    assert [(f.path.name, f.status) for f in report.files] == [
        ("a_before.jsonl", "loaded"),
        (bad.name, "rejected"),
        ("c_after.jsonl", "loaded"),
    ]
    error = report.rejected[0].error
    assert error.startswith(f"{bad.name}: rejected") and reason in error, error
    assert ch.command("SELECT count() FROM raw.order_filled") == 10
    assert any(bad.name in w and reason in w for w in report.warnings)
    recorded = ch.query("SELECT file_name, reason FROM ops.rejected_files").result_rows
    assert [r[0] for r in recorded] == [bad.name] and reason in recorded[0][1]
    # A later night: the bad file is still reported (and recorded), a new file loads.
    write_jsonl(directory / "d_next_night.jsonl", _fills(200, 5))
    later = goldsky_files.load_directory(ch, directory)
    assert [(f.path.name, f.status) for f in later.files] == [
        ("a_before.jsonl", "skipped"),
        (bad.name, "rejected"),
        ("c_after.jsonl", "skipped"),
        ("d_next_night.jsonl", "loaded"),
    ]
    assert ch.command("SELECT count() FROM ops.rejected_files") == 2
    assert ch.command("SELECT count() FROM raw.order_filled") == 15
    assert _stage_tables(ch) == 0


MICROS = str(T0 * 1_000_000)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (MICROS, f"timestamp {MICROS} lies after"),  # microseconds: not year 57,000
        ("99999999999", "timestamp 99999999999 lies after"),  # not year 5138
        ("2026", "timestamp 2026 lies before"),  # a year is not 1970-01-01 00:33:46
        ("0", "timestamp 0 lies before"),
        ("1000000000", "timestamp 1000000000 lies before"),  # 2001
        ("1970-01-01T00:00:00Z", "timestamp 1970-01-01T00:00:00Z lies before"),
        ("5138-11-16T09:46:39Z", "timestamp 5138-11-16T09:46:39Z lies after"),
        ("123456789012345678901", "timestamp 123456789012345678901 is not a unix time or ISO date"),
    ],
)
def test_an_implausible_timestamp_rejects_its_file_naming_row_and_reason(ch, tmp_path, value, reason):
    """Issue 15, 1 and 3: a microsecond timestamp aborted the step with `ValueError: day ... is
    outside the date range` naming neither file nor row; 99999999999 was stored as year 5138
    and `2026` as 1970."""
    rows = _fills(0, 4)
    rows[2]["timestamp"] = value
    directory = tmp_path / "in"
    bad = write_jsonl(directory / "a_bad.jsonl", rows)
    write_jsonl(directory / "b_good.jsonl", _fills(100, 3))
    report = goldsky_files.load_directory(ch, directory)
    assert [f.status for f in report.files] == ["rejected", "loaded"]
    error = report.rejected[0].error
    assert error.startswith(f"{bad.name}: rejected") and f"row 3: {reason}" in error, error
    assert ch.command("SELECT count() FROM raw.order_filled") == 3
    lo, hi = ch.query("SELECT min(timestamp), max(timestamp) FROM raw.order_filled").result_rows[0]
    assert lo.year == hi.year == 2025


def test_the_plausible_window_is_stated_once_and_holds_both_ends(ch, tmp_path):
    lo, hi = fill_contract.plausible_window(dt.datetime(2026, 12, 1, tzinfo=dt.UTC))
    assert lo == fill_contract.EXCHANGE_LAUNCH
    assert hi == dt.datetime(2026, 12, 1, tzinfo=dt.UTC) + fill_contract.FUTURE_SLACK
    launch = int(fill_contract.EXCHANGE_LAUNCH.timestamp())
    rows = [
        fill(1, launch, wallet(1), "BUY", token(1, 0), 10, 4),  # the first second: fine
        fill(2, launch - 1, wallet(1), "BUY", token(1, 0), 10, 4),
    ]
    with pytest.raises(goldsky_files.FileRejected, match=f"row 2: timestamp {launch - 1} lies before"):
        goldsky_files.load_file(ch, write_jsonl(tmp_path / "edge.jsonl", rows))
    now = dt.datetime.now(dt.UTC)
    soon = int((now + fill_contract.FUTURE_SLACK / 2).timestamp())
    later = int((now + fill_contract.FUTURE_SLACK * 2).timestamp())
    near = [rows[0], fill(3, soon, wallet(1), "BUY", token(1, 0), 10, 4)]
    assert goldsky_files.load_file(ch, write_jsonl(tmp_path / "soon.jsonl", near)).rows_new == 2
    far = [fill(4, later, wallet(1), "BUY", token(1, 0), 10, 4)]
    with pytest.raises(goldsky_files.FileRejected, match=f"row 1: timestamp {later} lies after"):
        goldsky_files.load_file(ch, write_jsonl(tmp_path / "later.jsonl", far))


@pytest.mark.parametrize("blank", ["", "   ", "\t \n"])
def test_a_blank_id_rejects_its_file(ch, tmp_path, blank):
    rows = _fills(0, 3)
    rows[1]["id"] = blank
    with pytest.raises(goldsky_files.FileRejected, match="row 2: field id is blank"):
        goldsky_files.load_file(ch, write_jsonl(tmp_path / "a.jsonl", rows))
    assert ch.command("SELECT count() FROM raw.order_filled") == 0


def test_an_unknown_file_type_in_the_folder_is_a_warning_naming_it(ch, tmp_path, caplog):
    """Issue 15, 3: a `.json` file in the dataset folder was ignored without a word."""
    directory = tmp_path / "in"
    write_jsonl(directory / "a.jsonl", _fills(0, 3))
    (directory / "b.json").write_text("[]")
    (directory / "sub").mkdir()
    (directory / "sub" / "c.csv").write_text("id,timestamp\n")
    (directory / ".hidden").write_text("")  # dot files (sync tools' state) are not data
    with caplog.at_level(logging.WARNING, logger="ingest"):
        report = goldsky_files.load_directory(ch, directory)
    assert [f.status for f in report.files] == ["loaded"]
    assert [p.name for p in report.unknown] == ["b.json", "c.csv"]
    assert any("b.json" in w and "not a dataset file" in w for w in report.warnings)
    assert any("sub/c.csv" in w for w in report.warnings)
    assert any("b.json" in r.getMessage() + str(getattr(r, "ctx", "")) for r in caplog.records)


def test_ids_are_normalised_so_case_and_whitespace_do_not_make_a_second_fill(ch, tmp_path):
    """Issue 15, 2: upper-case ids of stored fills were accepted as new (exit 0, no warning)
    and double-counted PnL."""
    rows = _fills(0, 6)
    goldsky_files.load_file(ch, write_jsonl(tmp_path / "a.jsonl", rows))
    again = [dict(r, id=f"  {r['id'].upper()}\t") for r in rows[:3]]
    result = goldsky_files.load_file(ch, write_jsonl(tmp_path / "b.jsonl", again))
    assert (result.rows, result.rows_new, result.rows_resent, result.rows_conflicting) == (3, 0, 3, 0)
    assert sorted(_ids(ch)) == sorted(r["id"] for r in rows)
    # inside one file too: the second spelling of an id is the same fill
    fresh = _fills(50, 2)
    twice = [fresh[0], dict(fresh[0], id=fresh[0]["id"].upper()), fresh[1]]
    result = goldsky_files.load_file(ch, write_jsonl(tmp_path / "c.jsonl", twice))
    assert (result.rows, result.rows_new) == (3, 2)
    assert len(_ids(ch)) == len(set(_ids(ch))) == 8


def test_a_resent_id_with_another_timestamp_is_never_stored_twice(ch, tmp_path):
    """Issue 15, 2: stored ids re-sent with another timestamp landed in another monthly
    partition: raw counts 11,840 against 11,790 with FINAL, the dbt unique test failed and
    the marts stopped updating."""
    rows = _fills(0, 100)
    goldsky_files.load_file(ch, write_jsonl(tmp_path / "a.jsonl", rows))
    moved = [dict(r, timestamp=r["timestamp"] + 40 * 86400) for r in rows[:50]]  # next month
    moved += _fills(1000, 10)
    result = goldsky_files.load_file(ch, write_jsonl(tmp_path / "b.jsonl", moved))
    assert (result.rows, result.rows_new, result.rows_resent, result.rows_conflicting) == (60, 10, 50, 50)
    raw = ch.command("SELECT count() FROM raw.order_filled")
    final = ch.command("SELECT count() FROM raw.order_filled FINAL")
    assert raw == final == 110
    assert ch.command("SELECT uniqExact(id) FROM raw.order_filled") == 110
    # first stored wins: the original timestamps stay
    stamps = dict(ch.query("SELECT id, toUnixTimestamp(timestamp) FROM raw.order_filled").result_rows)
    assert all(stamps[r["id"]] == r["timestamp"] for r in rows)
    assert result.conflict_examples and result.conflict_examples[0] in {r["id"] for r in rows}


def test_resent_conflicts_are_counted_and_warned_about_and_identical_resends_are_not(ch, tmp_path):
    directory = tmp_path / "in"
    rows = _fills(0, 20)
    write_jsonl(directory / "a.jsonl", rows)
    goldsky_files.load_directory(ch, directory)
    write_jsonl(directory / "b_same.jsonl", rows[:5] + _fills(100, 1))  # a rewritten delivery
    changed = [dict(r, maker_amount_filled=str(int(r["maker_amount_filled"]) + 1)) for r in rows[5:8]]
    write_jsonl(directory / "c_changed.jsonl", changed)
    report = goldsky_files.load_directory(ch, directory)
    loaded = {f.path.name: f for f in report.files if f.status == "loaded"}
    assert (loaded["b_same.jsonl"].rows_resent, loaded["b_same.jsonl"].rows_conflicting) == (5, 0)
    assert (loaded["c_changed.jsonl"].rows_resent, loaded["c_changed.jsonl"].rows_conflicting) == (3, 3)
    assert report.rows_conflicting == 3
    warnings = [w for w in report.warnings if "different content" in w]
    assert len(warnings) == 1 and warnings[0].startswith("c_changed.jsonl: 3 re-sent ids")
    assert rows[5]["id"] in warnings[0]
    amounts = dict(ch.query("SELECT id, maker_amount_filled FROM raw.order_filled").result_rows)
    assert all(amounts[r["id"]] == int(r["maker_amount_filled"]) for r in rows)  # first stored wins
    assert ch.command("SELECT count() FROM raw.order_filled") == 21


def test_the_id_index_is_rebuilt_from_raw_rows_it_does_not_cover(ch, tmp_path):
    """Rows that reached raw.order_filled without the index (a load killed between the two
    writes, a warehouse from before the index, or a direct SQL copy) are indexed by the next
    load before it checks any id, so their ids are not stored again."""
    rows = _fills(0, 30)
    goldsky_files.load_file(ch, write_jsonl(tmp_path / "a.jsonl", rows))
    ch.command("TRUNCATE TABLE raw.order_filled_ids")
    ch.command("TRUNCATE TABLE ops.order_filled_ids_sync")
    result = goldsky_files.load_file(ch, write_jsonl(tmp_path / "b.jsonl", rows[10:] + _fills(500, 5)))
    assert (result.rows_new, result.rows_resent) == (5, 20)
    assert ch.command("SELECT count() FROM raw.order_filled") == 35
    assert ch.command("SELECT uniqExact(id_hash) FROM raw.order_filled_ids") == 35


def test_the_id_check_reads_the_index_through_its_primary_key(ch, tmp_path):
    """At 2 billion stored fills the check must not read the raw table: it reads the narrow
    id index, and only the granules its primary key selects."""
    many = [fill(i, T0 + i, wallet(i % 3), "BUY", token(1, 0), 10, 4) for i in range(20000)]
    goldsky_files.load_file(ch, write_jsonl(tmp_path / "big.jsonl", many))
    ch.command("OPTIMIZE TABLE raw.order_filled_ids FINAL")
    probe = f"(SELECT {fill_store.ID_HASH} AS id_hash FROM (SELECT '{many[12345]['id']}' AS id))"
    plan = "\n".join(
        r[0] for r in ch.query("EXPLAIN indexes = 1 " + fill_store.stored_ids_sql(probe)).result_rows
    )
    assert "ReadFromMergeTree (raw.order_filled_ids)" in plan and "raw.order_filled)" not in plan, plan
    primary = plan[plan.index("PrimaryKey") :]
    granules = next(line.strip() for line in primary.splitlines() if "Granules:" in line)
    total = int(granules.split("/")[1])
    assert granules == f"Granules: 1/{total}" and total >= 20000 // 256, plan
    stored = ch.query(fill_store.stored_ids_sql(probe)).result_rows
    assert len(stored) == 1


def test_stage_tables_left_by_a_dead_process_are_dropped_by_the_next_load(ch, tmp_path):
    """Issue 15, 9: empty raw._stage_order_filled_* tables were left by killed loads."""
    import subprocess
    import sys

    from ingest import stage_tables

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    orphan = stage_tables.stage_name("order_filled", pid=dead.pid)
    mine = stage_tables.stage_name("order_filled")
    legacy = "raw._stage_order_filled_0123456789ab"  # named before owners were recorded
    for name in (orphan, mine, legacy):
        ch.command(f"CREATE TABLE {name} (x UInt8) ENGINE = MergeTree ORDER BY x")
    write_jsonl(tmp_path / "in" / "a.jsonl", _fills(0, 2))
    goldsky_files.load_directory(ch, tmp_path / "in")
    left = {r[0] for r in ch.query("SELECT name FROM system.tables WHERE name LIKE '\\_stage%'").result_rows}
    # the embedded engine admits one process: a table no live process owns is garbage
    assert left == {mine.split(".")[1]}
    ch.command(f"DROP TABLE {mine}")


def test_logs_one_line_per_file_that_loads_or_is_rejected_and_debug_for_the_rest(ch, tmp_path, caplog):
    """Issue 15, 6: a 200-character INFO line per file even when nothing loads."""
    directory = tmp_path / "in"
    for i in range(3):
        write_jsonl(directory / f"f{i}.jsonl", _fills(10 * i, 5))
    (directory / "g.parquet").write_bytes(b"")
    with caplog.at_level(logging.DEBUG, logger="ingest"):
        goldsky_files.load_directory(ch, directory)
    first = [r for r in caplog.records if r.levelno >= logging.INFO and getattr(r, "ctx", {}).get("file")]
    assert sorted(r.ctx["file"] for r in first) == ["f0.jsonl", "f1.jsonl", "f2.jsonl", "g.parquet"]
    assert all({"file", "rows", "progress"} <= set(r.ctx) for r in first)
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="ingest"):
        report = goldsky_files.load_directory(ch, directory)
    per_file = [r for r in caplog.records if getattr(r, "ctx", {}).get("file")]
    assert [r.ctx["file"] for r in per_file if r.levelno >= logging.INFO] == ["g.parquet"]
    assert sorted(r.ctx["file"] for r in per_file if r.levelno == logging.DEBUG) == [
        "f0.jsonl",
        "f1.jsonl",
        "f2.jsonl",
    ]
    assert report.counts() == {"loaded": 0, "skipped": 3, "rejected": 1, "unknown": 0}


def test_the_step_names_every_file_that_needs_a_look_and_loads_the_rest(tmp_path):
    from ingest.dataset_step import step_ingest_dataset
    from pipeline.steps import PARTIAL, MissingInput, RunContext

    settings = make_settings(tmp_path)
    directory = tmp_path / "in"
    rows = _fills(0, 10)
    write_jsonl(directory / "a.jsonl", rows)
    (directory / "b.parquet").write_bytes(b"")
    write_jsonl(directory / "c.jsonl", [dict(r, fee="7") for r in rows[:2]] + _fills(100, 3))
    (directory / "notes.csv").write_text("x\n")
    ctx = RunContext(settings, "t", "test", dt.datetime.now(dt.UTC))
    result = step_ingest_dataset(ctx, directory, {"source": "dataset"})
    assert result.status == PARTIAL and result.error.startswith("b.parquet: rejected")
    assert (result.rows_in, result.rows_out) == (15, 13)
    assert result.details["files_loaded"] == 2 and result.details["files_unknown"] == ["notes.csv"]
    assert result.details["rows_conflicting"] == 2 and result.details["raw_rows"] == 13
    assert [w.split(":")[0] for w in result.warnings] == ["b.parquet", "c.jsonl", "notes.csv"]
    (directory / "b.parquet").unlink()
    for p in directory.glob("*.jsonl"):
        p.unlink()
    with pytest.raises(MissingInput, match=r"no dataset files under .* \(1 other files, e.g. notes.csv\)"):
        step_ingest_dataset(ctx, directory)


def test_the_step_s_message_counts_in_words(tmp_path):
    """A count of one takes the singular: the message said "1 files loaded"."""
    from ingest.dataset_step import step_ingest_dataset
    from pipeline.steps import RunContext

    settings = make_settings(tmp_path)
    write_jsonl(tmp_path / "in" / "a.jsonl", _fills(0, 3))
    ctx = RunContext(settings, "t", "test", dt.datetime.now(dt.UTC))
    result = step_ingest_dataset(ctx, tmp_path / "in", {"source": "dataset"})
    assert result.message == "1 file loaded, 0 already loaded, 0 rejected"
    write_jsonl(tmp_path / "in" / "b.jsonl", _fills(10, 3))
    write_jsonl(tmp_path / "in" / "c.jsonl", _fills(20, 3))
    result = step_ingest_dataset(ctx, tmp_path / "in", {"source": "dataset"})
    assert result.message == "2 files loaded, 1 already loaded, 0 rejected"


def test_an_empty_file_recorded_as_loaded_by_an_earlier_version_is_rejected_now(ch, tmp_path):
    """Earlier versions recorded empty files as "loaded, 0 rows": such a record must not make
    that content (every zero-byte file has the same hash) a silent skip for ever."""
    empty = tmp_path / "in" / "a.jsonl"
    empty.parent.mkdir()
    empty.write_bytes(b"")
    blank = tmp_path / "in" / "b.jsonl"
    blank.write_text("\n")
    for path in (empty, blank):
        ch.command(
            "INSERT INTO ops.loaded_files (sha256, file_name, path, size_bytes, rows, rows_new, loaded_at) "
            "SELECT {h:String}, {n:String}, '', 0, 0, 0, now64(3)",
            parameters={"h": goldsky_files.sha256_of(path), "n": path.name},
        )
    report = goldsky_files.load_directory(ch, tmp_path / "in")
    assert [(f.path.name, f.status) for f in report.files] == [
        ("a.jsonl", "rejected"),
        ("b.jsonl", "rejected"),
    ]
