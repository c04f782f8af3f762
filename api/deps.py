"""What the routers share: the application's state and the dependencies that read it.

`create_app` puts one `AppState` on `app.state.cascadian`; routes reach it (and the bearer
check, the Postgres pool) through the dependencies below, so a router module needs nothing
from the app factory but these names.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from psycopg_pool import AsyncConnectionPool

from api.answer_cache import AnswerCache
from api.errors import Unavailable
from api.health import HealthCache
from api.models import Problem
from api.reader import WarehouseReader
from api.tokens import StreamTokens
from pipeline.config import ApiSettings, Settings

STRATEGY_ID = r"^[a-z0-9][a-z0-9_-]{0,63}$"
ADDRESS = r"^0x[0-9a-fA-F]{40}$"


@dataclass
class AppState:
    settings: Settings
    api: ApiSettings
    health: HealthCache
    tokens: StreamTokens
    reader: WarehouseReader
    answers: AnswerCache
    pool: AsyncConnectionPool | None = None  # set by the lifespan when POSTGRES_URL is set
    hub: Any = None  # api.stream.ChangeHub, idem


# Dependencies are coroutines: FastAPI runs a plain `def` dependency in a worker thread.
async def app_state(request: Request) -> AppState:
    return request.app.state.cascadian


State = Annotated[AppState, Depends(app_state)]

bearer = HTTPBearer(auto_error=False, description="API_TOKEN, when the server sets one")
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


def token_matches(credentials: HTTPAuthorizationCredentials | None, token: str) -> bool:
    return (
        credentials is not None
        and credentials.scheme.lower() == "bearer"
        and hmac.compare_digest(credentials.credentials.encode(), token.encode())
    )


def unauthorized(detail: str = "missing or wrong bearer token") -> HTTPException:
    return HTTPException(401, detail, headers={"WWW-Authenticate": "Bearer"})


async def require_token(state: State, credentials: Credentials) -> None:
    """Every route but /api/health: `Authorization: Bearer <API_TOKEN>` when API_TOKEN is set."""
    if state.api.token is not None and not token_matches(credentials, state.api.token):
        raise unauthorized()


async def pg_pool(state: State) -> AsyncConnectionPool:
    if state.pool is None:
        raise Unavailable("POSTGRES_URL not set: the app database is not configured")
    return state.pool


Pool = Annotated[AsyncConnectionPool, Depends(pg_pool)]
StrategyId = Annotated[str, Path(pattern=STRATEGY_ID, description="strategy id (slug)")]
Address = Annotated[str, Path(pattern=ADDRESS, description="0x + 40 hex characters")]

AUTH = [Depends(require_token)]
ERRORS: dict[int | str, dict[str, Any]] = {401: {"model": Problem}, 503: {"model": Problem}}
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": Problem}}


async def fetch_json(pool: AsyncConnectionPool, sql: str, params: tuple = ()) -> list[dict]:
    """Rows of a `SELECT to_jsonb(...)` query."""
    async with pool.connection() as conn:
        cur = await conn.execute(sql, params)
        return [r[0] for r in await cur.fetchall()]


async def strategy_exists(pool: AsyncConnectionPool, strategy_id: str) -> None:
    async with pool.connection() as conn:
        cur = await conn.execute("SELECT 1 FROM strategies WHERE id = %s", (strategy_id,))
        if await cur.fetchone() is None:
            raise HTTPException(404, f"unknown strategy {strategy_id!r}")
