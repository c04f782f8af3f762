"""Marts made by hand, in the shape of the dbt models, for tests that must not depend on a
dbt build (the API's leaderboard route, the health report's issue-13 sections). One
definition per mart, and tests/test_marts_reference.py checks each shape against the real
mart's columns, so a model change that these stand-ins miss fails a test."""

from __future__ import annotations

from pipeline import names

USD_DECIMAL = "Decimal(38, 6)"

# (column, ClickHouse type) in the mart's order.
CATEGORY_PNL: list[tuple[str, str]] = [
    ("wallet", "String"),
    ("category", "String"),
    ("realized_pnl", "Int128"),
    ("realized_pnl_usd", USD_DECIMAL),
    ("unrealized_pnl", "Int128"),
    ("unrealized_pnl_usd", USD_DECIMAL),
    ("total_pnl", "Int128"),
    ("total_pnl_usd", USD_DECIMAL),
    ("open_value", "UInt64"),
    ("open_value_usd", USD_DECIMAL),
    ("volume", "UInt64"),
    ("volume_usd", USD_DECIMAL),
    ("buy_collateral", "UInt64"),
    ("n_fills", "UInt64"),
    ("n_markets", "UInt64"),
    ("n_resolved_markets", "UInt64"),
    ("wins", "UInt64"),
    ("losses", "UInt64"),
    ("win_rate", "Nullable(Float64)"),
    ("roi", "Nullable(Float64)"),
]
LEADERBOARD: list[tuple[str, str]] = [
    ("time_window", "String"),
    ("window_days", "UInt16"),
    ("as_of_day", "Date"),
    ("window_start", "Date"),
    ("category", "String"),
    ("wallet", "String"),
    ("realized_pnl", "Int128"),
    ("realized_pnl_usd", USD_DECIMAL),
    ("volume", "UInt64"),
    ("volume_usd", USD_DECIMAL),
    ("n_fills", "UInt64"),
    ("rank_pnl", "UInt32"),
    ("rank_volume", "UInt32"),
]
SHAPES = {
    names.FCT_WALLET_CATEGORY_PNL: (CATEGORY_PNL, "wallet, category"),
    names.FCT_LEADERBOARD: (LEADERBOARD, "time_window, category, rank_pnl"),
}


def columns(mart: str) -> list[str]:
    return [name for name, _ in SHAPES[mart][0]]


def create(ch, mart: str) -> None:
    """CREATE TABLE analytics.<mart> with the mart's columns (a MergeTree in its key order)."""
    shape, order_by = SHAPES[mart]
    body = ", ".join(f"{name} {type_}" for name, type_ in shape)
    ch.command(f"CREATE TABLE {names.ANALYTICS}.{mart} ({body}) ENGINE = MergeTree ORDER BY ({order_by})")
