"""GET /api/leaderboard and the wallet route's marked-to-market columns (issue 13), answered
from a warehouse whose marts are made by hand in the shape of the dbt models (the same DDL as
the health report's test), so these tests do not depend on dbt."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import httpx
import pytest

from ingest.tables import ensure_tables
from pipeline import names, warehouse
from pipeline.config import ApiSettings
from tests.support import mart_shapes
from tests.support.api_helpers import running_api
from tests.support.settings import make_settings

USD = 1_000_000
TOKEN = "t0ken-for-leaderboard-tests"
AS_OF = dt.date(2026, 11, 27)
W1, W2, W3, W4 = (f"0x{n:040x}" for n in (0xA1, 0xB2, 0xC3, 0xD4))
SPORTS, POLITICS = "Sports", "Politics / Geopolitics"

# (window, days, category, wallet, realized PnL in 10^-6 USD, volume in 10^-6 USD, fills,
#  rank by PnL, rank by volume): ranks as the model writes them, deliberately different from
# the order of the rows here so that only the rank columns can produce the expected order.
BOARD = [
    ("7d", 7, "", W2, 1_500_250_000, 20 * USD, 3, 2, 3),
    ("7d", 7, "", W1, 2_000_000_001, 5 * USD, 1, 1, 4),
    ("7d", 7, "", W4, -750_500_000, 900 * USD, 12, 4, 1),
    ("7d", 7, "", W3, 0, 30 * USD, 2, 3, 2),
    ("30d", 30, "", W1, 9 * USD, 50 * USD, 5, 1, 2),
    ("30d", 30, "", W4, -1 * USD, 1000 * USD, 20, 2, 1),
    ("30d", 30, SPORTS, W4, 2_500_000, 400 * USD, 8, 1, 1),
    ("30d", 30, SPORTS, W3, 1_000_000, 30 * USD, 2, 2, 2),
    ("all", 0, "", W1, 10 * USD, 60 * USD, 6, 1, 1),
]
# wallet, category, realized, unrealized, open value (10^-6 USD)
PNL = [
    (W1, POLITICS, 12_500_000, -3_250_000, 40_000_000),
    (W1, SPORTS, -2_000_000, 750_001, 1_000_000),
    (W2, SPORTS, 5 * USD, 0, 0),
    # sums with trailing zeros (0.25 + 0.75, 1000.123456 + 1103.823324) and to zero (0.5 - 0.5)
    (W3, POLITICS, 250_000, 500_000, 1_000_123_456),
    (W3, SPORTS, 750_000, -500_000, 1_103_823_324),
]


def _usd(units: int) -> str:
    """How ClickHouse's toString prints a Decimal(38, 6) of `units` 10^-6 USD."""
    text = f"{abs(units) // USD}.{abs(units) % USD:06d}".rstrip("0").rstrip(".")
    return ("-" if units < 0 else "") + text


def _decimal(units: int) -> Decimal:
    return Decimal(units) / USD


def build_marts(settings) -> None:
    """fct_leaderboard and fct_wallet_category_pnl, shaped exactly like the dbt marts."""
    board = []
    for window, days, category, wallet, pnl, volume, fills, rank_pnl, rank_volume in BOARD:
        start = AS_OF - dt.timedelta(days=days - 1) if days else dt.date(2026, 10, 1)
        board.append(
            (
                window,
                days,
                AS_OF,
                start,
                category,
                wallet,
                pnl,
                _decimal(pnl),
                volume,
                _decimal(volume),
                fills,
                rank_pnl,
                rank_volume,
            )
        )
    pnl_rows = [
        (
            wallet,
            cat,
            r,
            _decimal(r),
            u,
            _decimal(u),
            r + u,
            _decimal(r + u),
            o,
            _decimal(o),
            10 * USD,
            Decimal(10),
            8 * USD,
            4,
            2,
            1,
            int(r > 0),
            int(r < 0),
            1.0,
            0.1,
        )
        for wallet, cat, r, u, o in PNL
    ]
    with warehouse.connect(settings) as ch:
        ensure_tables(ch)
        mart_shapes.create(ch, names.FCT_WALLET_CATEGORY_PNL)
        mart_shapes.create(ch, names.FCT_LEADERBOARD)
        ch.insert(
            f"{names.ANALYTICS}.{names.FCT_LEADERBOARD}",
            board,
            column_names=mart_shapes.columns(names.FCT_LEADERBOARD),
        )
        ch.insert(
            f"{names.ANALYTICS}.{names.FCT_WALLET_CATEGORY_PNL}",
            pnl_rows,
            column_names=mart_shapes.columns(names.FCT_WALLET_CATEGORY_PNL),
        )


