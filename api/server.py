"""`runner.py serve`: the API under uvicorn."""

from __future__ import annotations

import uvicorn

from api.app import create_app
from pipeline.config import ApiSettings, Settings


def serve(
    settings: Settings, host: str = "127.0.0.1", port: int = 8000, api: ApiSettings | None = None
) -> None:
    app = create_app(settings, api or settings.api)
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level=settings.log_level.lower(),
        timeout_graceful_shutdown=5,
        proxy_headers=False,
        log_config=None,
    )  # keep the runner's logging (LOG_FORMAT)
