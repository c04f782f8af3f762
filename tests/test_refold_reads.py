"""What a night's re-fold reads of the raw fills (issue 12): the touched (wallet, token) keys
from the raw table's months and parts on or after the night's earliest fill day only, so the
cost of a night follows how far back its fills reach, not the length of the history."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from ingest import goldsky_files, sample_data
from ingest.tables import ensure_tables
from pipeline import warehouse
from pipeline.dbt_chdb import run_dbt
from tests.support.nights import read_rows, write_rows
from tests.support.settings import make_settings

pytestmark = pytest.mark.slow

# Six days over a month boundary (2026-10-28 ... 2026-11-02): two monthly partitions of the
# raw table, one part per delivered file.
ANCHOR = dt.date(2026, 11, 2)
MODEL = "int_position_days"
POSITION_DAYS = (
    "SELECT wallet, token_id, day, amount, avg_price, trading_pnl, bought, n_fills, volume, "
    "buy_collateral, day_trading_pnl, day_volume, day_fills, first_fill_at, last_fill_at "
    f"FROM analytics.{MODEL} FINAL ORDER BY wallet, token_id, day"
)


def _load(settings) -> None:
    with warehouse.connect(settings) as ch:
        warehouse.ensure_databases(ch)
        ensure_tables(ch)
        goldsky_files.load_directory(ch, settings.goldsky_dataset_dir)


def _raw_reads(settings, sql: str) -> list[int]:
    """The parts each read of raw.order_filled in `sql`'s plan selects after its indexes."""
    with warehouse.connect(settings) as ch:
        plan = [
            line
            for (line,) in ch.query("EXPLAIN indexes = 1 " + sql, settings={"join_use_nulls": 1}).result_rows
        ]
    reads = []
    for i, line in enumerate(plan):
        if "ReadFromMergeTree (raw.order_filled)" in line:
            # the read's summary line, a few lines below: "Parts: 6 | Granules: 6"
            found = next(m for later in plan[i + 1 : i + 5] if (m := re.search(r"Parts: (\d+) \|", later)))
            reads.append(int(found.group(1)))
    return reads


def test_the_refold_reads_only_the_raw_parts_from_the_nights_earliest_fill_day(tmp_path):
    settings = make_settings(tmp_path, GOLDSKY_SOURCE="dataset")
    summary = sample_data.generate_sample(tmp_path / "generated", settings.data_dir, ANCHOR, days=6)
    days = [read_rows(p) for p in summary.fill_files]
    inbox = settings.goldsky_dataset_dir
    # night 1: five days, a tenth of 2026-10-31's fills held back
    late = days[3][::10]
    late_ids = {r["id"] for r in late}
    for i in range(5):
        write_rows(inbox / f"day{i}.jsonl.gz", [r for r in days[i] if r["id"] not in late_ids])
    _load(settings)
    assert run_dbt(settings, ["run", "--select", f"+{MODEL}", "--quiet"]).success
    # night 2: 2026-11-02, and the held-back fills of 2026-10-31 arrive late
    write_rows(inbox / "day5.jsonl.gz", days[5])
    write_rows(inbox / "late.jsonl.gz", late)
    _load(settings)
    assert run_dbt(settings, ["compile", "--select", MODEL, "--quiet"]).success
    compiled = next((settings.home / "dbt" / "target" / "compiled").rglob(f"{MODEL}.sql")).read_text()

    with warehouse.connect(settings) as ch:
        parts, since_late = ch.query(
            "SELECT count(), countIf(max_time >= toDateTime('2026-10-31', 'UTC')) FROM system.parts "
            "WHERE database = 'raw' AND table = 'order_filled' AND active"
        ).result_rows[0]
    assert parts == 7 and since_late == 4  # a part per delivery; 10-31, 11-01, 11-02 and the late one
    reads = _raw_reads(settings, compiled)
    assert reads, "the plan has no read of raw.order_filled"
    # the new fills (inserted_at skip index) and the re-fold of their keys: neither touches the
    # parts of 10-28 ... 10-30, which hold no fill of a day the night re-folds
    assert max(reads) <= since_late, reads

    # and what it writes equals a rebuild
    assert run_dbt(settings, ["run", "--select", MODEL, "--quiet"]).success
    with warehouse.connect(settings) as ch:
        incremental = ch.query(POSITION_DAYS).result_rows
    assert run_dbt(settings, ["run", "--select", MODEL, "--full-refresh", "--quiet"]).success
    with warehouse.connect(settings) as ch:
        rebuilt = ch.query(POSITION_DAYS).result_rows
    assert incremental == rebuilt and len(rebuilt) > 100


# The stored tables a night looks its changed keys up in, and the models that do it.
KEY_LOOKUPS = {
    "int_position_days": ["analytics.int_position_days"],
    "int_wallet_markets": ["analytics.int_position_days", "analytics.int_wallet_markets"],
    "int_wallet_market_days": ["analytics.int_position_days", "analytics.int_wallet_market_days"],
}


