"""A strategy's watchlist: the page (GET .../watchlist) and the live stream (.../stream)."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Query
from fastapi.responses import JSONResponse, StreamingResponse

from api import stream
from api.deps import AUTH, ERRORS, NOT_FOUND, Pool, State, StrategyId, strategy_exists
from api.models import WatchlistPage

router = APIRouter(tags=["strategies"], dependencies=AUTH, responses={**ERRORS, **NOT_FOUND})

MAX_EVENT_ID = 2**63 - 1  # watchlist_events.id is a bigint
_DECIMAL = re.compile(r"[0-9]{1,19}", re.ASCII)


def parse_last_event_id(value: str) -> int:
    """The header's event id: ASCII digits only (str.isdigit accepts '²', which int() refuses),
    within a bigint; anything else is the client's mistake, 422."""
    text = value.strip()
    if not _DECIMAL.fullmatch(text) or int(text) > MAX_EVENT_ID:
        shown = value if value.isprintable() and len(value) <= 40 else repr(value[:40])
        raise HTTPException(
            422,
            f"Last-Event-ID must be a non-negative integer event id (at most {MAX_EVENT_ID}), got {shown}",
        )
    return int(text)


@router.get("/api/strategies/{strategy_id}/watchlist", response_model=WatchlistPage)
async def get_watchlist(
    pool: Pool,
    strategy_id: StrategyId,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
):
    """The strategy's watchlist, newest first, with the `alerts` flag per entry."""
    await strategy_exists(pool, strategy_id)
    async with pool.connection() as conn:
        cur = await conn.execute(
            stream.ENTRY_SQL
            + " WHERE w.strategy_id = %s ORDER BY w.added_at DESC, w.id DESC LIMIT %s OFFSET %s",
            (strategy_id, limit, offset),
        )
        entries = [stream.entry_json(r[0]) for r in await cur.fetchall()]
        cur = await conn.execute(
            "SELECT count(*) FROM strategy_watchlists WHERE strategy_id = %s", (strategy_id,)
        )
        total = int((await cur.fetchone())[0])
    return JSONResponse(
        {"strategy_id": strategy_id, "limit": limit, "offset": offset, "total": total, "entries": entries}
    )


@router.get(
    "/api/strategies/{strategy_id}/watchlist/stream",
    responses={200: {"content": {"text/event-stream": {}}, "description": "Server-Sent Events"}},
)
async def stream_watchlist(
    state: State,
    pool: Pool,
    strategy_id: StrategyId,
    limit: Annotated[int, Query(ge=1, le=1000, description="entries in the snapshot")] = 100,
    last_event_id_query: Annotated[
        int | None, Query(alias="last_event_id", ge=0, le=MAX_EVENT_ID, description="as Last-Event-ID")
    ] = None,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
):
    """A snapshot, then one event per change as it happens; heartbeats; resumes from
    `Last-Event-ID` (or `?last_event_id=`) by replaying the changes after it."""
    resume = last_event_id_query
    if last_event_id is not None and last_event_id.strip():
        resume = parse_last_event_id(last_event_id)
    await strategy_exists(pool, strategy_id)
    body = stream.watchlist_stream(state.hub, pool, strategy_id, resume, limit, state.api.stream_heartbeat_s)
    return StreamingResponse(
        body,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
