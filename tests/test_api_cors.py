"""CORS (issue 16): a page on another origin may call the routes and read the stream when its
origin is listed in API_CORS_ORIGINS; none is by default."""

from __future__ import annotations

import httpx
import pytest

from api.app import create_app
from pipeline.config import ApiSettings, ConfigError, load_settings
from tests.support.api_helpers import running_api

PAGE = "http://127.0.0.1:5173"
OTHER = "http://evil.example"
TOKEN = "cors-t0ken"


@pytest.fixture(scope="module")
def cors_api(watchlist_world):
    api = ApiSettings(cors_origins=(PAGE, "https://app.example.com"), token=TOKEN, stream_heartbeat_s=0.3)
    with (
        running_api(watchlist_world.settings, api) as base,
        httpx.Client(base_url=base, timeout=15) as client,
    ):
        yield client


def _preflight(
    client: httpx.Client, path: str, origin: str, headers: str = "authorization"
) -> httpx.Response:
    return client.options(
        path,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": headers,
        },
    )


@pytest.mark.parametrize(
    "path",
    [
        "/api/strategies",
        "/api/strategies/all/watchlist",
        "/api/strategies/all/watchlist/stream",
        "/api/health",
    ],
)
def test_a_preflight_from_a_listed_origin_is_answered(cors_api, path):
    response = _preflight(cors_api, path, PAGE, "authorization, last-event-id")
    assert response.status_code == 200, response.text
    assert response.headers["access-control-allow-origin"] == PAGE
    assert "GET" in response.headers["access-control-allow-methods"]
    allowed = response.headers["access-control-allow-headers"].lower()
    assert "authorization" in allowed and "last-event-id" in allowed
    assert int(response.headers["access-control-max-age"]) > 0


def test_a_preflight_from_another_origin_gets_no_permission(cors_api):
    response = _preflight(cors_api, "/api/strategies", OTHER)
    assert response.status_code == 400
    assert "access-control-allow-origin" not in response.headers


def test_answers_carry_the_origin_even_errors_so_the_page_can_read_them(cors_api):
    ok = cors_api.get("/api/strategies", headers={"Origin": PAGE, "Authorization": f"Bearer {TOKEN}"})
    assert ok.status_code == 200 and ok.headers["access-control-allow-origin"] == PAGE
    assert "retry-after" in ok.headers["access-control-expose-headers"].lower()
    denied = cors_api.get("/api/strategies", headers={"Origin": PAGE})
    assert denied.status_code == 401 and denied.headers["access-control-allow-origin"] == PAGE
    missing = cors_api.get(
        "/api/strategies/nope/watchlist", headers={"Origin": PAGE, "Authorization": f"Bearer {TOKEN}"}
    )
    assert missing.status_code == 404 and missing.headers["access-control-allow-origin"] == PAGE
    other = cors_api.get("/api/strategies", headers={"Origin": OTHER, "Authorization": f"Bearer {TOKEN}"})
    assert "access-control-allow-origin" not in other.headers


def test_an_unexpected_error_is_a_500_the_page_can_read(watchlist_world, caplog, monkeypatch):
    """Before: the handler for unexpected errors ran outside the CORS middleware (Starlette
    runs it outermost), so a listed page got a 500 without Access-Control-Allow-Origin and
    saw a network error instead of the answer."""
    monkeypatch.setenv("API_TOKEN", TOKEN)  # a configured secret: redacted wherever it appears
    api = ApiSettings(cors_origins=(PAGE,), token=TOKEN)
    app = create_app(watchlist_world.settings, api)

    @app.get("/api/fails")
    def fails():
        raise RuntimeError(f"the cause, with the token {TOKEN}")

    with running_api(watchlist_world.settings, api, app) as base:
        response = httpx.get(
            f"{base}/api/fails", headers={"Origin": PAGE, "Authorization": f"Bearer {TOKEN}"}, timeout=15
        )
    assert response.status_code == 500
    assert response.headers["access-control-allow-origin"] == PAGE
    assert response.json() == {"detail": "internal error (the server's log has the cause)"}
    logged = [r for r in caplog.records if r.getMessage() == "request failed"]
    assert logged and "RuntimeError: the cause" in logged[0].ctx["error"]
    assert TOKEN not in logged[0].ctx["error"]


def test_the_stream_answers_a_listed_origin(cors_api):
    headers = {"Origin": PAGE, "Authorization": f"Bearer {TOKEN}"}
    with cors_api.stream("GET", "/api/strategies/all/watchlist/stream", headers=headers) as response:
        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] == PAGE


def test_no_origin_is_allowed_by_default(watchlist_world):
    with running_api(watchlist_world.settings, ApiSettings()) as base:
        response = httpx.get(f"{base}/api/strategies", headers={"Origin": PAGE}, timeout=15)
        assert response.status_code == 200 and "access-control-allow-origin" not in response.headers
        preflight = httpx.options(
            f"{base}/api/strategies",
            headers={"Origin": PAGE, "Access-Control-Request-Method": "GET"},
            timeout=15,
        )
        assert "access-control-allow-origin" not in preflight.headers


def test_any_origin_with_a_star():
    assert load_settings({"API_CORS_ORIGINS": "*"}).api.cors_origins == ("*",)


@pytest.mark.parametrize(
    "value", ["127.0.0.1:5173", "http://app.example.com/path", "ftp://x.example", "http://a.example:80:80"]
)
def test_an_origin_that_is_not_one_is_refused_naming_the_variable(value):
    with pytest.raises(ConfigError) as error:
        load_settings({"API_CORS_ORIGINS": f"http://ok.example, {value}"})
    assert "API_CORS_ORIGINS" in str(error.value) and f"{value!r} is not an origin" in str(error.value)


def test_origins_are_read_comma_separated_as_browsers_send_them():
    api = load_settings({"API_CORS_ORIGINS": " http://a.example:8080 ,https://b.example/ "}).api
    assert api.cors_origins == ("http://a.example:8080", "https://b.example")  # no trailing slash
