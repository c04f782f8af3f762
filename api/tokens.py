"""Stream tokens: how a browser's EventSource, which cannot send `Authorization`, opens the
watchlist stream when API_TOKEN is set.

A page asks `POST /api/stream-tokens` (with its bearer token) for a token, then opens
`.../watchlist/stream?token=<token>`. The token is `v1.<scope>.<expiry>.<signature>`: the
scope is one strategy id (or `*`, any strategy's stream), the expiry a Unix time
API_STREAM_TOKEN_TTL_S ahead, the signature HMAC-SHA256 over both with the server's key. It
opens streams only (no other route reads `?token=`), and only until it expires; a stream
already open stays open. Query strings end up in access logs, so the access log's copy is
masked (`RedactTokens`), and the long-lived API_TOKEN is never accepted in a URL.

The key: API_STREAM_SECRET when set; else derived from API_TOKEN, so every worker and
replica sharing API_TOKEN accepts the others' tokens; else (no API_TOKEN: the stream needs no
token at all) random per process.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import logging
import re
import secrets
import time

from pipeline.config import ApiSettings
from pipeline.redact import redact_url

VERSION = "v1"
ANY_STRATEGY = "*"
_SCOPE = re.compile(r"^(\*|[a-z0-9][a-z0-9_-]{0,63})$")
_DERIVATION = b"cascadian stream tokens v1"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class StreamTokens:
    """Issues and verifies stream tokens with one key."""

    def __init__(self, key: bytes, ttl_s: int):
        self.key, self.ttl_s = key, ttl_s

    @classmethod
    def from_settings(cls, api: ApiSettings) -> StreamTokens:
        if api.stream_secret:
            key = api.stream_secret.encode()
        elif api.token:
            key = hmac.new(api.token.encode(), _DERIVATION, hashlib.sha256).digest()
        else:
            key = secrets.token_bytes(32)
        return cls(key, api.stream_token_ttl_s)

    def _sign(self, scope: str, expires: int) -> str:
        message = f"stream:{VERSION}:{scope}:{expires}".encode()
        return _b64(hmac.new(self.key, message, hashlib.sha256).digest())

    def issue(self, strategy_id: str | None, now: float | None = None) -> tuple[str, dt.datetime]:
        """A token for the stream of `strategy_id` (None: any strategy's) and its expiry."""
        scope = strategy_id or ANY_STRATEGY
        expires = int((time.time() if now is None else now) + self.ttl_s)
        token = f"{VERSION}.{scope}.{expires}.{self._sign(scope, expires)}"
        return token, dt.datetime.fromtimestamp(expires, dt.UTC)

    def verify(self, token: str, strategy_id: str, now: float | None = None) -> None:
        """Raise PermissionError (with the reason) unless `token` opens `strategy_id`'s stream."""
        parts = token.split(".")
        if len(parts) != 4 or parts[0] != VERSION or not _SCOPE.match(parts[1]) or not parts[2].isascii():
            raise PermissionError("not a stream token")
        _, scope, expires_text, signature = parts
        if not expires_text.isdecimal():
            raise PermissionError("not a stream token")
        expires = int(expires_text)
        if not hmac.compare_digest(signature.encode(), self._sign(scope, expires).encode()):
            raise PermissionError("bad signature (forged, altered, or from another server key)")
        if expires <= (time.time() if now is None else now):
            raise PermissionError("expired; ask POST /api/stream-tokens for a new one")
        if scope not in (ANY_STRATEGY, strategy_id):
            raise PermissionError(f"issued for another strategy ({scope})")


class RedactTokens(logging.Filter):
    """Masks credential query parameters (`token=` among them) in uvicorn's access log lines,
    whose third argument is the path with its query string."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str) and "?" in args[2]:
            record.args = (*args[:2], redact_url(args[2]), *args[3:])
        return True


ACCESS_LOGGER = "uvicorn.access"


def mask_tokens_in_access_log() -> None:
    """Install RedactTokens on uvicorn's access logger (once per process)."""
    logger = logging.getLogger(ACCESS_LOGGER)
    if not any(isinstance(f, RedactTokens) for f in logger.filters):
        logger.addFilter(RedactTokens())