def _prewheres(settings, sql: str) -> dict[str, list[str]]:
    """Each stored table `sql` reads, with the PREWHERE filter of each of its reads ('' for
    a read without one)."""
    with warehouse.connect(settings) as ch:
        plan = [
            line
            for (line,) in ch.query("EXPLAIN actions = 1 " + sql, settings={"join_use_nulls": 1}).result_rows
        ]
    reads: dict[str, list[str]] = {}
    for i, line in enumerate(plan):
        if m := re.search(r"ReadFromMergeTree \((analytics\.\w+)\)", line):
            details = []
            for later in plan[i + 1 :]:
                if "ReadFromMergeTree" in later or later.lstrip().startswith(
                    ("Expression", "Filter", "Join")
                ):
                    break
                details.append(later)
            found = next((d for d in details if "Prewhere filter column" in d), "")
            reads.setdefault(m.group(1), []).append(found)
    return reads


@pytest.fixture(scope="module")
def second_night(tmp_path_factory) -> tuple:
    """A warehouse built on two sample days, with a third day loaded and the incremental
    models compiled against it: (settings, {model: compiled SQL of its night})."""
    tmp_path = tmp_path_factory.mktemp("second_night")
    settings = make_settings(tmp_path, GOLDSKY_SOURCE="dataset")
    summary = sample_data.generate_sample(tmp_path / "generated", settings.data_dir, ANCHOR, days=3)
    inbox = settings.goldsky_dataset_dir
    for i, path in enumerate(summary.fill_files[:2]):
        write_rows(inbox / f"day{i}.jsonl.gz", read_rows(path))
    _load(settings)
    assert run_dbt(settings, ["run", "--select", "+int_wallet_market_days", "--quiet"]).success
    write_rows(inbox / "day2.jsonl.gz", read_rows(summary.fill_files[2]))
    _load(settings)
    models = " ".join(KEY_LOOKUPS)
    assert run_dbt(settings, ["compile", "--select", models, "--quiet"]).success
    compiled = {
        model: next((settings.home / "dbt" / "target" / "compiled").rglob(f"{model}.sql")).read_text()
        for model in KEY_LOOKUPS
    }
    return settings, compiled


def test_a_nights_key_lookups_probe_a_hash_before_the_keys(second_night):
    """The changed keys of a night fall in every granule of the stored tables, so each lookup
    scans; it probes the keys' 64-bit hashes first (key_prewhere: a third cheaper at 10M)
    and the exact keys after. Every incremental read of those tables by key does so, but
    the two that probe int_position_days' stored position_key (below)."""
    settings, compiled = second_night
    for model, tables in KEY_LOOKUPS.items():
        reads = _prewheres(settings, compiled[model])
        for table in tables:
            if (model, table) in POSITION_KEY_LOOKUPS:
                continue
            hashed = [p for p in reads.get(table, []) if "cityHash64" in p]
            assert hashed, (model, table, reads.get(table))


# The lookups that probe int_position_days' stored 128-bit key instead of hashing strings.
POSITION_KEY_LOOKUPS = {
    ("int_wallet_markets", "analytics.int_position_days"),
    ("int_wallet_market_days", "analytics.int_position_days"),
}


def test_the_grain_and_the_daily_rows_look_checkpoints_up_by_the_stored_position_key(second_night):
    """The grain's newest checkpoints and the daily rows' day checkpoints of a night's keys
    are read by a PREWHERE on int_position_days' stored position_key (one UInt128 a row),
    not by hashing the two strings of every row: at the 10M bench night the grain's read took
    0.33 s instead of 1.1 s hashing the two strings."""
    settings, compiled = second_night
    for model, table in POSITION_KEY_LOOKUPS:
        reads = _prewheres(settings, compiled[model])[table]
        probed = [p for p in reads if "position_key" in p]
        assert probed and not any("cityHash64" in p for p in probed), (model, reads)


# The key sets each night query reads more than once (a hash probe, an exact IN, a join).
KEY_SETS = {
    "int_position_days": {"new_fills", "touched"},
    "int_wallet_markets": {"candidates", "pair_positions"},
    "int_wallet_market_days": {"changed_pairs", "pair_tokens"},
}


def _cte_references(settings, sql: str) -> dict[str, set[bool]]:
    """Each CTE of `sql`'s query tree with whether its references are materialized. The
    session setting is the one the embedded dbt profile sets (warehouse.connect does not)."""
    with warehouse.connect(settings) as ch:
        tree = ch.query(
            "EXPLAIN QUERY TREE " + sql, settings={"join_use_nulls": 1, "enable_materialized_cte": 1}
        ).result_rows
    found: dict[str, set[bool]] = {}
    for (line,) in tree:
        if m := re.search(r"cte_name: (\w+)", line):
            found.setdefault(m.group(1), set()).add("is_materialized: 1" in line)
    return found


def test_a_nights_key_sets_are_computed_once(second_night):
    """ClickHouse inlines a CTE at every reference, so a night's key set was built again by
    each lookup that reads it (at 10M: int_wallet_markets 4.5 s, 3.4 s with each set built
    once). The embedded profile turns the engine's materialized CTEs on and the models mark
    their key sets `computed_once()`: each is a materialized CTE, at every reference."""
    settings, compiled = second_night
    for model, key_sets in KEY_SETS.items():
        references = _cte_references(settings, compiled[model])
        for name in key_sets:
            assert references.get(name) == {True}, (model, name, references.get(name))
