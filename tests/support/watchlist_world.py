"""A small, hand-made world for the watchlist and API tests (registered in conftest.py).

Wallets, by realized PnL on resolved markets (all fills 5 days before T0 unless said):
    A  +180  bought YES on m1, m2, m3 at 0.40 (all resolve YES)          rank 1
    B  +100  bought YES on m1 at 0.50, m2 at 0.60, m15 at 0.90 (YES)     rank 2
    D   +90  bought YES on m1 at 0.10: one resolved market only          not qualified
    C  -100  bought YES on m4, m5 at 0.50 (both resolve NO)              negative: no signal
Positions opened near T0 (the newest fill), in unresolved markets unless said:
    A  m10 (Politics) and m11 (Crypto) at T0 - 2 h
    B  m10 at T0 - 1 h (A, better ranked, triggers it), m12 (Sports) at T0 - 2 h,
       m14 (Crypto) at T0 - 3 days (before the look-back), m15 (resolved market)
    C  m13 (Politics) at T0          D  m16 (Sports) at T0 - 2 h
So with WATCHLIST_MIN_RESOLVED_MARKETS=2 and a 24 h look-back, the signals are exactly
m10 (A), m11 (A) and m12 (B).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import pytest

from pipeline.config import Settings
from tests.support.factories import (
    condition,
    fill,
    market,
    resolution,
    token,
    wallet,
    write_jsonl,
    write_reference,
)
from tests.support.settings import SAMPLE_NOW, make_settings

T0 = int((SAMPLE_NOW - dt.timedelta(days=1)).timestamp())
HOUR, DAY = 3600, 86400
USD = 1_000_000

WALLETS = {"A": wallet(101), "B": wallet(102), "C": wallet(103), "D": wallet(104)}
CATEGORY = {
    1: "Politics",
    2: "Politics",
    3: "Politics",
    4: "Politics",
    5: "Politics",
    10: "Politics",
    11: "Crypto",
    12: "Sports",
    13: "Politics",
    14: "Crypto",
    15: "Politics",
    16: "Sports",
    17: "Sports",
}
CANONICAL = {"Politics": "Politics / Geopolitics", "Crypto": "Crypto / DeFi", "Sports": "Sports"}
RESOLVED = {1: "YES", 2: "YES", 3: "YES", 4: "NO", 5: "NO", 15: "YES"}

# (wallet, market, hours before T0, price in cents)
BUYS = [
    ("A", 1, 120, 40),
    ("A", 2, 120, 40),
    ("A", 3, 120, 40),
    ("B", 1, 120, 50),
    ("B", 2, 120, 60),
    ("B", 15, 120, 90),
    ("D", 1, 120, 10),
    ("C", 4, 120, 50),
    ("C", 5, 120, 50),
    ("A", 10, 2, 30),
    ("A", 11, 2, 30),
    ("B", 10, 1, 31),
    ("B", 12, 2, 45),
    ("B", 14, 72, 20),
    ("B", 15, 2, 95),
    ("C", 13, 0, 50),
    ("D", 16, 2, 50),
]

# the signal markets and who triggers each
EXPECTED = {10: ("A", 1), 11: ("A", 1), 12: ("B", 2)}

STRATEGIES = [
    # id, name, active, category filter, max_wallet_rank
    ("all", "All markets", True, None, None),
    ("politics", "Politics", True, ["Politics / Geopolitics"], None),
    ("crypto-sports", "Crypto and sports", True, ["Crypto / DeFi", "Sports"], None),
    ("rank1", "Best wallet only", True, None, 1),
    ("paused", "Paused", False, None, None),
]


def market_id(n: int) -> str:
    return str(500000 + n)


def fills() -> list[dict[str, Any]]:
    rows = []
    for i, (who, n, hours, cents) in enumerate(BUYS):
        qty = 100 * USD
        rows.append(
            fill(1000 + i, T0 - hours * HOUR, WALLETS[who], "BUY", token(n, 0), qty, qty * cents // 100)
        )
    return rows


def write_world(settings: Settings) -> None:
    markets = [market(n, CATEGORY[n]) for n in sorted(CATEGORY)]
    resolutions = [resolution(n, RESOLVED.get(n)) for n in sorted(CATEGORY)]
    write_reference(settings.data_dir, markets, resolutions)
    write_jsonl(settings.goldsky_dataset_dir / "fills.jsonl", fills())


@dataclass
class World:
    settings: Settings  # warehouse built, postgres_url set
    pg_url: str
    first: Any  # StepResult of the first publish
    config: Any


def insert_strategies(url: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        for sid, name, active, cats, rank in STRATEGIES:
            conn.execute(
                "INSERT INTO strategies (id, name, active, category_filter, max_wallet_rank) "
                "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (id) DO NOTHING",
                (sid, name, active, cats, rank),
            )


def context(settings: Settings, run_id: str = "test-run"):
    from pipeline.steps import RunContext

    return RunContext(settings=settings, run_id=run_id, trigger="test", started_at=SAMPLE_NOW)


@pytest.fixture(scope="session")
def watchlist_world(tmp_path_factory, pg_url) -> World:
    """The small world loaded and its marts built (`dbt run`: the marts' tests run elsewhere),
    the app database migrated with the test strategies, and a first publish."""
    from nightly.steps import step_ingest_fills, step_load_reference
    from pipeline.config import WatchlistSettings
    from pipeline.dbt_chdb import run_dbt
    from watchlist.migrations import migrate
    from watchlist.publish import publish

    base = make_settings(tmp_path_factory.mktemp("watchlist"), GOLDSKY_SOURCE="dataset")
    write_world(base)
    for step in (step_ingest_fills, step_load_reference):
        result = step(context(base, "world"))
        assert result.status == "success", (result.error, result.warnings)
    outcome = run_dbt(base, ["run", "--quiet"])
    assert outcome.success, (outcome.error, outcome.failures)
    settings = base.replace(postgres_url=pg_url)
    migrate(pg_url)
    insert_strategies(pg_url)
    config = WatchlistSettings(min_resolved_markets=2, min_coverage=0.1, top_wallets=20, lookback_hours=24)
    first = publish(context(settings, "first-run"), config)
    assert first.status == "success", (first.error, first.warnings)
    return World(settings, pg_url, first, config)


def expected_condition(n: int) -> str:
    return condition(n)
