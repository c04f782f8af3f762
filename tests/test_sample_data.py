"""The generated sample must be reproducible and must contain every trap the real data has."""

from __future__ import annotations

import collections
import datetime as dt
import gzip
import json
import os
import re
from pathlib import Path

import pytest

from ingest import sample_data as sd

ANCHOR = dt.date(2025, 10, 29)
HEX64 = re.compile(r"^0x[0-9a-f]{64}$")
ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
DECIMAL = re.compile(r"^[0-9]+$")
CANONICAL = [
    "Politics / Geopolitics",
    "Macro / Economy",
    "Earnings / Business",
    "Crypto / DeFi",
    "Sports",
    "Pop Culture / Media",
    "Legal / Enforcement",
    "Weather / Disaster / Misc",
]


def _read_fills(path: Path) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    root = tmp_path_factory.mktemp("sample")
    summary = sd.generate_sample(root / "fills", root / "data", ANCHOR)
    fills = [row for path in summary.fill_files for row in _read_fills(path)]
    data = root / "data"
    resolution = json.loads((data / sd.RESOLUTION_MAP).read_text())
    markets = [json.loads(line) for line in (data / sd.MARKETS).read_text().splitlines()]
    definitions = json.loads((data / sd.CATEGORY_DEFINITIONS).read_text())
    return {
        "root": root,
        "summary": summary,
        "fills": fills,
        "resolution": resolution,
        "markets": markets,
        "definitions": definitions,
    }


def _side(row: dict) -> tuple[str, str, int, int]:
    """(side, token, quantity, collateral) from the view of the `maker` field (DOMAIN.md §2)."""
    if row["maker_asset_id"] == "0":
        return "BUY", row["taker_asset_id"], int(row["taker_amount_filled"]), int(row["maker_amount_filled"])
    return "SELL", row["maker_asset_id"], int(row["maker_amount_filled"]), int(row["taker_amount_filled"])


def _bucket(market: dict, definitions: dict) -> str:
    """Exact whole-value matching, raw category first, then tags."""
    category = market["category"].strip().lower()
    for entry in definitions["categories"]:
        if category and category in entry["categories"]:
            return entry["name"]
    for entry in definitions["categories"]:
        if any(tag.lower() in entry["tags"] for tag in market["tags"]):
            return entry["name"]
    return definitions["default"]


def test_same_arguments_give_identical_bytes(tmp_path):
    a = sd.generate_sample(tmp_path / "a" / "fills", tmp_path / "a" / "data", ANCHOR, days=2)
    b = sd.generate_sample(tmp_path / "b" / "fills", tmp_path / "b" / "data", ANCHOR, days=2)
    assert a.n_fills == b.n_fills and len(a.fill_files) == 2
    assert _tree(tmp_path / "a") == _tree(tmp_path / "b")
    other = sd.generate_sample(tmp_path / "c" / "fills", tmp_path / "c" / "data", ANCHOR, days=2, seed=7)
    assert other.fill_files[0].read_bytes() != a.fill_files[0].read_bytes()


def test_day_files_do_not_depend_on_the_anchor(tmp_path):
    first = sd.generate_fills(tmp_path / "a", ANCHOR, days=3)
    later = sd.generate_fills(tmp_path / "b", ANCHOR + dt.timedelta(days=1), days=3)
    assert [p.name for p in first[1:]] == [p.name for p in later[:2]]
    for old, new in zip(first[1:], later[:2]):
        assert old.read_bytes() == new.read_bytes()
    assert later[-1].name == f"order_filled-{ANCHOR + dt.timedelta(days=1)}.jsonl.gz"


def test_rerun_leaves_identical_files_untouched(tmp_path):
    paths = sd.generate_fills(tmp_path, ANCHOR, days=2)
    for p in paths:  # a rewrite would reset this mtime, even on coarse-mtime file systems
        os.utime(p, ns=(1, 1))
    again = sd.generate_fills(tmp_path, ANCHOR + dt.timedelta(days=1), days=3)
    assert all(p.stat().st_mtime_ns == 1 for p in paths)
    assert again[:2] == paths and again[-1].exists()
    assert not list(tmp_path.glob(".*.tmp"))  # no temp files left behind


def test_one_collateral_side_and_goldsky_types(sample):
    for row in sample["fills"]:
        assert (row["maker_asset_id"] == "0") != (row["taker_asset_id"] == "0")
        assert isinstance(row["timestamp"], int) and isinstance(row["vid"], int)
        assert isinstance(row["block_number"], int)
        for key in ("maker_amount_filled", "taker_amount_filled", "fee", "maker_asset_id", "taker_asset_id"):
            assert isinstance(row[key], str) and DECIMAL.match(row[key])
        assert int(row["maker_amount_filled"]) > 0 and int(row["taker_amount_filled"]) > 0
        assert row["chain_id"] == 137 and row["_gs_chain"] == "matic" and row["_gs_op"] == "c"
        _, _token, qty, collateral = _side(row)
        assert 10_000 <= collateral * 10**6 // qty <= 990_000  # price in [0.01, 0.99]


