"""Watchlist auto-populate (critical bug 2): the right markets, once, per strategy, with a
fallback when signals cannot be computed and a clear error for bad configuration."""

from __future__ import annotations

import dataclasses
import json
import re

import psycopg
import pytest

from pipeline import warehouse
from pipeline.config import ConfigError, WatchlistSettings, load_settings
from pipeline.steps import FAILED, SKIPPED, SUCCESS, Step, run_step
from tests.support.factories import condition
from tests.support.settings import make_settings
from tests.support.watchlist_world import (
    CANONICAL,
    CATEGORY,
    EXPECTED,
    WALLETS,
    context,
    insert_strategies,
    market_id,
)
from watchlist.migrations import migrate
from watchlist.publish import publish, step_watchlist_publish


def entries(url: str, strategy: str) -> dict[str, dict]:
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT market_id, condition_id, reason, metadata, status FROM strategy_watchlists "
            "WHERE strategy_id = %s",
            (strategy,),
        ).fetchall()
    return {m: {"condition_id": c, "reason": r, "metadata": meta, "status": s} for m, c, r, meta, s in rows}


def test_signal_markets_are_added_with_reason_and_metadata(watchlist_world):
    got = entries(watchlist_world.pg_url, "all")
    assert set(got) == {market_id(n) for n in EXPECTED}  # not m13 (C loses), m14 (too old),
    for n, (who, rank) in EXPECTED.items():  # m15 (resolved), m16 (D unqualified)
        e = got[market_id(n)]
        assert e["reason"] == "signal_wallet" and e["status"] == "active"
        assert e["condition_id"] == condition(n)
        meta = e["metadata"]
        assert meta["wallet"] == WALLETS[who] and meta["wallet_rank"] == rank
        assert meta["category"] == CANONICAL[CATEGORY[n]]
        assert meta["outcome"] == "YES" and meta["run_id"] == "first-run"
    # A traded m1-m3 (resolved) and m10, m11: coverage 3/5; B m1, m2, m15 of six markets
    assert got[market_id(10)]["metadata"]["wallet_coverage"] == 0.6
    assert got[market_id(12)]["metadata"]["wallet_coverage"] == 0.5
    assert got[market_id(10)]["metadata"]["wallet_realized_pnl_usd"] == "180"


def test_category_filters_and_strategy_thresholds_are_respected(watchlist_world):
    url = watchlist_world.pg_url
    assert set(entries(url, "politics")) == {market_id(10)}
    assert set(entries(url, "crypto-sports")) == {market_id(11), market_id(12)}
    assert set(entries(url, "rank1")) == {market_id(10), market_id(11)}  # B (rank 2) excluded
    assert entries(url, "paused") == {}
    details = watchlist_world.first.details
    assert details["mode"] == "signals" and details["added"]["all"] == 3
    assert details["market_dim"]["rows"] == len(CATEGORY)


def test_a_second_run_adds_nothing_twice(watchlist_world):
    url, settings, cfg = watchlist_world.pg_url, watchlist_world.settings, watchlist_world.config
    before = {s: entries(url, s) for s in ("all", "politics", "crypto-sports", "rank1")}
    again = publish(context(settings, "second-run"), cfg, build_models=False)
    assert again.status == SUCCESS and again.rows_out == 0
    assert again.details["fills_since"] == again.details["fills_watermark"]  # nothing new since
    # forget the watermark: the same positions are found again, and ON CONFLICT keeps one entry
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DELETE FROM watchlist_publish_runs")
    third = publish(context(settings, "third-run"), cfg, build_models=False)
    assert third.rows_out == 0 and third.details["skipped_existing"] == 8
    after = {s: entries(url, s) for s in before}
    assert after == before
    with psycopg.connect(url, autocommit=True) as conn:
        dupes = conn.execute(
            "SELECT count(*) FROM (SELECT strategy_id, market_id FROM strategy_watchlists "
            "GROUP BY 1, 2 HAVING count(*) > 1) d"
        ).fetchone()[0]
    assert dupes == 0


