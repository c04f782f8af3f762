"""Secrets never leave the process in clear text.

Everything the pipeline persists or prints (log lines, `summary.json`, health JSON, the
report, `ops` rows, API errors) passes through `redact` or `redact_obj` at the point where it
is written. A secret is any configured credential: the password of a URL (in its user-info
or as a `?password=` style query parameter), an API key or token variable. Error bodies that
echo one are caught too, because the values themselves are replaced, wherever they appear.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MASK = "***"

# Environment variables whose values are credentials.
SECRET_VARIABLES = (
    "CLICKHOUSE_PASSWORD",
    "GOLDSKY_API_KEY",
    "API_TOKEN",
    "POSTGRES_PASSWORD",
    "API_STREAM_SECRET",
)
# Environment variables holding URLs that may carry credentials.
URL_VARIABLES = (
    "POSTGRES_URL",
    "CLICKHOUSE_URL",
    "GOLDSKY_SUBGRAPH_URL",
    "GOLDSKY_PNL_SUBGRAPH_URL",
    "API_BASE_URL",
)
# Query parameters that carry credentials in connection URLs (libpq, HTTP APIs).
SECRET_PARAMETERS = frozenset(
    {
        "password",
        "passwd",
        "pass",
        "pwd",
        "token",
        "access_token",
        "api_key",
        "apikey",
        "key",
        "secret",
        "sslpassword",
        "auth",
    }
)
# Shorter values are not treated as secrets: replacing "ab" everywhere would garble text.
MIN_SECRET_LENGTH = 4

# Secrets the process learned from its settings (which may come from an env file or a
# mapping rather than the environment): masked wherever text leaves the process.
_registered: set[str] = set()


def register(values: Iterable[str | None]) -> None:
    """Remember credential values to mask from now on (pipeline.config does it for every
    settings object it loads)."""
    _registered.update(v for v in values if v and len(v) >= MIN_SECRET_LENGTH)


def url_secrets(url: str | None) -> list[str]:
    """The credentials a URL carries: its password and credential query parameters."""
    return _url_secrets(url) if url else []


def _url_secrets(url: str) -> list[str]:
    try:
        parts = urlsplit(url)
        found = [parts.password or ""]
    except ValueError:
        return []
    found += [value for key, value in parse_qsl(parts.query) if key.lower() in SECRET_PARAMETERS]
    return found


def secret_values(env: Mapping[str, str] | None = None, extra: Iterable[str] = ()) -> list[str]:
    """The credential values configured in `env` (default: the process environment), longest
    first so that a secret containing another is masked whole."""
    env = os.environ if env is None else env
    values = [env.get(name, "") for name in SECRET_VARIABLES]
    for name in URL_VARIABLES:
        values += _url_secrets(env.get(name, ""))
    values += list(extra) + list(_registered)
    unique = {v for v in values if v and len(v) >= MIN_SECRET_LENGTH}
    return sorted(unique, key=len, reverse=True)


def redact(text: str, secrets: Iterable[str] | None = None) -> str:
    """`text` with every configured secret value replaced by ***."""
    for secret in secret_values() if secrets is None else secrets:
        text = text.replace(secret, MASK)
    return text


def redact_obj(value: Any, secrets: Iterable[str] | None = None) -> Any:
    """A copy of a JSON-like value (dicts, lists, strings) with secrets masked in every string."""
    found = list(secret_values() if secrets is None else secrets)
    if not found:
        return value

    def walk(item: Any) -> Any:
        if isinstance(item, str):
            return redact(item, found)
        if isinstance(item, Mapping):
            return {key: walk(v) for key, v in item.items()}
        if isinstance(item, list | tuple):
            return [walk(v) for v in item]
        return item

    return walk(value)


def redact_url(url: str) -> str:
    """`url` fit to show: no user name or password, credential query parameters masked."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return MASK
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    netloc = host if (parts.username is not None or parts.password is not None) else parts.netloc
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(key.lower() in SECRET_PARAMETERS for key, _ in pairs):
            query = urlencode(
                [(k, MASK if k.lower() in SECRET_PARAMETERS else v) for k, v in pairs], safe="*"
            )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
