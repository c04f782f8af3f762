"""GET /api/strategies: the strategies and the size of their watchlists."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import AUTH, ERRORS, Pool, fetch_json
from api.models import Strategy, StrategyList
from api.responses import RedactedJSONResponse

router = APIRouter(tags=["strategies"], dependencies=AUTH, responses=ERRORS)


@router.get("/api/strategies", response_model=StrategyList)
async def list_strategies(pool: Pool):
    """Every strategy with the size of its watchlist."""
    rows = await fetch_json(pool, "SELECT to_jsonb(s) FROM strategy_overview AS s ORDER BY s.id")
    return RedactedJSONResponse({"strategies": [{k: r.get(k) for k in Strategy.model_fields} for r in rows]})