def test_publish_builds_the_app_models(watchlist_world):
    dbt = watchlist_world.first.details["dbt_app"]
    assert dbt.get("error", 0) == 0 and dbt.get("fail", 0) == 0 and dbt["success"] == 2
    with psycopg.connect(watchlist_world.pg_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT question, category, triggering_wallet, wallet_rank, alerts "
            "FROM watchlist_enriched WHERE strategy_id = 'all' AND market_id = %s",
            (market_id(12),),
        ).fetchone()
    assert row == ("Will thing 12 happen?", "Sports", WALLETS["B"], 2, True)  # added just now


# --- fallback -----------------------------------------------------------------------------


def _fresh(tmp_path, url, **env):
    settings = make_settings(tmp_path, GOLDSKY_SOURCE="dataset", **env).replace(postgres_url=url)
    migrate(url)
    insert_strategies(url)
    return settings


def test_missing_marts_fall_back_to_the_configured_defaults(tmp_path, empty_pg_url):
    settings = _fresh(tmp_path, empty_pg_url)
    with psycopg.connect(empty_pg_url, autocommit=True) as conn:  # known from an earlier publish
        conn.execute(
            "INSERT INTO market_dim (condition_id, market_id, question, category, is_resolved) "
            "VALUES (%s, '500010', 'Q10?', 'Politics / Geopolitics', false), "
            "(%s, '500011', 'Q11?', 'Crypto / DeFi', false)",
            (condition(10), condition(11)),
        )
    cfg = watchlist_settings({"DEFAULT_CONDITION_IDS": condition(10), "DEFAULT_MARKET_ID": "500011"})
    result = publish(context(settings), cfg, build_models=False)
    assert result.status == SUCCESS and result.details["mode"] == "defaults"
    assert any("marts missing" in w and "DEFAULT_MARKET_ID" in w for w in result.warnings)
    got = entries(empty_pg_url, "all")
    assert set(got) == {"500010", "500011"}
    assert got["500011"]["condition_id"] == condition(11) and got["500011"]["reason"] == "default"
    assert "marts missing" in got["500010"]["metadata"]["fallback_reason"]
    assert set(entries(empty_pg_url, "politics")) == {"500010"}  # filters still apply


def _resolutionless_marts(settings):
    """Marts as dbt would leave them with an empty resolution map: nothing resolved."""
    with warehouse.connect(settings) as ch:
        warehouse.ensure_databases(ch)
        ch.command(
            "CREATE TABLE analytics.dim_markets (condition_id String, market_id Nullable(String), "
            "question Nullable(String), category String, is_resolved Bool, "
            "resolved_outcome Nullable(String), end_date Nullable(DateTime64(3, 'UTC'))) "
            "ENGINE = MergeTree ORDER BY condition_id"
        )
        ch.command(
            "CREATE TABLE analytics.fct_wallet_positions (wallet String, token_id String, "
            "condition_id Nullable(String), outcome_index Nullable(UInt8), open_amount UInt64, "
            "volume UInt64, n_fills UInt64, is_resolved Bool, first_fill_at DateTime64(3, 'UTC'), "
            "last_fill_at DateTime64(3, 'UTC')) ENGINE = MergeTree ORDER BY (wallet, token_id)"
        )
        ch.command(
            "CREATE TABLE analytics.fct_wallet_category_pnl (wallet String, category String, "
            "realized_pnl Int128, n_markets UInt64, n_resolved_markets UInt64) "
            "ENGINE = MergeTree ORDER BY wallet"
        )
        markets = [
            (condition(n), market_id(n), f"Q{n}?", CANONICAL[CATEGORY[n]], False, None, None)
            for n in (10, 11, 12, 16, 17)
        ]
        ch.insert("analytics.dim_markets", markets)
        volume = {10: 500, 11: 400, 12: 300, 16: 200, 17: 100}
        ch.insert(
            "analytics.fct_wallet_positions",
            [(WALLETS["A"], f"t{n}", condition(n), 0, 1, v, 1, False, 0, 0) for n, v in volume.items()],
        )
        ch.insert("analytics.fct_wallet_category_pnl", [(WALLETS["A"], "Sports", 0, 5, 0)])


