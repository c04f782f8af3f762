"""GET /api/health: the healthcheck's report (no token needed)."""

from __future__ import annotations

import json

from fastapi import APIRouter

from api.deps import State
from api.responses import RedactedJSONResponse

router = APIRouter(tags=["health"])


@router.get("/api/health", responses={503: {"description": "unhealthy"}})
async def get_health(state: State) -> RedactedJSONResponse:
    """The healthcheck report (cached briefly); 503 when its overall status is an error."""
    code, report = await state.health.get(state.reader.run)
    return RedactedJSONResponse(json.loads(json.dumps(report, default=str)), status_code=code)
