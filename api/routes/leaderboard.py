"""GET /api/leaderboard: the best wallets over a time window, from fct_leaderboard."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from api import marts
from api.deps import AUTH, ERRORS, State
from api.models import Leaderboard

router = APIRouter(tags=["leaderboard"], dependencies=AUTH, responses=ERRORS)

Window = Literal["1d", "7d", "30d", "all"]
By = Literal["pnl", "volume"]


@router.get("/api/leaderboard", response_model=Leaderboard)
async def leaderboard(
    state: State,
    window: Annotated[
        Window, Query(description="the last 1, 7 or 30 UTC days up to the newest day with fills, or all time")
    ] = "7d",
    category: Annotated[
        str, Query(max_length=100, description="a canonical category (exact); empty = all categories")
    ] = "",
    by: Annotated[By, Query(description="rank by realized PnL or by traded volume")] = "pnl",
    limit: Annotated[int, Query(ge=1, le=1000, description="how many wallets, best first")] = 100,
):
    """The top wallets by realized PnL or volume within the window (exact USD amounts as
    strings). An unknown category has no wallets: an empty list, not a 404."""
    return await state.reader.run(
        marts.leaderboard, state.settings, window, category, by, limit, state.api.retry_after_s
    )
