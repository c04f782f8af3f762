"""Error bodies never echo a configured secret (issue 15): a ClickHouse server whose error
pages echo the request's credentials, as some proxies and servers do, must not put the
password into the API's 503 or its health report."""

from __future__ import annotations

import base64
import contextlib
import http.server
import threading
from collections.abc import Iterator

import httpx
import pytest

from pipeline.config import ApiSettings
from tests.support.api_helpers import running_api
from tests.support.watchlist_world import WALLETS

PASSWORD = "pa55-w0rd-in-the-url"
TOKEN = "api-t0ken-value"
GOLDSKY_KEY = "goldsky-key-9f8e7d"


class EchoingServer(http.server.BaseHTTPRequestHandler):
    """Answers every request 500 with the credentials it was sent, in clear, in the body."""

    def _echo(self) -> None:
        basic = self.headers.get("Authorization", "").removeprefix("Basic ")
        user, _, password = base64.b64decode(basic).decode().partition(":") if basic else ("", "", "")
        password = password or self.headers.get("X-ClickHouse-Key", "")
        body = (
            f"Code: 516. DB::Exception: {user}: Authentication failed: password {password} is wrong".encode()
        )
        self.send_response(500)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _echo

    def log_message(self, *args) -> None:
        pass


@contextlib.contextmanager
def echoing_clickhouse() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), EchoingServer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://default:{PASSWORD}@127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


@pytest.fixture(scope="module")
def api(watchlist_world):
    with echoing_clickhouse() as url:
        settings = watchlist_world.settings.replace(clickhouse_url=url, goldsky_api_key=GOLDSKY_KEY)
        with running_api(settings, ApiSettings(token=TOKEN, health_cache_s=0)) as base:
            with httpx.Client(base_url=base, timeout=60, headers={"Authorization": f"Bearer {TOKEN}"}) as c:
                yield c


def _assert_clean(response: httpx.Response) -> None:
    for secret in (PASSWORD, TOKEN, GOLDSKY_KEY):
        assert secret not in response.text, f"{secret!r} in the {response.status_code} body"


def test_a_warehouse_error_echoing_the_password_is_a_clean_503(api):
    response = api.get(f"/api/wallets/{WALLETS['A']}/category-pnl")
    assert response.status_code == 503, response.text
    assert "warehouse is unavailable" in response.json()["detail"]
    assert "***" in response.json()["detail"]  # the echo is there, masked
    _assert_clean(response)


def test_the_health_report_never_carries_a_secret(api):
    response = api.get("/api/health")
    assert response.status_code == 503
    assert "clickhouse" in {c["name"] for c in response.json()["checks"]}
    _assert_clean(response)


def test_a_rejected_parameter_is_not_echoed_with_a_secret(api):
    response = api.get(f"/api/strategies/all/watchlist?limit={TOKEN}")
    assert response.status_code == 422
    _assert_clean(response)


def test_no_route_answers_with_a_json_response_that_skips_redaction():
    """Every JSON answer is rendered by api.responses.RedactedJSONResponse (the app's default
    response class): a route that built another JSON response class would send its body
    unredacted."""
    import ast

    from pipeline.config import PROJECT_ROOT

    offenders = []
    for path in sorted((PROJECT_ROOT / "api").rglob("*.py")):
        if path.name == "responses.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in (
                "fastapi",
                "starlette",
            ):
                names = {alias.name for alias in node.names}
                if any(name.endswith("JSONResponse") for name in names):
                    offenders.append(f"{path.relative_to(PROJECT_ROOT)}:{node.lineno}")
    assert offenders == []


def test_stream_events_are_redacted(monkeypatch):
    from api import stream

    monkeypatch.setenv("API_TOKEN", TOKEN)
    event = stream.sse("insert", {"entry": {"metadata": {"note": f"token {TOKEN}"}}}, 7)
    assert TOKEN not in event and "token ***" in event
