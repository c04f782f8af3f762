"""Error answers: one JSON shape (`{"detail": ...}`), the database and warehouse failures
mapped to 503/504 with a clear sentence, and never a configured secret in a body: every
detail is rendered by api.responses.RedactedJSONResponse (an error page that echoes a
password, a client that puts a token into a parameter FastAPI then quotes back), and an
unexpected error is a 500 that says only that (api.middleware.UnexpectedErrors; its cause goes to the log, redacted too).
"""

from __future__ import annotations

import psycopg
from fastapi import FastAPI, HTTPException, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from psycopg_pool import PoolTimeout

from api.responses import RedactedJSONResponse
from pipeline.config import ApiSettings


class Unavailable(Exception):
    """A dependency the route needs cannot answer now: 503 (with Retry-After when given)."""

    def __init__(self, detail: str, retry_after: int | None = None):
        super().__init__(detail)
        self.detail, self.retry_after = detail, retry_after

    def __reduce__(self):  # raised in the warehouse reader's child process: keep Retry-After
        return type(self), (self.detail, self.retry_after)


def problem(
    status: int, detail: object, retry_after: int | None = None, headers: dict[str, str] | None = None
) -> RedactedJSONResponse:
    headers = dict(headers or {})
    if retry_after:
        headers["Retry-After"] = str(retry_after)
    body = {"detail": jsonable_encoder(detail)}
    return RedactedJSONResponse(body, status_code=status, headers=headers or None)


def install_handlers(app: FastAPI, api: ApiSettings) -> None:
    """The exception handlers every route shares."""

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException):
        return problem(exc.status_code, exc.detail, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        return problem(422, exc.errors())

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