def test_missing_resolutions_fall_back_to_the_most_active_markets(tmp_path, empty_pg_url):
    settings = _fresh(tmp_path, empty_pg_url)
    _resolutionless_marts(settings)
    cfg = WatchlistSettings(fallback_size=2)
    result = publish(context(settings), cfg, build_models=False)
    assert result.details["mode"] == "most_active"
    assert any("resolutions missing" in w and "2 most active" in w for w in result.warnings)
    assert set(entries(empty_pg_url, "all")) == {market_id(10), market_id(11)}  # top 2 by volume
    assert set(entries(empty_pg_url, "crypto-sports")) == {market_id(11), market_id(12)}
    assert entries(empty_pg_url, "all")[market_id(10)]["reason"] == "most_active"


def test_no_signals_and_nothing_to_fall_back_on_is_a_warning(tmp_path, empty_pg_url):
    settings = _fresh(tmp_path, empty_pg_url)
    result = publish(context(settings), WatchlistSettings(), build_models=False)
    assert result.status == SUCCESS and result.details["mode"] == "none" and result.rows_out == 0
    assert "nothing added" in result.warnings[0]


# --- configuration and availability ---------------------------------------------------------


def watchlist_settings(env: dict[str, str]):
    return load_settings(env).watchlist


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DEFAULT_MARKET_ID": "0x" + "0" * 64}, "DEFAULT_MARKET_ID='0x000"),
        ({"DEFAULT_CONDITION_IDS": f"{condition(1)}, 0xABC"}, "DEFAULT_CONDITION_IDS="),
        ({"DEFAULT_CONDITION_IDS": "0x" + condition(1)[2:].upper()}, "DEFAULT_CONDITION_IDS="),
        (
            {"WATCHLIST_FALLBACK_SIZE": "ten"},
            "WATCHLIST_FALLBACK_SIZE='ten': Input should be a valid integer",
        ),
        (
            {"WATCHLIST_FALLBACK_SIZE": "0"},
            "WATCHLIST_FALLBACK_SIZE='0': Input should be greater than or equal to 1",
        ),
        (
            {"WATCHLIST_MIN_COVERAGE": "1.5"},
            "WATCHLIST_MIN_COVERAGE='1.5': Input should be less than or equal to 1",
        ),
    ],
)
def test_bad_configuration_is_rejected_at_start_naming_the_variable(env, message):
    with pytest.raises(ConfigError, match="^" + re.escape(message)):
        watchlist_settings(env)


def test_defaults_parse(monkeypatch):
    cfg = watchlist_settings(
        {
            "DEFAULT_CONDITION_IDS": f" {condition(1)},,{condition(2)},{condition(1)} ",
            "DEFAULT_MARKET_ID": "512345",
            "WATCHLIST_FALLBACK_SIZE": "3",
        }
    )
    assert cfg.default_condition_ids == (condition(1), condition(2))
    assert cfg.default_market_id == "512345" and cfg.fallback_size == 3
    assert watchlist_settings({}).fallback_size == 10


def test_no_postgres_url_skips_the_step(tmp_path):
    result = run_step(Step("watchlist_publish", step_watchlist_publish), context(make_settings(tmp_path)))
    assert result.status == SKIPPED and result.message == "POSTGRES_URL not set"


def test_postgres_down_fails_the_step_clearly(tmp_path):
    settings = make_settings(tmp_path).replace(postgres_url="postgresql://u:secret@127.0.0.1:1/app")
    result = run_step(Step("watchlist_publish", step_watchlist_publish), context(settings))
    assert result.status == FAILED
    assert result.message.startswith(
        "cannot connect to the app database (POSTGRES_URL=postgresql://127.0.0.1:1/app)"
    )
    assert "secret" not in json.dumps(dataclasses.asdict(result), default=str)


# --- one source for each rule (issue 14): the watchlist reads the dbt models ------------------