def test_ids_and_addresses(sample):
    fills = sample["fills"]
    for row in fills:
        assert HEX64.match(row["transaction_hash"]) and HEX64.match(row["order_hash"])
        assert row["id"] == f"{row['transaction_hash']}_{row['order_hash']}"
        assert ADDRESS.match(row["maker"]) and ADDRESS.match(row["taker"])
    assert len({r["id"] for r in fills}) == len(fills)
    assert any(r["maker"] != r["maker"].lower() for r in fills)  # pipeline must lower-case


def test_file_days_and_row_order(sample):
    for path in sample["summary"].fill_files:
        day = dt.date.fromisoformat(path.name[len("order_filled-") : -len(".jsonl.gz")])
        start = int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp())
        stamps = [r["timestamp"] for r in _read_fills(path)]
        assert all(start <= t < start + 86_400 for t in stamps)
        assert stamps != sorted(stamps)


def test_a_run_late_in_the_next_day_finds_fills_under_the_warning_age(sample):
    """`make run` generates the sample up to the last complete UTC day (sample_anchor) and the
    health check warns when the newest fill is older than trades_warn_hours: each day's
    fills must reach into its last minute, as Polymarket's do, or a run late in the next
    day (an evening in America) shows a stale-trades warning on a healthy sample."""
    from nightly.steps import sample_anchor
    from pipeline.config import HealthSettings

    warn = dt.timedelta(hours=HealthSettings().trades_warn_hours)
    for path in sample["summary"].fill_files:
        day = dt.date.fromisoformat(path.name[len("order_filled-") : -len(".jsonl.gz")])
        run_at = dt.datetime(day.year, day.month, day.day, 23, 59, tzinfo=dt.UTC) + dt.timedelta(days=1)
        assert sample_anchor(run_at) == day
        newest = max(r["timestamp"] for r in _read_fills(path))
        age = run_at - dt.datetime.fromtimestamp(newest, dt.UTC)
        assert age < warn, f"{path.name}: newest fill {age} old at {run_at:%Y-%m-%d %H:%M} UTC"


def test_matches_are_built_like_the_exchange(sample):
    by_tx = collections.defaultdict(list)
    for row in sample["fills"]:
        by_tx[row["transaction_hash"]].append(row)
    for rows in by_tx.values():
        own = [r for r in rows if r["taker"] == sd.EXCHANGE]
        makers = [r for r in rows if r["taker"] != sd.EXCHANGE]
        assert len(own) == 1 and 1 <= len(makers) <= 3
        taker_side, token, qty, collateral = _side(own[0])
        assert {r["taker"].lower() for r in makers} == {own[0]["maker"].lower()}
        assert len({r["timestamp"] for r in rows}) == 1
        for r in makers:
            side, t, _, _ = _side(r)
            assert t == token and side != taker_side
        assert qty == sum(_side(r)[2] for r in makers)
        assert collateral == sum(_side(r)[3] for r in makers)


def test_resolution_map_header_is_true(sample):
    doc = sample["resolution"]
    entries = doc["resolutions"]
    resolved = [
        e
        for e in entries
        if (e["resolved_outcome"], e["payout_yes"], e["payout_no"]) in {("YES", 1, 0), ("NO", 0, 1)}
    ]
    assert doc["resolved_conditions"] == len(resolved) == sample["summary"].n_resolved_conditions
    assert doc["resolved_conditions"] > 3000
    assert doc["total_conditions"] == len(entries) == sample["summary"].n_map_entries
    assert doc["last_updated"] == "2025-10-30T00:00:00.000Z"
    assert len({e["condition_id"] for e in entries}) == len(entries)
    unknown = [e for e in entries if e["market_id"] == "unknown"]
    assert 150 <= len(unknown) <= 250
    assert all(
        e["error"] == "No market_id available"
        and e["resolved_outcome"] is None
        and e["payout_yes"] is None
        and e["resolved_at"] is None
        for e in unknown
    )
    open_ = [e for e in entries if e["market_id"] != "unknown" and e["resolved_outcome"] is None]
    assert 200 <= len(open_) <= 300 and all("error" not in e for e in open_)
    assert any(e["resolved_at"] is None for e in resolved)
    for e in entries:
        assert HEX64.match(e["condition_id"])
        assert e["market_id"] == "unknown" or DECIMAL.match(e["market_id"])
        if e["resolved_at"]:
            assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", e["resolved_at"])
            assert e["resolved_at"] <= doc["last_updated"]


