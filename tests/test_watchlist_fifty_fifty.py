"""A condition resolved 50-50 (payouts [1, 1], issue 13) is resolved for the watchlist signals:
it counts as a resolution, a position in it is no longer "opened in an unresolved market", and
it is not among the active markets. The signals read `dim_markets.is_resolved` (the dbt
project's rule) and must not restate it as YES/NO; the marts are made by hand here so the
test does not depend on dbt."""

from __future__ import annotations

import datetime as dt

import pytest

from ingest.tables import ensure_tables
from pipeline import warehouse
from tests.support.factories import condition, wallet
from tests.support.settings import SAMPLE_NOW, make_settings
from watchlist import signals

USD = 1_000_000
T0 = SAMPLE_NOW - dt.timedelta(days=1)
FIFTY, OPEN, YES = condition(71), condition(72), condition(73)
W = wallet(171)

DIM_MARKETS = """
CREATE TABLE analytics.dim_markets (
    condition_id String, market_id Nullable(String), question Nullable(String), category String,
    end_date Nullable(DateTime64(3, 'UTC')), is_resolved Bool, resolved_outcome Nullable(String),
    payout_numerators Array(UInt64)
) ENGINE = MergeTree ORDER BY condition_id
"""
POSITIONS = """
CREATE TABLE analytics.fct_wallet_positions (
    wallet String, token_id String, condition_id Nullable(String), outcome_index Nullable(UInt8),
    amount UInt64, open_amount UInt64, volume UInt64, n_fills UInt64,
    first_fill_at DateTime64(3, 'UTC'), last_fill_at DateTime64(3, 'UTC')
) ENGINE = MergeTree ORDER BY (wallet, token_id)
"""
CATEGORY_PNL = """
CREATE TABLE analytics.fct_wallet_category_pnl (
    wallet String, category String, realized_pnl Int128, n_markets UInt64, n_resolved_markets UInt64
) ENGINE = MergeTree ORDER BY (wallet, category)
"""


def build(settings, fifty_fifty_resolved: bool = True, with_yes: bool = True) -> None:
    """Three markets: one resolved 50-50, one open, one resolved YES earlier (unless not
    `with_yes`); the wallet bought into the 50-50 and the open market an hour before T0."""
    markets = [
        (FIFTY, "771", "Coin flip?", "Sports", None, fifty_fifty_resolved, "50-50", [1, 1]),
        (OPEN, "772", "Still open?", "Sports", None, False, None, []),
        (YES, "773", "Done?", "Sports", None, True, "YES", [1, 0]),
    ][: 3 if with_yes else 2]
    fills_at = T0 - dt.timedelta(hours=1)
    positions = [
        (W, f"{c}-0", c, 0, 10 * USD, 10 * USD, 5 * USD, 1, fills_at, fills_at) for c in (FIFTY, OPEN)
    ]
    with warehouse.connect(settings) as ch:
        ensure_tables(ch)
        for ddl in (DIM_MARKETS, POSITIONS, CATEGORY_PNL):
            ch.command(ddl)
        ch.insert(
            "analytics.dim_markets",
            markets,
            column_names=[
                "condition_id",
                "market_id",
                "question",
                "category",
                "end_date",
                "is_resolved",
                "resolved_outcome",
                "payout_numerators",
            ],
        )
        ch.insert(
            "analytics.fct_wallet_positions",
            positions,
            column_names=[
                "wallet",
                "token_id",
                "condition_id",
                "outcome_index",
                "amount",
                "open_amount",
                "volume",
                "n_fills",
                "first_fill_at",
                "last_fill_at",
            ],
        )
        ch.insert(
            "analytics.fct_wallet_category_pnl",
            [(W, "Sports", 3 * USD, 3, 2)],
            column_names=["wallet", "category", "realized_pnl", "n_markets", "n_resolved_markets"],
        )


@pytest.fixture
def fifty_fifty(tmp_path):
    settings = make_settings(tmp_path)
    build(settings)
    return settings


def test_a_fifty_fifty_market_is_resolved_for_the_signals(fifty_fifty):
    with warehouse.connect(fifty_fifty) as ch:
        signals.check_signals_computable(ch)  # raises when it finds no resolved market
        dim = {m.condition_id: m for m in signals.market_dimension(ch)}
        opened = signals.opened_positions(ch, [W], T0 - dt.timedelta(hours=24), T0)
        active, reason = signals.most_active_markets(ch, per_category=10)
        found = signals.lookup_markets(ch, [FIFTY], [])
    assert dim[FIFTY].is_resolved is True and dim[FIFTY].resolved_outcome == "50-50"
    assert [p.condition_id for p in opened] == [OPEN]  # not the 50-50 market
    assert reason is None and [m.condition_id for m in active] == [OPEN]
    assert [(m.condition_id, m.is_resolved) for m in found] == [(FIFTY, True)]


def test_a_fifty_fifty_market_alone_makes_the_signals_computable(tmp_path):
    """The only resolved market of the warehouse is a 50-50 one: the wallets can be ranked."""
    settings = make_settings(tmp_path)
    build(settings, with_yes=False)
    with warehouse.connect(settings) as ch:
        assert (
            int(ch.command("SELECT countIf(resolved_outcome IN ('YES', 'NO')) FROM analytics.dim_markets"))
            == 0
        )
        signals.check_signals_computable(ch)


def test_the_same_market_unresolved_is_a_signal(tmp_path):
    """The control: with the 50-50 market not yet resolved, the wallet's position in it is an
    opened position and the market is active (so the first test can fail)."""
    settings = make_settings(tmp_path)
    build(settings, fifty_fifty_resolved=False)
    with warehouse.connect(settings) as ch:
        opened = signals.opened_positions(ch, [W], T0 - dt.timedelta(hours=24), T0)
        active, _ = signals.most_active_markets(ch, per_category=10)
    assert sorted(p.condition_id for p in opened) == sorted([FIFTY, OPEN])
    assert sorted(m.condition_id for m in active) == sorted([FIFTY, OPEN])
