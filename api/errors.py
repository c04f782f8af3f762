"""Error answers: one JSON shape (`{"detail": ...}`), the database and warehouse failures
mapped to 503/504 with a clear sentence.
"""

from __future__ import annotations

import psycopg
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from psycopg_pool import PoolTimeout

from pipeline.config import ApiSettings


class Unavailable(Exception):
    """A dependency the route needs cannot answer now: 503 (with Retry-After when given)."""

    def __init__(self, detail: str, retry_after: int | None = None):
        super().__init__(detail)
        self.detail, self.retry_after = detail, retry_after

    def __reduce__(self):  # raised in the warehouse reader's child process: keep Retry-After
        return type(self), (self.detail, self.retry_after)


def problem(status: int, detail: str, retry_after: int | None = None) -> JSONResponse:
    headers = {"Retry-After": str(retry_after)} if retry_after else None
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


def install_handlers(app: FastAPI, api: ApiSettings) -> None:
    """The exception handlers every route shares."""

    @app.exception_handler(Unavailable)
    async def _unavailable(request: Request, exc: Unavailable):
        return problem(503, exc.detail, exc.retry_after)

    @app.exception_handler(PoolTimeout)
    async def _pool_timeout(request: Request, exc: PoolTimeout):
        return problem(
            503, f"the app database is unavailable (no connection within {api.pg_pool_timeout_s:g} s)", 5
        )

    @app.exception_handler(psycopg.errors.UndefinedTable)
    async def _undefined(request: Request, exc: psycopg.Error):
        return problem(
            503, f"the app database is not set up: run `runner.py migrate` ({str(exc).splitlines()[0]})", 30
        )

    @app.exception_handler(psycopg.errors.QueryCanceled)
    async def _canceled(request: Request, exc: psycopg.Error):
        return problem(504, "the database query took too long")

    @app.exception_handler(psycopg.OperationalError)
    async def _operational(request: Request, exc: psycopg.Error):
        return problem(503, "the app database is unavailable", 5)