def _world_without_marts(tmp_path, url, models: tuple[str, ...] = ()):
    """The small world's raw tables loaded and only the dbt `models` built (no mart)."""
    from nightly.steps import step_ingest_fills, step_load_reference
    from pipeline.dbt_chdb import run_dbt
    from tests.support.watchlist_world import write_world

    settings = _fresh(tmp_path, url)
    write_world(settings)
    for step in (step_ingest_fills, step_load_reference):
        assert step(context(settings, "raw")).status == SUCCESS
    if models:
        outcome = run_dbt(settings, ["run", "--quiet", "--select", *models])
        assert outcome.success, (outcome.error, outcome.failures)
    return settings


def test_without_marts_the_fallback_reads_resolved_from_the_model_not_its_own_rule(tmp_path, empty_pg_url):
    """Marts missing: the most active markets come from the views below them, and which are
    resolved from dbt's `int_resolutions` (here replaced by a stand-in that calls m12 resolved
    and m15 not, against the map), never from a payout rule of the watchlist's own."""
    models = ("+int_fills_credited", "+int_token_conditions", "stg_reference__markets", "+int_resolutions")
    settings = _world_without_marts(tmp_path, empty_pg_url, models)
    with warehouse.connect(settings) as ch:
        ch.command(
            "CREATE OR REPLACE VIEW analytics.int_resolutions AS SELECT condition_id, "
            f"condition_id = '{condition(12)}' AS is_resolved FROM raw.resolutions"
        )
    result = publish(context(settings), WatchlistSettings(fallback_size=20), build_models=False)
    assert result.details["mode"] == "most_active"
    got = set(entries(empty_pg_url, "all"))
    assert market_id(12) not in got  # resolved, says the model
    assert {market_id(10), market_id(15)} <= got  # m15: resolved in the map, not in the model
    assert all(e["reason"] == "most_active" for e in entries(empty_pg_url, "all").values())


def test_before_dbt_ran_the_fallback_ranks_nothing_and_says_why(tmp_path, empty_pg_url):
    settings = _world_without_marts(tmp_path, empty_pg_url)
    result = publish(context(settings), WatchlistSettings(fallback_size=20), build_models=False)
    assert result.details["mode"] == "none" and result.rows_out == 0
    assert any("dbt has not built analytics.int_fills_credited" in w for w in result.warnings), (
        result.warnings
    )


def test_the_watchlist_states_no_rule_the_models_own():
    """No payout pair and no "Uncategorized" literal in watchlist/: both live in the dbt project
    (and pipeline.names), which the watchlist reads."""
    from pipeline.config import PROJECT_ROOT

    sources = {p.name: p.read_text() for p in (PROJECT_ROOT / "watchlist").rglob("*.py")}
    assert not [n for n, text in sources.items() if re.search(r"payout_(yes|no)\s*=\s*[01]", text)]
    assert not [n for n, text in sources.items() if '"Uncategorized"' in text]


def test_a_strategy_added_later_starts_from_the_look_back(watchlist_world):
    """A strategy's first publish looks back WATCHLIST_LOOKBACK_HOURS like the very first
    publish did; it used to see only positions opened after the last publish's watermark,
    so a strategy created after the first night stayed empty until new positions opened."""
    url, settings = watchlist_world.pg_url, watchlist_world.settings
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO strategies (id, name, category_filter) VALUES ('later', 'Later', ARRAY['Sports'])"
        )
    try:
        result = publish(context(settings, "later-run"), watchlist_world.config, build_models=False)
        assert result.details["added"]["later"] == 1
        assert set(entries(url, "later")) == {market_id(12)}  # B's m12, opened T0 - 2 h
        assert result.details["added"]["all"] == 0  # the others are not looked back again
        again = publish(context(settings, "later-again"), watchlist_world.config, build_models=False)
        assert again.details["added"] == dict.fromkeys(again.details["added"], 0)
    finally:
        with psycopg.connect(url, autocommit=True) as conn:  # leave the shared world as it was
            conn.execute("UPDATE strategies SET active = false WHERE id = 'later'")
