"""The Cascadian read API (FastAPI): the app factory, which only wires the parts together.

Routes, one router per resource in `api/routes/` (docs/api.md has parameters, examples and
the stream's format):

    GET /api/health                                  healthcheck JSON, 200 or 503 (no token)
    GET /api/strategies                              the strategies
    GET /api/strategies/{id}/watchlist               newest first, limit 1..1000, offset >= 0
    GET /api/strategies/{id}/watchlist/stream        Server-Sent Events, Last-Event-ID resume
    POST /api/stream-tokens                          a short-lived token for the stream (?token=)
    GET /api/wallets/{address}/category-pnl          from the ClickHouse marts
    GET /api/leaderboard                             window 1d|7d|30d|all, category, by pnl|volume
    GET /openapi.json, /docs                         the OpenAPI document and its viewer

Read-only: Postgres connections are pooled and opened read-only with a statement timeout;
warehouse work runs in the reader (api/reader.py: with the embedded engine, a child process
that lets the engine go between bursts; while another process holds it the answer is 503
with Retry-After). CORS for the origins in API_CORS_ORIGINS.
"""

from __future__ import annotations

import contextlib
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import AsyncConnectionPool

from api import stream
from api.answer_cache import AnswerCache
from api.deps import AppState
from api.errors import install_handlers
from api.health import HealthCache
from api.middleware import RequestTimeout, UnexpectedErrors
from api.reader import WarehouseReader
from api.responses import RedactedJSONResponse
from api.routes import health, leaderboard, strategies, wallets, watchlist
from api.tokens import StreamTokens, mask_tokens_in_access_log
from pipeline.config import ApiSettings, Settings, load_settings
from pipeline.redact import register as register_secrets

ROUTERS = (health.router, strategies.router, watchlist.router, wallets.router, leaderboard.router)


def _pool_kwargs(url: str, api: ApiSettings) -> dict[str, Any]:
    options = conninfo_to_dict(url).get("options") or ""
    options = (
        f"{options} -c default_transaction_read_only=on "
        f"-c statement_timeout={api.pg_statement_timeout_ms} -c timezone=UTC"
    ).strip()
    return {"autocommit": True, "options": options, "connect_timeout": 5, "application_name": "cascadian-api"}


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI):
    """The Postgres pool and the stream's LISTEN connection, when POSTGRES_URL is set."""
    state: AppState = app.state.cascadian
    url = state.settings.postgres_url
    if url:
        state.pool = AsyncConnectionPool(
            url,
            kwargs=_pool_kwargs(url, state.api),
            min_size=1,
            max_size=state.api.pg_pool_max,
            timeout=state.api.pg_pool_timeout_s,
            open=False,
            name="cascadian-api",
        )
        await state.pool.open(wait=False)  # start even when Postgres is down
        state.hub = stream.ChangeHub(url)
        state.hub.start()
    try:
        yield
    finally:
        state.reader.close()
        if state.hub is not None:
            await state.hub.stop()
            state.hub = None
        if state.pool is not None:
            await state.pool.close()
            state.pool = None


def create_app(settings: Settings | None = None, api: ApiSettings | None = None) -> FastAPI:
    settings = settings or load_settings()
    api = api or settings.api
    register_secrets([*settings.secret_values(), api.token, api.stream_secret])  # masked in every body
    app = FastAPI(
        title="Cascadian API",
        version="1.0.0",
        description="Strategies, their watchlists (with a live stream) and wallet PnL by "
        "category from the Cascadian pipeline's marts. See docs/api.md.",
        lifespan=_lifespan,
        default_response_class=RedactedJSONResponse,  # no answer carries a secret (api/responses.py)
    )
    app.state.cascadian = AppState(
        settings,
        api,
        HealthCache(settings, api.health_cache_s),
        StreamTokens.from_settings(api),
        WarehouseReader(settings, api),
        AnswerCache(api.marts_cache_s),
    )
    mask_tokens_in_access_log()
    # innermost: an unexpected error becomes a 500 that the timeout and CORS layers still wrap
    app.add_middleware(UnexpectedErrors)
    app.add_middleware(
        RequestTimeout,
        seconds=api.request_timeout_s,
        overrides={"/api/health": max(api.request_timeout_s, api.health_timeout_s)},
    )
    # outermost, so that every answer (a 401, a 504 too) tells the page's browser it may read it
    app.add_middleware(
        CORSMiddleware,
        allow_origins=list(api.cors_origins),
        allow_methods=["GET", "POST"],
        allow_headers=["Authorization", "Content-Type", "Last-Event-ID", "Cache-Control"],
        expose_headers=["Retry-After", "WWW-Authenticate"],
        allow_credentials=False,  # the bearer token travels in a header, never in cookies
        max_age=600,
    )
    install_handlers(app, api)
    for router in ROUTERS:
        app.include_router(router)
    return app
