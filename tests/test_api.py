"""The read API over real HTTP (uvicorn on 127.0.0.1): strategies, watchlists, wallet PnL,
health, bounds, errors and the bearer token."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from api.middleware import RequestTimeout
from pipeline.config import ApiSettings
from tests.support.api_helpers import running_api
from tests.support.watchlist_world import EXPECTED, WALLETS, market_id

TOKEN = "t0ken-for-tests"


@pytest.fixture(scope="module")
def api(watchlist_world):
    with running_api(watchlist_world.settings, ApiSettings(stream_heartbeat_s=0.3)) as base:
        with httpx.Client(base_url=base, timeout=15) as client:
            yield client


@pytest.fixture(scope="module")
def api_with_token(watchlist_world):
    with running_api(watchlist_world.settings, ApiSettings(token=TOKEN)) as base:
        with httpx.Client(base_url=base, timeout=15) as client:
            yield client


def test_strategies_are_listed_with_their_watchlist_size(api):
    response = api.get("/api/strategies")
    assert response.status_code == 200
    strategies = {s["id"]: s for s in response.json()["strategies"]}
    assert {"all", "politics", "crypto-sports", "rank1", "paused"} <= set(strategies)
    assert strategies["all"]["entries"] == 3 and strategies["all"]["active"] is True
    assert strategies["politics"]["category_filter"] == ["Politics / Geopolitics"]
    assert strategies["paused"]["active"] is False and strategies["paused"]["entries"] == 0


def test_watchlist_is_enriched_newest_first_with_alerts(api):
    body = api.get("/api/strategies/all/watchlist").json()
    assert body["total"] == 3 and body["limit"] == 100 and body["offset"] == 0
    entries = body["entries"]
    assert {e["market_id"] for e in entries} == {market_id(n) for n in EXPECTED}
    keys = [(e["added_at"], e["id"]) for e in entries]
    assert keys == sorted(keys, reverse=True)
    by_market = {e["market_id"]: e for e in entries}
    m12 = by_market[market_id(12)]
    assert m12["question"] == "Will thing 12 happen?" and m12["category"] == "Sports"
    assert m12["triggering_wallet"] == WALLETS["B"] and m12["wallet_rank"] == 2
    assert m12["wallet_coverage"] == 0.5 and m12["reason"] == "signal_wallet"
    assert m12["alerts"] is True  # added just now, rank 2 <= 5, coverage 50 % >= 10 %
    assert m12["metadata"]["outcome"] == "YES" and m12["market_resolved"] is False


def test_pagination_walks_the_list_without_overlap(api):
    pages = [
        api.get("/api/strategies/all/watchlist", params={"limit": 1, "offset": i}).json() for i in range(4)
    ]
    ids = [p["entries"][0]["id"] for p in pages[:3]]
    assert len(set(ids)) == 3 and pages[3]["entries"] == [] and pages[3]["total"] == 3
    full = api.get("/api/strategies/all/watchlist", params={"limit": 1000}).json()
    assert [e["id"] for e in full["entries"]] == ids


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0},
        {"limit": 1001},
        {"limit": "ten"},
        {"offset": -1},
        {"offset": "x"},
        {"offset": 10_000_001},
    ],
)
def test_bad_paging_parameters_are_422(api, params):
    response = api.get("/api/strategies/all/watchlist", params=params)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][0] == "query"


def test_the_largest_offset_is_accepted(api):
    """docs/api.md: offset 0-10,000,000."""
    response = api.get("/api/strategies/all/watchlist", params={"offset": 10_000_000})
    assert response.status_code == 200 and response.json()["entries"] == []


def test_unknown_strategy_is_404_and_a_malformed_id_422(api):
    response = api.get("/api/strategies/nope/watchlist")
    assert response.status_code == 404 and "unknown strategy 'nope'" in response.json()["detail"]
    assert api.get("/api/strategies/Not%20An%20Id/watchlist").status_code == 422
    assert api.get("/api/strategies/nope/watchlist/stream").status_code == 404


def test_wallet_category_pnl_from_the_marts(api):
    response = api.get(f"/api/wallets/{WALLETS['A'].upper().replace('0X', '0x')}/category-pnl")
    assert response.status_code == 200
    body = response.json()
    assert body["wallet"] == WALLETS["A"]
    by_category = {c["category"]: c for c in body["categories"]}
    assert set(by_category) == {"Politics / Geopolitics", "Crypto / DeFi"}
    politics = by_category["Politics / Geopolitics"]
    assert politics["realized_pnl_usd"] == "180" and politics["wins"] == 3 and politics["losses"] == 0
    assert politics["n_markets"] == 4 and politics["n_resolved_markets"] == 3
    assert body["total"]["realized_pnl_usd"] == "180" and body["total"]["n_markets"] == 5
    # marked to market (issue 13): A holds 100 YES of m10 bought at 0.30, whose last fill is
    # B's at 0.31, and 100 YES of m11 at 0.30 (its own fill is the last); m1-m3 are resolved
    marked = ("unrealized_pnl_usd", "total_pnl_usd", "open_value_usd")
    assert [politics[k] for k in marked] == ["1", "181", "31"]
    assert [by_category["Crypto / DeFi"][k] for k in marked] == ["0", "0", "30"]
    assert [body["total"][k] for k in marked] == ["1", "181", "61"]


def test_wallet_address_is_validated_and_unknown_is_404(api):
    assert api.get("/api/wallets/0x123/category-pnl").status_code == 422
    assert api.get("/api/wallets/" + "0x" + "g" * 40 + "/category-pnl").status_code == 422
    response = api.get("/api/wallets/0x" + "0" * 40 + "/category-pnl")
    assert response.status_code == 404 and "has no positions" in response.json()["detail"]


def test_openapi_document_is_served(api):
    doc = api.get("/openapi.json").json()
    assert {
        "/api/health",
        "/api/strategies",
        "/api/strategies/{strategy_id}/watchlist",
        "/api/strategies/{strategy_id}/watchlist/stream",
        "/api/wallets/{address}/category-pnl",
        "/api/stream-tokens",
    } <= set(doc["paths"])
    stream = doc["paths"]["/api/strategies/{strategy_id}/watchlist/stream"]["get"]
    assert "token" in {p["name"] for p in stream["parameters"]}  # documented for EventSource


def test_bearer_token_guards_everything_but_health(api_with_token):
    client = api_with_token
    for path in (
        "/api/strategies",
        "/api/strategies/all/watchlist",
        "/api/strategies/all/watchlist/stream",
        f"/api/wallets/{WALLETS['A']}/category-pnl",
    ):
        response = client.get(path)
        assert response.status_code == 401, path
        assert response.headers["www-authenticate"] == "Bearer"
        assert client.get(path, headers={"Authorization": "Bearer wrong"}).status_code == 401
    ok = client.get("/api/strategies", headers={"Authorization": f"Bearer {TOKEN}"})
    assert ok.status_code == 200
    assert client.get("/api/health").status_code in (200, 503)  # no token needed


def test_health_answers_json_and_is_cached(api):
    started = time.monotonic()
    first = api.get("/api/health")
    assert first.status_code in (200, 503)
    report = first.json()
    assert report["status"] and isinstance(report["checks"], list)
    assert (first.status_code == 503) == (report["status"] in ("critical", "error"))
    assert "api" not in {c["name"] for c in report["checks"]}  # the API does not probe itself
    second = api.get("/api/health")
    assert second.json().get("cached") is True and second.status_code == first.status_code
    assert time.monotonic() - started < 30


def test_busy_embedded_engine_is_503_with_retry_after(held_directory, watchlist_world):
    settings = held_directory.replace(postgres_url=watchlist_world.pg_url)
    with running_api(settings, ApiSettings(retry_after_s=7)) as base:
        response = httpx.get(f"{base}/api/wallets/{WALLETS['A']}/category-pnl", timeout=15)
        assert response.status_code == 503 and response.headers["retry-after"] == "7"
        detail = response.json()["detail"]
        # the holder here is a plain process, not the pipeline: the answer must not blame the
        # pipeline, and names no path or process of this machine
        assert "busy" in detail and "another process" in detail and "pipeline" not in detail
        assert str(settings.clickhouse_path) not in detail and "pid" not in detail
        # Postgres routes do not need the engine
        assert httpx.get(f"{base}/api/strategies", timeout=15).status_code == 200


def test_postgres_down_is_503_not_a_crash(tmp_path, watchlist_world):
    settings = watchlist_world.settings.replace(postgres_url="postgresql://postgres@127.0.0.1:1/x")
    with running_api(settings, ApiSettings(pg_pool_timeout_s=0.5)) as base:
        response = httpx.get(f"{base}/api/strategies", timeout=15)
        assert response.status_code == 503 and "app database is unavailable" in response.json()["detail"]


def test_a_slow_request_times_out_with_504():
    async def slow_app(scope, receive, send):
        await asyncio.sleep(5)

    sent = []

    async def send(message):
        sent.append(message)

    async def receive():
        return {"type": "http.request", "body": b""}

    scope = {"type": "http", "path": "/api/strategies", "method": "GET", "headers": []}
    started = time.monotonic()
    asyncio.run(RequestTimeout(slow_app, 0.2)(scope, receive, send))
    assert time.monotonic() - started < 2
    assert sent[0]["type"] == "http.response.start" and sent[0]["status"] == 504