@pytest.fixture(scope="module")
def marts_settings(tmp_path_factory):
    settings = make_settings(tmp_path_factory.mktemp("leaderboard"))
    build_marts(settings)
    return settings


@pytest.fixture(scope="module")
def api(marts_settings):
    with running_api(marts_settings, ApiSettings(token=TOKEN)) as base:
        with httpx.Client(base_url=base, timeout=30, headers={"Authorization": f"Bearer {TOKEN}"}) as client:
            yield client


def expected(window: str, category: str, by: str) -> list[dict]:
    """The model's rows for one window and category in the order of the chosen rank column."""
    rank = 7 if by == "pnl" else 8
    rows = sorted((r for r in BOARD if r[0] == window and r[2] == category), key=lambda r: r[rank])
    return [
        {
            "rank": r[rank],
            "wallet": r[3],
            "realized_pnl_usd": _usd(r[4]),
            "volume_usd": _usd(r[5]),
            "n_fills": r[6],
        }
        for r in rows
    ]


def test_defaults_are_seven_days_all_categories_by_pnl(api):
    response = api.get("/api/leaderboard")
    assert response.status_code == 200, response.text
    body = response.json()
    assert {k: v for k, v in body.items() if k != "entries"} == {
        "window": "7d",
        "category": "",
        "by": "pnl",
        "as_of_day": "2026-11-27",
        "window_start": "2026-11-21",
    }
    assert body["entries"] == [
        {"rank": 1, "wallet": W1, "realized_pnl_usd": "2000.000001", "volume_usd": "5", "n_fills": 1},
        {"rank": 2, "wallet": W2, "realized_pnl_usd": "1500.25", "volume_usd": "20", "n_fills": 3},
        {"rank": 3, "wallet": W3, "realized_pnl_usd": "0", "volume_usd": "30", "n_fills": 2},
        {"rank": 4, "wallet": W4, "realized_pnl_usd": "-750.5", "volume_usd": "900", "n_fills": 12},
    ]
    assert body["entries"] == expected("7d", "", "pnl")


def test_by_volume_orders_by_the_volume_rank(api):
    body = api.get("/api/leaderboard", params={"window": "7d", "by": "volume"}).json()
    assert [(e["rank"], e["wallet"]) for e in body["entries"]] == [(1, W4), (2, W3), (3, W2), (4, W1)]
    assert body["entries"] == expected("7d", "", "volume") and body["by"] == "volume"


def test_category_window_and_limit(api):
    body = api.get("/api/leaderboard", params={"window": "30d", "category": SPORTS, "limit": 1}).json()
    assert body["window"] == "30d" and body["category"] == SPORTS
    assert body["window_start"] == "2026-10-29" and body["as_of_day"] == "2026-11-27"
    assert body["entries"] == [
        {"rank": 1, "wallet": W4, "realized_pnl_usd": "2.5", "volume_usd": "400", "n_fills": 8}
    ]
    both = api.get("/api/leaderboard", params={"window": "30d", "category": SPORTS, "by": "volume"}).json()
    assert both["entries"] == expected("30d", SPORTS, "volume") and len(both["entries"]) == 2
    overall = api.get("/api/leaderboard", params={"window": "30d"}).json()
    assert overall["entries"] == expected("30d", "", "pnl")  # the Sports rows are not mixed in
    alltime = api.get("/api/leaderboard", params={"window": "all"}).json()
    assert alltime["entries"] == expected("all", "", "pnl") and alltime["window"] == "all"


def test_an_unknown_category_is_an_empty_board_not_404(api):
    response = api.get("/api/leaderboard", params={"category": "Knitting"})
    assert response.status_code == 200
    body = response.json()
    assert body["entries"] == [] and body["category"] == "Knitting" and body["as_of_day"] == "2026-11-27"


def test_a_category_that_is_the_token_is_not_echoed(api):
    """A successful answer quotes its parameters back: a client that sends the token as the
    category must not find it in the body (docs/api.md: no answer contains a secret)."""
    response = api.get("/api/leaderboard", params={"category": f"{TOKEN} / x"})
    assert response.status_code == 200, response.text
    assert response.json()["category"] == "*** / x" and TOKEN not in response.text


@pytest.mark.parametrize(
    "params",
    [
        {"window": "2d"},
        {"window": "7D"},
        {"by": "roi"},
        {"limit": 0},
        {"limit": 1001},
        {"limit": "ten"},
        {"category": "x" * 101},
    ],
)
def test_bad_values_are_422(api, params):
    response = api.get("/api/leaderboard", params=params)
    assert response.status_code == 422, response.text
    detail = response.json()["detail"][0]
    assert detail["loc"] == ["query", next(iter(params))]


def test_limit_bounds_are_accepted(api):
    assert len(api.get("/api/leaderboard", params={"limit": 1}).json()["entries"]) == 1
    assert len(api.get("/api/leaderboard", params={"limit": 1000}).json()["entries"]) == 4


