"""A strategy's watchlist: the page (GET .../watchlist), the live stream (.../stream) and the
stream tokens a browser opens it with (POST /api/stream-tokens)."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Depends, Header, HTTPException, Query
from fastapi.responses import StreamingResponse

from api import stream
from api.deps import (
    AUTH,
    ERRORS,
    NOT_FOUND,
    Credentials,
    Pool,
    State,
    StrategyId,
    strategy_exists,
    token_matches,
    unauthorized,
)
from api.models import StreamToken, StreamTokenRequest, WatchlistPage
from api.responses import RedactedJSONResponse

router = APIRouter(tags=["strategies"], responses={**ERRORS, **NOT_FOUND})

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


async def stream_access(
    state: State,
    credentials: Credentials,
    strategy_id: StrategyId,
    token: Annotated[
        str | None,
        Query(
            max_length=200,
            description="a stream token from POST /api/stream-tokens, for clients that cannot send "
            "Authorization (EventSource); never the API token itself",
        ),
    ] = None,
) -> None:
    """The stream's own guard: the bearer token, or a valid stream token for this strategy."""
    if state.api.token is None or token_matches(credentials, state.api.token):
        return
    if token is None:
        raise unauthorized("missing bearer token or stream token (?token= from POST /api/stream-tokens)")
    try:
        state.tokens.verify(token, strategy_id)
    except PermissionError as exc:
        raise unauthorized(f"invalid stream token: {exc}") from None


@router.get("/api/strategies/{strategy_id}/watchlist", response_model=WatchlistPage, dependencies=AUTH)
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
    return RedactedJSONResponse(
        {"strategy_id": strategy_id, "limit": limit, "offset": offset, "total": total, "entries": entries}
    )


@router.get(
    "/api/strategies/{strategy_id}/watchlist/stream",
    dependencies=[Depends(stream_access)],
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
    `Last-Event-ID` (or `?last_event_id=`) by replaying the changes after it. With API_TOKEN
    set: `Authorization: Bearer`, or `?token=` from POST /api/stream-tokens."""
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


@router.post("/api/stream-tokens", response_model=StreamToken, dependencies=AUTH, tags=["stream"])
async def issue_stream_token(state: State, pool: Pool, request: StreamTokenRequest | None = None):
    """A short-lived signed token that opens a strategy's stream as `?token=` (for EventSource,
    which cannot send Authorization). Lifetime API_STREAM_TOKEN_TTL_S; accepted by the stream
    route only."""
    strategy_id = request.strategy_id if request else None
    if strategy_id is not None:
        await strategy_exists(pool, strategy_id)
    token, expires_at = state.tokens.issue(strategy_id)
    url = f"/api/strategies/{strategy_id}/watchlist/stream?token={token}" if strategy_id else None
    return StreamToken(token=token, expires_at=expires_at, strategy_id=strategy_id, stream_url=url)
