"""The Cascadian read API (FastAPI): strategies, watchlists and their stream, wallet PnL.

Routes (docs/api.md has parameters, examples and the stream's format):

    GET /api/health                                  healthcheck JSON, 200 or 503 (no token)
    GET /api/strategies                              the strategies
    GET /api/strategies/{id}/watchlist               newest first, limit 1..1000, offset >= 0
    GET /api/strategies/{id}/watchlist/stream        Server-Sent Events, Last-Event-ID resume
    GET /api/wallets/{address}/category-pnl          from the ClickHouse marts
    GET /openapi.json, /docs                         the OpenAPI document and its viewer

Read-only: Postgres connections are pooled and opened read-only with a statement timeout;
ClickHouse is opened per request and closed at once (the embedded engine admits one
process: while the pipeline holds it the answer is 503 with Retry-After).
"""

import asyncio
import contextlib
import datetime as dt
import hmac
import json
import logging
from decimal import Decimal
from typing import Annotated, Any

import psycopg
from fastapi import Depends, FastAPI, Header, HTTPException, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from pydantic import BaseModel

from api import stream
from api.health import HealthCache
from pipeline import warehouse
from pipeline.config import ApiSettings, Settings, load_settings

log = logging.getLogger(__name__)

STRATEGY_ID = r"^[a-z0-9][a-z0-9_-]{0,63}$"
ADDRESS = r"^0x[0-9a-fA-F]{40}$"
STREAM_SUFFIX = "/watchlist/stream"


# --- response models (for the OpenAPI document) ----------------------------------------------


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


class CategoryPnl(BaseModel):
    category: str
    realized_pnl_usd: str
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


class Problem(BaseModel):
    detail: Any


# --- errors ---------------------------------------------------------------------------------


class Unavailable(Exception):
    def __init__(self, detail: str, retry_after: int | None = None):
        super().__init__(detail)
        self.detail, self.retry_after = detail, retry_after


def _problem(status: int, detail: str, retry_after: int | None = None) -> JSONResponse:
    headers = {"Retry-After": str(retry_after)} if retry_after else None
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


# --- middleware: a timeout on every request but the stream ----------------------------------


