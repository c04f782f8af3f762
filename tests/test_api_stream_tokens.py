"""Stream tokens (issue 16): an EventSource cannot send `Authorization`, so with API_TOKEN set
a page asks an authenticated route for a short-lived signed token and passes it as `?token=`
on the stream, the only route that accepts one. Tokens never reach the logs."""

from __future__ import annotations

import datetime as dt
import json
import time

import httpx
import pytest

from api.tokens import StreamTokens
from pipeline.config import ApiSettings, ConfigError, load_settings
from tests.support.api_helpers import iter_sse, next_event, running_api, serve_process

TOKEN = "the-api-t0ken"
STREAM = "/api/strategies/all/watchlist/stream"


@pytest.fixture(scope="module")
def client(watchlist_world):
    api = ApiSettings(token=TOKEN, stream_heartbeat_s=0.3, stream_token_ttl_s=60)
    with running_api(watchlist_world.settings, api) as base, httpx.Client(base_url=base, timeout=15) as c:
        yield c


def issue(client: httpx.Client, strategy_id: str | None = "all") -> dict:
    response = client.post(
        "/api/stream-tokens",
        json={} if strategy_id is None else {"strategy_id": strategy_id},
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert response.status_code == 200, response.text
    return response.json()


def first_event(client: httpx.Client, path: str, **params) -> tuple[int, dict | None]:
    with client.stream("GET", path, params=params) as response:
        if response.status_code != 200:
            response.read()
            return response.status_code, response.json()
        return 200, next_event(iter_sse(response))


def test_a_token_from_the_authenticated_route_opens_the_stream(client):
    body = issue(client)
    expires = dt.datetime.fromisoformat(body["expires_at"])
    now = dt.datetime.now(dt.UTC)
    assert now + dt.timedelta(seconds=50) < expires <= now + dt.timedelta(seconds=61)
    assert body["strategy_id"] == "all" and body["stream_url"] == f"{STREAM}?token={body['token']}"
    status, event = first_event(client, STREAM, token=body["token"])
    assert status == 200 and event["event"] == "snapshot"
    assert json.loads(event["data"])["strategy_id"] == "all"


def test_issuing_a_token_needs_the_bearer_token(client):
    assert client.post("/api/stream-tokens", json={"strategy_id": "all"}).status_code == 401
    wrong = client.post("/api/stream-tokens", json={}, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401


def test_the_stream_without_any_token_is_401(client):
    status, body = first_event(client, STREAM)
    assert status == 401 and "token" in body["detail"]


def test_a_token_is_scoped_to_its_strategy(client):
    status, body = first_event(
        client, "/api/strategies/politics/watchlist/stream", token=issue(client)["token"]
    )
    assert status == 401 and "another strategy" in body["detail"]
    unscoped = issue(client, None)["token"]  # no strategy named: any strategy's stream
    assert first_event(client, "/api/strategies/politics/watchlist/stream", token=unscoped)[0] == 200


def test_a_token_is_accepted_on_the_stream_only(client):
    token = issue(client)["token"]
    for path in ("/api/strategies", "/api/strategies/all/watchlist", "/api/strategies/all/watchlist?x=1"):
        assert client.get(path, params={"token": token}).status_code == 401, path
    assert client.post("/api/stream-tokens", params={"token": token}, json={}).status_code == 401


def test_the_api_token_itself_is_no_stream_token(client):
    # long-lived credentials do not belong in URLs (logs, histories, proxies keep them)
    status, body = first_event(client, STREAM, token=TOKEN)
    assert status == 401 and "invalid stream token" in body["detail"]


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),  # signature changed
        lambda t: t.replace(".all.", ".politics.", 1) if ".all." in t else "x" + t,  # scope changed
        lambda t: "",
        lambda t: "v1.all.notanumber.c2ln",
        lambda t: "\u00b2" * 20,
    ],
)
def test_a_forged_or_garbled_token_is_401(client, mangle):
    status, body = first_event(client, STREAM, token=mangle(issue(client)["token"]))
    assert status == 401 and "stream token" in body["detail"]


def test_an_expired_token_is_401_and_says_so():
    tokens = StreamTokens(b"k" * 32, ttl_s=30)
    token, _ = tokens.issue("all", now=time.time() - 31)
    with pytest.raises(PermissionError, match="expired"):
        tokens.verify(token, "all")
    fresh, _ = tokens.issue("all")
    tokens.verify(fresh, "all")  # no exception
    other = StreamTokens(b"j" * 32, ttl_s=30)  # another server secret
    with pytest.raises(PermissionError, match="signature"):
        other.verify(fresh, "all")


def test_workers_sharing_api_token_accept_each_others_tokens_and_a_secret_rotates_them():
    a = StreamTokens.from_settings(ApiSettings(token=TOKEN))
    b = StreamTokens.from_settings(ApiSettings(token=TOKEN))
    token, _ = a.issue("all")
    b.verify(token, "all")
    rotated = StreamTokens.from_settings(ApiSettings(token=TOKEN, stream_secret="s" * 32))
    with pytest.raises(PermissionError):
        rotated.verify(token, "all")
    assert StreamTokens.from_settings(ApiSettings()).key != StreamTokens.from_settings(ApiSettings()).key


def test_stream_settings_are_validated():
    assert load_settings({"API_STREAM_TOKEN_TTL_S": "120"}).api.stream_token_ttl_s == 120
    with pytest.raises(ConfigError, match="API_STREAM_TOKEN_TTL_S"):
        load_settings({"API_STREAM_TOKEN_TTL_S": "0"})
    with pytest.raises(ConfigError, match="API_STREAM_SECRET"):
        load_settings({"API_STREAM_SECRET": "short"})
    secret = "a-stream-secret-long-enough"
    assert secret in load_settings({"API_STREAM_SECRET": secret}).secret_values()


def test_without_api_token_the_stream_needs_no_token(watchlist_world):
    with running_api(watchlist_world.settings, ApiSettings(stream_heartbeat_s=0.3)) as base:
        with httpx.Client(base_url=base, timeout=15) as c:
            assert first_event(c, STREAM)[0] == 200
            assert c.post("/api/stream-tokens", json={"strategy_id": "all"}).status_code == 200


def test_the_token_never_reaches_the_log(watchlist_world, tmp_path):
    """`runner.py serve` logs every request (uvicorn's access log prints the query string)."""
    with serve_process(watchlist_world.settings, tmp_path, API_TOKEN=TOKEN) as served:
        with httpx.Client(base_url=served.base, timeout=15) as c:
            token = issue(c)["token"]
            assert first_event(c, STREAM, token=token)[0] == 200
            assert first_event(c, STREAM, token=token + "x")[0] == 401
            c.get("/api/strategies", params={"token": token, "limit": "5"})
        time.sleep(0.5)
        log = served.text()
    signature = token.rsplit(".", 1)[-1]
    assert "GET /api/strategies/all/watchlist/stream?token=" in log  # the request is logged...
    assert token not in log and signature not in log  # ...without its token
    assert TOKEN not in log
