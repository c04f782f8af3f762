"""ASGI middleware of the API."""

from __future__ import annotations

import asyncio

from api.errors import problem

STREAM_SUFFIX = "/watchlist/stream"


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
            response = problem(504, f"the request took longer than {seconds:g} s")
            await response(scope, receive, send)