class RequestTimeout:
    """Answers 504 when a request takes longer than its timeout. The stream is exempt (it
    lives as long as its client; each of its queries has the statement timeout); paths in
    `overrides` have their own timeout (the healthcheck bounds its checks itself)."""

    def __init__(self, app, seconds: float, overrides: dict[str, float] | None = None):
        self.app, self.default, self.overrides = app, seconds, overrides or {}

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"].endswith(STREAM_SUFFIX):
            return await self.app(scope, receive, send)
        seconds = self.overrides.get(scope["path"], self.default)
        started = False

        async def tracking_send(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await asyncio.wait_for(self.app(scope, receive, tracking_send), seconds)
        except TimeoutError:
            if started:
                raise
            response = _problem(504, f"the request took longer than {seconds:g} s")
            await response(scope, receive, send)


# --- the application ------------------------------------------------------------------------


def _pool_kwargs(url: str, api: ApiSettings) -> dict[str, Any]:
    options = conninfo_to_dict(url).get("options") or ""
    options = (
        f"{options} -c default_transaction_read_only=on "
        f"-c statement_timeout={api.pg_statement_timeout_ms} -c timezone=UTC"
    ).strip()
    return {"autocommit": True, "options": options, "connect_timeout": 5, "application_name": "cascadian-api"}


def create_app(settings: Settings | None = None, api: ApiSettings | None = None) -> FastAPI:
    settings = settings or load_settings()
    api = api or settings.api
    url = settings.postgres_url
    health = HealthCache(settings, api.health_cache_s)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.pool = None
        app.state.hub = None
        if url:
            app.state.pool = AsyncConnectionPool(
                url,
                kwargs=_pool_kwargs(url, api),
                min_size=1,
                max_size=api.pg_pool_max,
                timeout=api.pg_pool_timeout_s,
                open=False,
                name="cascadian-api",
            )
            await app.state.pool.open(wait=False)  # start even when Postgres is down
            app.state.hub = stream.ChangeHub(url)
            app.state.hub.start()
        try:
            yield
        finally:
            if app.state.hub is not None:
                await app.state.hub.stop()
            if app.state.pool is not None:
                await app.state.pool.close()

    app = FastAPI(
        title="Cascadian API",
        version="1.0.0",
        description="Strategies, their watchlists (with a live stream) and wallet PnL by "
        "category from the Cascadian pipeline's marts. See docs/api.md.",
        lifespan=lifespan,
    )
    app.add_middleware(
        RequestTimeout,
        seconds=api.request_timeout_s,
        overrides={"/api/health": max(api.request_timeout_s, api.health_timeout_s)},
    )
    bearer = HTTPBearer(auto_error=False, description="API_TOKEN, when the server sets one")

    async def require_token(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> None:
        if api.token is None:
            return
        if (
            credentials is None
            or credentials.scheme.lower() != "bearer"
            or not hmac.compare_digest(credentials.credentials.encode(), api.token.encode())
        ):
            raise HTTPException(401, "missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"})

    @app.exception_handler(Unavailable)
    async def _unavailable(request: Request, exc: Unavailable):
        return _problem(503, exc.detail, exc.retry_after)

    @app.exception_handler(PoolTimeout)
    async def _pool_timeout(request: Request, exc: PoolTimeout):
        return _problem(
            503, f"the app database is unavailable (no connection within {api.pg_pool_timeout_s:g} s)", 5
        )

    @app.exception_handler(psycopg.errors.UndefinedTable)
    async def _undefined(request: Request, exc: psycopg.Error):
        return _problem(
            503, f"the app database is not set up: run `runner.py migrate` ({str(exc).splitlines()[0]})", 30
        )

    @app.exception_handler(psycopg.errors.QueryCanceled)
    async def _canceled(request: Request, exc: psycopg.Error):
        return _problem(504, "the database query took too long")

    @app.exception_handler(psycopg.OperationalError)
    async def _operational(request: Request, exc: psycopg.Error):
        return _problem(503, "the app database is unavailable", 5)

    def pool(request: Request) -> AsyncConnectionPool:
        if request.app.state.pool is None:
            raise Unavailable("POSTGRES_URL not set: the app database is not configured")
        return request.app.state.pool

    async def fetch_json(p: AsyncConnectionPool, sql: str, params: tuple = ()) -> list[dict]:
        async with p.connection() as conn:
            cur = await conn.execute(sql, params)
            return [r[0] for r in await cur.fetchall()]

    async def strategy_exists(p: AsyncConnectionPool, strategy_id: str) -> None:
        async with p.connection() as conn:
            cur = await conn.execute("SELECT 1 FROM strategies WHERE id = %s", (strategy_id,))
            if await cur.fetchone() is None:
                raise HTTPException(404, f"unknown strategy {strategy_id!r}")

    StrategyId = Annotated[str, Path(pattern=STRATEGY_ID, description="strategy id (slug)")]
    auth = [Depends(require_token)]
    errors = {401: {"model": Problem}, 503: {"model": Problem}}

    @app.get("/api/health", tags=["health"], responses={503: {"description": "unhealthy"}})
    async def get_health() -> JSONResponse:
        """The healthcheck report (cached briefly); 503 when its overall status is an error."""
        code, report = await run_in_threadpool(health.get)
        return JSONResponse(json.loads(json.dumps(report, default=str)), status_code=code)

    @app.get(
        "/api/strategies",
        tags=["strategies"],
        response_model=StrategyList,
        dependencies=auth,
        responses=errors,
    )
    async def list_strategies(request: Request):
        """Every strategy with the size of its watchlist."""
        rows = await fetch_json(pool(request), "SELECT to_jsonb(s) FROM strategy_overview AS s ORDER BY s.id")
        return JSONResponse({"strategies": [{k: r.get(k) for k in Strategy.model_fields} for r in rows]})

    @app.get(
        "/api/strategies/{strategy_id}/watchlist",
        tags=["strategies"],
        response_model=WatchlistPage,
        dependencies=auth,
        responses={**errors, 404: {"model": Problem}},
    )
    async def get_watchlist(
        request: Request,
        strategy_id: StrategyId,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    ):
        """The strategy's watchlist, newest first, with the `alerts` flag per entry."""
        p = pool(request)
        await strategy_exists(p, strategy_id)
        async with p.connection() as conn:
            cur = await conn.execute(
                stream.ENTRY_SQL + " WHERE w.strategy_id = %s "
                "ORDER BY w.added_at DESC, w.id DESC LIMIT %s OFFSET %s",
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

    @app.get(
        "/api/strategies/{strategy_id}/watchlist/stream",
        tags=["strategies"],
        dependencies=auth,
        responses={
            **errors,
            404: {"model": Problem},
            200: {"content": {"text/event-stream": {}}, "description": "Server-Sent Events"},
        },
    )
    async def stream_watchlist(
        request: Request,
        strategy_id: StrategyId,
        limit: Annotated[int, Query(ge=1, le=1000, description="entries in the snapshot")] = 100,
        last_event_id_query: Annotated[int | None, Query(alias="last_event_id", ge=0)] = None,
        last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
    ):
        """A snapshot, then one event per change as it happens; heartbeats; resumes from
        `Last-Event-ID` (or `?last_event_id=`) by replaying the changes after it."""
        resume = last_event_id_query
        if last_event_id is not None and last_event_id.strip():
            if not last_event_id.strip().isdigit():
                raise HTTPException(422, "Last-Event-ID must be a non-negative integer event id")
            resume = int(last_event_id.strip())
        p = pool(request)
        await strategy_exists(p, strategy_id)
        body = stream.watchlist_stream(
            request.app.state.hub, p, strategy_id, resume, limit, api.stream_heartbeat_s
        )
        return StreamingResponse(
            body,
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    @app.get(
        "/api/wallets/{address}/category-pnl",
        tags=["wallets"],
        response_model=WalletCategoryPnl,
        dependencies=auth,
        responses={**errors, 404: {"model": Problem}},
    )
    async def wallet_category_pnl(
        address: Annotated[str, Path(pattern=ADDRESS, description="0x + 40 hex characters")],
    ):
        """The wallet's realized PnL by canonical category (exact USD amounts as strings)."""
        wallet = address.lower()
        rows = await run_in_threadpool(_category_pnl, settings, wallet, api.retry_after_s)
        if not rows:
            raise HTTPException(404, f"wallet {wallet} has no positions in the marts")
        return JSONResponse({"wallet": wallet, "total": _total(rows), "categories": rows})

    return app


def _category_pnl(settings: Settings, wallet: str, retry_after: int) -> list[dict[str, Any]]:
    try:
        with warehouse.connect(settings) as ch:
            if not warehouse.table_exists(ch, "analytics", "fct_wallet_category_pnl"):
                raise Unavailable("the marts are not built yet (run the pipeline)", retry_after)
            result = ch.query(
                "SELECT category, toString(realized_pnl_usd), toString(volume_usd), buy_collateral, "
                "n_fills, n_markets, n_resolved_markets, wins, losses, win_rate, roi "
                "FROM analytics.fct_wallet_category_pnl WHERE wallet = {w:String} "
                "ORDER BY realized_pnl DESC, category",
                parameters={"w": wallet},
            )
    except warehouse.WarehouseBusy:
        raise Unavailable(
            "the warehouse is busy (the pipeline holds the embedded engine); try again shortly", retry_after
        ) from None
    except warehouse.WarehouseUnavailable as exc:
        raise Unavailable(f"the warehouse is unavailable: {exc}", retry_after) from None
    keys = (
        "category",
        "realized_pnl_usd",
        "volume_usd",
        "buy_collateral_usd",
        "n_fills",
        "n_markets",
        "n_resolved_markets",
        "wins",
        "losses",
        "win_rate",
        "roi",
    )
    out = []
    for row in result.result_rows:
        item = dict(zip(keys, row))
        for k in ("n_fills", "n_markets", "n_resolved_markets", "wins", "losses"):
            item[k] = int(item[k])
        item["buy_collateral_usd"] = str(Decimal(int(item["buy_collateral_usd"])) / Decimal(10**6))
        for k in ("win_rate", "roi"):
            item[k] = None if item[k] is None else round(float(item[k]), 6)
        out.append(item)
    return out


def _total(rows: list[dict[str, Any]]) -> dict[str, Any]:
    pnl = sum(Decimal(r["realized_pnl_usd"]) for r in rows)
    volume = sum(Decimal(r["volume_usd"]) for r in rows)
    bought = sum(Decimal(r["buy_collateral_usd"]) for r in rows)
    wins, losses = sum(r["wins"] for r in rows), sum(r["losses"] for r in rows)
    return {
        "category": "All",
        "realized_pnl_usd": str(pnl),
        "volume_usd": str(volume),
        "buy_collateral_usd": str(bought),
        "n_fills": sum(r["n_fills"] for r in rows),
        "n_markets": sum(r["n_markets"] for r in rows),
        "n_resolved_markets": sum(r["n_resolved_markets"] for r in rows),
        "wins": wins,
        "losses": losses,
        "win_rate": round(wins / (wins + losses), 6) if wins + losses else None,
        "roi": round(float(pnl / bought), 6) if bought else None,
    }
