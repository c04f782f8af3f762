"""The one JSON response class of the API: it masks every configured secret as it renders.

docs/api.md promises that no answer contains a configured secret, and a successful answer can
quote a client's input back (the leaderboard's `category`) or carry text written by others
(watchlist metadata). Masking at render time, in the app's default response class, covers
every route, including one that forgets; routes that build their response themselves use
this class too (tests/test_api_secrets.py checks that no other JSON class is imported).
"""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse

from pipeline.redact import redact_obj


class RedactedJSONResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        return super().render(redact_obj(content))
