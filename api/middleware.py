"""ASGI middleware of the API."""

from __future__ import annotations

import asyncio
import logging

from api.errors import problem
from pipeline.redact import redact

log = logging.getLogger(__name__)

STREAM_SUFFIX = "/watchlist/stream"


class _StartTracker:
    """Passes messages on to `send` and remembers whether the answer has started: once it
    has, a middleware can no longer answer in its place (504, 500) and must re-raise."""

    def __init__(self, send):
        self.send, self.started = send, False

    async def __call__(self, message):
        if message["type"] == "http.response.start":
            self.started = True
        await self.send(message)


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
        tracked = _StartTracker(send)

        try:
            await asyncio.wait_for(self.app(scope, receive, tracked), seconds)
        except TimeoutError:
            if tracked.started:
                raise
            response = problem(504, f"the request took longer than {seconds:g} s")
            await response(scope, receive, send)


class UnexpectedErrors:
    """Answers an error no handler knows with a 500 that says only that (the cause goes to
    the log, redacted). A middleware inside CORS, not an exception handler: Starlette runs
    the handler for `Exception` outside every middleware, so its 500 reached the browser
    without the CORS headers and a page saw a network error instead of the answer. An
    error after the answer has started (a stream) cannot become a 500: it is re-raised."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        tracked = _StartTracker(send)

        try:
            await self.app(scope, receive, tracked)
        except Exception as exc:
            if tracked.started:
                raise
            log.error(
                "request failed",
                extra={"ctx": {"path": scope["path"], "error": redact(f"{type(exc).__name__}: {exc}")[:500]}},
            )
            response = problem(500, "internal error (the server's log has the cause)")
            await response(scope, receive, send)
