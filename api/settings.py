"""The API's own settings (environment variables; the pipeline's come from pipeline/config.py)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from pipeline.config import env_number


@dataclass(frozen=True)
class ApiSettings:
    token: str | None = field(default=None, repr=False)  # API_TOKEN: bearer token, never logged
    request_timeout_s: float = 10.0  # every request but the stream's long life
    stream_heartbeat_s: float = 15.0  # SSE comment line when nothing happened for this long
    health_cache_s: float = 10.0  # /api/health answers from a cache this young
    health_timeout_s: float = 30.0  # /api/health's own request timeout (the checks are slow)
    retry_after_s: int = 30  # Retry-After when the embedded engine is busy
    pg_pool_max: int = 10  # pooled Postgres connections
    pg_pool_timeout_s: float = 5.0  # wait for a pooled connection, then 503
    pg_statement_timeout_ms: int = 5000  # every Postgres statement

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ApiSettings:
        env = os.environ if env is None else env
        return cls(
            token=env.get("API_TOKEN", "").strip() or None,
            request_timeout_s=env_number(env, "API_REQUEST_TIMEOUT_S", 10.0, 0.1),
            stream_heartbeat_s=env_number(env, "API_STREAM_HEARTBEAT_S", 15.0, 0.05),
            health_cache_s=env_number(env, "API_HEALTH_CACHE_S", 10.0, 0.0),
            health_timeout_s=env_number(env, "API_HEALTH_TIMEOUT_S", 30.0, 0.1),
            retry_after_s=int(env_number(env, "API_RETRY_AFTER_S", 30, 1)),
            pg_pool_max=int(env_number(env, "API_PG_POOL_MAX", 10, 1)),
            pg_pool_timeout_s=env_number(env, "API_PG_POOL_TIMEOUT_S", 5.0, 0.1),
            pg_statement_timeout_ms=int(env_number(env, "API_PG_STATEMENT_TIMEOUT_MS", 5000, 1)),
        )
