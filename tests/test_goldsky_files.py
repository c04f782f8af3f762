"""Loading Goldsky dataset files: formats, the manifest, overlap, and all-or-nothing rejection."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ingest import goldsky_files
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


def test_rows_reach_the_table_by_attach_unless_it_holds_rows_in_the_files_time_range(ch, tmp_path):
    first = goldsky_files.load_file(ch, write_jsonl(tmp_path / "a.jsonl", _fills(0, 10)))
    later = goldsky_files.load_file(ch, write_jsonl(tmp_path / "b.jsonl", _fills(100, 10)))
    # new ids only, but timestamped inside a.jsonl's range: looked up, all inserted
    inside = [fill(500 + i, T0 + i, wallet(1), "BUY", token(1, 1), 10, 4) for i in range(5)]
    late = goldsky_files.load_file(ch, write_jsonl(tmp_path / "c.jsonl", inside))
    assert [(f.route, f.rows_new) for f in (first, later, late)] == [
        ("attached", 10),
        ("attached", 10),
        ("filtered", 5),
    ]
    assert set(first.phases) == set(goldsky_files.LOAD_STAGES)
    assert ch.command("SELECT count() FROM raw.order_filled") == 25
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

    monkeypatch.setattr(goldsky_files, "_attach", attach_one_then_refuse)
    rows = [fill(i, T0 + i * 20 * 86400, wallet(i), "BUY", token(i, 0), 10, 4) for i in range(6)]
    result = goldsky_files.load_file(ch, write_jsonl(tmp_path / "months.jsonl", rows))
    assert (result.rows_new, result.route) == (6, "filtered")
    assert _ids(ch) == sorted(r["id"] for r in rows)
    assert _stage_tables(ch) == 0
