"""The API's response models: what the OpenAPI document shows for each route."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, Field


class Problem(BaseModel):
    """Every error: `{"detail": ...}` (a 422's detail is FastAPI's list of invalid parameters)."""

    detail: Any


class Strategy(BaseModel):
    id: str
    name: str
    description: str
    active: bool
    category_filter: list[str] | None
    max_wallet_rank: int | None
    min_resolved_markets: int | None
    min_coverage: float | None
    entries: int
    active_entries: int
    alerts: int
    last_added_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime


class StrategyList(BaseModel):
    strategies: list[Strategy]


class WatchlistEntry(BaseModel):
    id: int
    strategy_id: str
    market_id: str
    condition_id: str | None
    question: str | None
    category: str
    added_at: dt.datetime
    updated_at: dt.datetime
    reason: str
    status: str
    market_resolved: bool | None
    alerts: bool
    triggering_wallet: str | None
    wallet_rank: int | None
    wallet_coverage: float | None
    metadata: dict[str, Any]


class WatchlistPage(BaseModel):
    strategy_id: str
    limit: int
    offset: int
    total: int
    entries: list[WatchlistEntry]


USD = (
    "exact USD as a decimal string (the marts keep 10^6 units; a float would round), without "
    'exponent or trailing zeros, "0" for zero'
)


class CategoryPnl(BaseModel):
    category: str
    realized_pnl_usd: str = Field(description=f"closed by sells and resolutions; {USD}")
    unrealized_pnl_usd: str = Field(
        description=f"open positions marked to their token's last fill price (payout once resolved); {USD}"
    )
    total_pnl_usd: str = Field(description=f"realized + unrealized; {USD}")
    open_value_usd: str = Field(description=f"what the open positions are worth at the mark; {USD}")
    volume_usd: str
    buy_collateral_usd: str
    n_fills: int
    n_markets: int
    n_resolved_markets: int
    wins: int
    losses: int
    win_rate: float | None
    roi: float | None


class WalletCategoryPnl(BaseModel):
    wallet: str
    total: CategoryPnl
    categories: list[CategoryPnl]


class LeaderboardEntry(BaseModel):
    rank: int = Field(description="1 = best in the window (by the requested ranking); ties by wallet")
    wallet: str
    realized_pnl_usd: str = Field(description=f"realized PnL within the window; {USD}")
    volume_usd: str = Field(description=f"traded collateral within the window; {USD}")
    n_fills: int


class Leaderboard(BaseModel):
    window: str
    category: str = Field(description="the canonical category asked for; empty = all categories")
    by: str
    as_of_day: dt.date | None = Field(description="the last UTC day with fills; null when not built")
    window_start: dt.date | None = Field(description="the window's first UTC day")
    entries: list[LeaderboardEntry]


class StreamTokenRequest(BaseModel):
    strategy_id: str | None = Field(
        None,
        pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$",
        description="the strategy whose stream the token opens; omitted: any strategy's",
    )


class StreamToken(BaseModel):
    token: str = Field(description="pass as `?token=` on the stream route (and nowhere else)")
    expires_at: dt.datetime = Field(description="the stream must be opened before this time")
    strategy_id: str | None
    stream_url: str | None = Field(description="the stream's path with the token, for a scoped token")