def test_markets_and_tokens(sample):
    markets = sample["markets"]
    assert len(markets) == sample["summary"].n_markets == 400
    tokens = [t for m in markets for t in m["token_ids"]]
    assert len(set(tokens)) == len(tokens) == 800
    assert all(DECIMAL.match(t) and 70 <= len(t) <= 78 and int(t) < 2**256 for t in tokens)
    assert [int(m["market_id"]) for m in markets] == sorted(int(m["market_id"]) for m in markets)
    map_ids = {e["condition_id"]: e["market_id"] for e in sample["resolution"]["resolutions"]}
    assert all(map_ids[m["condition_id"]] == m["market_id"] for m in markets)

    token_condition = {t: m["condition_id"] for m in markets for t in m["token_ids"]}
    traded_tokens = {_side(r)[1] for r in sample["fills"]}
    assert len(traded_tokens - token_condition.keys()) == 3  # tokens of no listed market
    traded = {token_condition[t] for t in traded_tokens if t in token_condition}
    assert len(traded) == sample["summary"].n_traded_conditions == 300
    outcomes = {e["condition_id"]: e["resolved_outcome"] for e in sample["resolution"]["resolutions"]}
    share = sum(outcomes[c] is not None for c in traded) / len(traded)
    assert 0.75 <= share <= 0.85


def test_every_canonical_category_is_present(sample):
    definitions = sample["definitions"]
    assert [c["name"] for c in definitions["categories"]] == CANONICAL
    assert definitions["default"] == "Uncategorized" and definitions["version"] == 1
    seen_values = collections.Counter(
        (kind, v) for c in definitions["categories"] for kind in ("categories", "tags") for v in c[kind]
    )
    assert all(n == 1 and v == v.lower() for (_, v), n in seen_values.items())

    buckets = {m["question"]: _bucket(m, definitions) for m in sample["markets"]}
    assert set(buckets.values()) == set(CANONICAL) | {"Uncategorized"}
    assert any(m["category"] == "" and buckets[m["question"]] != "Uncategorized" for m in sample["markets"])
    # Substring traps: a keyword rule would call these crypto or war/geopolitics.
    assert buckets["Will Warner Bros. Discovery be acquired by December 31?"] == "Earnings / Business"
    assert buckets["Will Ethan Hawke win Best Actor at the 2026 Oscars?"] == "Pop Culture / Media"
    assert buckets["Will the Golden State Warriors win the 2026 NBA Finals?"] == "Sports"
    assert (
        buckets["Will Congress resolve the government shutdown by November 15?"] == "Politics / Geopolitics"
    )


def test_same_second_bursts_exist(sample):
    per_second = collections.Counter(r["timestamp"] for r in sample["fills"])
    bursts = [n for n in per_second.values() if n >= 5]
    assert len(bursts) >= 3 and max(bursts) <= 20


def test_oversell_and_int64_overflow_exist(sample):
    bought, sold = collections.Counter(), collections.Counter()
    overflow = False
    for row in sample["fills"]:
        side, token, qty, collateral = _side(row)
        (bought if side == "BUY" else sold)[(row["maker"].lower(), token)] += qty
        overflow |= collateral * 10**6 > 2**63  # price x quantity in base units
    assert any(qty > bought[key] for key, qty in sold.items())
    assert overflow


def test_volume_and_wallets(sample):
    fills = sample["fills"]
    assert len(fills) == sample["summary"].n_fills
    assert 10_000 <= len(fills) <= 14_000
    wallets = {r["maker"].lower() for r in fills} - {sd.EXCHANGE}
    assert 200 <= len(wallets) <= 250


def test_marker_and_refusal_to_overwrite_real_files(tmp_path, sample):
    assert (sample["root"] / "data" / ".sample").read_text().strip() == ANCHOR.isoformat()
    real = tmp_path / "data"
    real.mkdir()
    (real / sd.RESOLUTION_MAP).write_text("{}")
    with pytest.raises(sd.SampleDataError):
        sd.generate_reference_files(real, dt.datetime(2025, 10, 29, 18, tzinfo=dt.UTC))
    assert (real / sd.RESOLUTION_MAP).read_text() == "{}"
    with pytest.raises(ValueError, match="aware"):
        sd.generate_reference_files(tmp_path / "x", dt.datetime(2025, 10, 29))  # naive


def test_cli(tmp_path, capsys):
    code = sd.main(
        [
            "--fills-dir",
            str(tmp_path / "f"),
            "--data-dir",
            str(tmp_path / "d"),
            "--anchor",
            "2025-10-29",
            "--days",
            "1",
        ]
    )
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["fill_files"] == 1 and out["n_map_entries"] == 3600
    assert (tmp_path / "f" / "order_filled-2025-10-29.jsonl.gz").exists()