def test_the_route_needs_the_token(api):
    response = httpx.get(str(api.base_url).rstrip("/") + "/api/leaderboard", timeout=30)
    assert response.status_code == 401


def test_openapi_documents_the_route_and_its_response(api):
    doc = api.get("/openapi.json").json()
    get = doc["paths"]["/api/leaderboard"]["get"]
    params = {p["name"]: p for p in get["parameters"]}
    assert set(params) == {"window", "category", "by", "limit"}
    assert params["window"]["schema"]["enum"] == ["1d", "7d", "30d", "all"]
    assert params["window"]["schema"]["default"] == "7d"
    assert params["by"]["schema"]["enum"] == ["pnl", "volume"] and params["by"]["schema"]["default"] == "pnl"
    assert (params["limit"]["schema"]["minimum"], params["limit"]["schema"]["maximum"]) == (1, 1000)
    assert params["category"]["schema"]["default"] == ""
    assert {"401", "422", "503"} <= set(get["responses"])
    assert get["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/Leaderboard")
    schemas = doc["components"]["schemas"]
    assert set(schemas["Leaderboard"]["properties"]) == {
        "window",
        "category",
        "by",
        "as_of_day",
        "window_start",
        "entries",
    }
    assert set(schemas["LeaderboardEntry"]["properties"]) == {
        "rank",
        "wallet",
        "realized_pnl_usd",
        "volume_usd",
        "n_fills",
    }
    assert {"unrealized_pnl_usd", "total_pnl_usd", "open_value_usd"} <= set(
        schemas["CategoryPnl"]["properties"]
    )


def test_wallet_route_returns_unrealized_total_and_open_value(api):
    response = api.get(f"/api/wallets/{W1}/category-pnl")
    assert response.status_code == 200, response.text
    body = response.json()
    marked = ("realized_pnl_usd", "unrealized_pnl_usd", "total_pnl_usd", "open_value_usd")
    assert [{k: c[k] for k in ("category", *marked)} for c in body["categories"]] == [
        {
            "category": POLITICS,
            "realized_pnl_usd": "12.5",
            "unrealized_pnl_usd": "-3.25",
            "total_pnl_usd": "9.25",
            "open_value_usd": "40",
        },
        {
            "category": SPORTS,
            "realized_pnl_usd": "-2",
            "unrealized_pnl_usd": "0.750001",
            "total_pnl_usd": "-1.249999",
            "open_value_usd": "1",
        },
    ]
    total = body["total"]
    assert {k: total[k] for k in marked} == {
        "realized_pnl_usd": "10.5",
        "unrealized_pnl_usd": "-2.499999",
        "total_pnl_usd": "8.000001",
        "open_value_usd": "41",
    }
    assert total["volume_usd"] == "20" and total["buy_collateral_usd"] == "16" and total["n_markets"] == 4


def test_every_usd_string_has_one_form(api):
    """The categories' amounts are ClickHouse's toString, the total's are sums made in Python:
    both in ClickHouse's form (no trailing zeros, "0" for zero), whatever the sum."""
    body = api.get(f"/api/wallets/{W3}/category-pnl").json()
    rows = {r[1]: r for r in PNL if r[0] == W3}
    for category in body["categories"]:
        _, _, realized, unrealized, open_value = rows[category["category"]]
        assert [category[k] for k in ("realized_pnl_usd", "unrealized_pnl_usd", "open_value_usd")] == [
            _usd(realized),
            _usd(unrealized),
            _usd(open_value),
        ]
        assert category["buy_collateral_usd"] == _usd(8 * USD)
    total = body["total"]
    assert [
        total[k] for k in ("realized_pnl_usd", "unrealized_pnl_usd", "total_pnl_usd", "open_value_usd")
    ] == [
        _usd(sum(r[2] for r in rows.values())),
        _usd(sum(r[3] for r in rows.values())),
        _usd(sum(r[2] + r[3] for r in rows.values())),
        _usd(sum(r[4] for r in rows.values())),
    ]
    assert total["buy_collateral_usd"] == _usd(16 * USD) and total["volume_usd"] == _usd(20 * USD)
    assert total["unrealized_pnl_usd"] == "0" and total["open_value_usd"] == "2103.94678"


def test_a_warehouse_without_the_leaderboard_is_503(tmp_path):
    settings = make_settings(tmp_path)
    with warehouse.connect(settings) as ch:
        ensure_tables(ch)
    with running_api(settings, ApiSettings()) as base:
        response = httpx.get(f"{base}/api/leaderboard", timeout=30)
    assert response.status_code == 503 and "not built" in response.json()["detail"]
    assert response.headers["retry-after"]
