"""`polymarket.order_filled` 2.0.0 files (v2 exchanges, after 2026-04-28) load into the v1 shape."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ingest import goldsky_files
from ingest.tables import ensure_tables
from pipeline import warehouse
from tests.support.factories import fill, token, wallet, write_jsonl
from tests.support.settings import make_settings

T0 = 1777400000  # 2026-04-28 18:13 UTC, after the v2 migration
V2_EXCHANGE = "0xe111180000d2663c0091e4f400237545b87b996b"
COLUMNS = "maker_asset_id, taker_asset_id, maker_amount_filled, taker_amount_filled, fee, contract_version"


def v2_row(v1: dict) -> dict:
    """The 2.0.0 shape of a v1 fill: the maker order's side (0 BUY, 1 SELL) and one token."""
    buy = v1["maker_asset_id"] == "0"
    row = {k: v for k, v in v1.items() if k not in ("maker_asset_id", "taker_asset_id")}
    row.update(
        side=0 if buy else 1,
        token_id=v1["taker_asset_id"] if buy else v1["maker_asset_id"],
        taker=V2_EXCHANGE,
        builder="0x" + "00" * 32,
        metadata="0x" + "00" * 32,
        fee="12",
    )
    return row


def _v1(start: int, n: int) -> list[dict]:
    return [
        fill(
            i,
            T0 + i,
            wallet(i % 5),
            "BUY" if i % 2 else "SELL",
            token(i % 3, i % 2),
            1_000_000 * (i + 1),
            300_000 * (i + 1),
        )
        for i in range(start, start + n)
    ]


@pytest.fixture
def ch(tmp_path):
    with warehouse.connect(make_settings(tmp_path)) as client:
        ensure_tables(client)
        yield client


def _stored(ch, rows: list[dict]) -> list[tuple]:
    return [
        ch.query(
            f"SELECT {COLUMNS} FROM raw.order_filled WHERE id = {{i:String}}", parameters={"i": r["id"]}
        ).result_rows[0]
        for r in rows
    ]


def test_v2_jsonl_is_normalized_to_the_v1_shape(ch, tmp_path):
    v1 = _v1(0, 10)
    path = write_jsonl(tmp_path / "in" / "v2.jsonl.gz", [v2_row(r) for r in v1])
    result = goldsky_files.load_file(ch, path)
    assert (result.status, result.rows_new, result.version) == ("loaded", 10, "v2")
    for r, stored in zip(v1, _stored(ch, v1)):
        # BUY -> maker gives "0" and gets the token; SELL -> the reverse: the v1 pair exactly
        assert stored == (
            r["maker_asset_id"],
            r["taker_asset_id"],
            int(r["maker_amount_filled"]),
            int(r["taker_amount_filled"]),
            12,
            "v2",
        )


def test_v2_parquet_with_integer_side_and_v1_files_side_by_side(ch, tmp_path):
    v2 = [v2_row(r) for r in _v1(0, 6)]
    table = pa.table({k: [r[k] for r in v2] for k in v2[0] if k not in ("_gs_op",)})
    table = table.set_column(
        table.schema.get_field_index("side"), "side", pa.array([r["side"] for r in v2], pa.uint8())
    )
    (tmp_path / "in").mkdir()
    pq.write_table(table, tmp_path / "in" / "b-v2.parquet")
    write_jsonl(tmp_path / "in" / "a-v1.jsonl", _v1(100, 4))
    report = goldsky_files.load_directory(ch, tmp_path / "in")
    assert [(f.path.name, f.status, f.version) for f in report.files] == [
        ("a-v1.jsonl", "loaded", "v1"),
        ("b-v2.parquet", "loaded", "v2"),
    ]
    counts = dict(
        ch.query(
            "SELECT contract_version, count() FROM raw.order_filled GROUP BY contract_version"
        ).result_rows
    )
    assert counts == {"v1": 4, "v2": 6}


def test_v2_file_with_a_bad_side_is_rejected_whole(ch, tmp_path):
    rows = [v2_row(r) for r in _v1(0, 5)]
    rows[3]["side"] = 2
    rows[4]["token_id"] = "0xabc"
    with pytest.raises(goldsky_files.FileRejected) as info:
        goldsky_files.load_file(ch, write_jsonl(tmp_path / "bad.jsonl", rows))
    assert info.value.problems == [
        "row 4: side 2 is not 0 (BUY) or 1 (SELL)",
        "row 5: token_id 0xabc is not a decimal token id",
    ]
    assert ch.command("SELECT count() FROM raw.order_filled") == 0


def test_v2_parquet_missing_a_v2_column_is_rejected(ch, tmp_path):
    v2 = [v2_row(r) for r in _v1(0, 2)]
    path = tmp_path / "no-token.parquet"
    pq.write_table(
        pa.table(
            {k: [str(r[k]) for r in v2] for k in v2[0] if k != "token_id"}
            | {"side": ["0", "1"], "maker_asset_id": ["0", "1"]}
        ),
        path,
    )
    with pytest.raises(goldsky_files.FileRejected, match="missing columns: taker_asset_id"):
        goldsky_files.load_file(ch, path)  # without token_id it reads as v1, and is incomplete


def test_redelivered_v2_rows_are_not_stored_twice(ch, tmp_path):
    rows = [v2_row(r) for r in _v1(0, 8)]
    goldsky_files.load_file(ch, write_jsonl(tmp_path / "one.jsonl", rows[:5]))
    again = goldsky_files.load_file(ch, write_jsonl(tmp_path / "two.jsonl", rows + rows[-2:]))
    assert again.rows_new == 3
    assert ch.command("SELECT count() FROM raw.order_filled") == 8
