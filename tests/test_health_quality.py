"""The Great Expectations checkpoint: the committed suites, the sample run, and induced faults."""

from __future__ import annotations

import datetime as dt
import json
import re

from health import quality
from health.quality import (
    GX_SOURCE_DIR,
    MART_KEYS,
    SUITES,
    run_quality,
    step_quality_checkpoint,
    suite_parameters,
)
from ingest.tables import ensure_tables
from pipeline import history, warehouse
from pipeline.config import HealthSettings
from pipeline.names import MARTS
from pipeline.steps import RunContext, new_run_id
from tests.support.factories import condition
from tests.support.settings import SAMPLE_NOW, make_settings

UTC = dt.UTC


def failures(summary: dict) -> dict[tuple[str, str | None], str]:
    """(suite, column or expectation) -> severity of every failed expectation."""
    return {
        (s["suite"], f["column"] or f["expectation"]): f["severity"]
        for s in summary["suites"]
        for f in s["failures"]
    }


def test_the_committed_context_is_complete_and_parameterised():
    checkpoint = json.loads((GX_SOURCE_DIR / "checkpoints" / "nightly.json").read_text())
    assert [v["name"] for v in checkpoint["validation_definitions"]] == list(SUITES)
    assert checkpoint["actions"][0]["type"] == "update_data_docs"
    params = set(suite_parameters(HealthSettings()))
    used = set()
    for suite in SUITES:
        doc = json.loads((GX_SOURCE_DIR / "expectations" / f"{suite}.json").read_text())
        vd = json.loads((GX_SOURCE_DIR / "validation_definitions" / f"{suite}.json").read_text())
        assert doc["name"] == vd["suite"]["name"] == suite and doc["id"] == vd["suite"]["id"]
        for exp in doc["expectations"]:
            assert exp["severity"] in ("warning", "critical") and exp["description"]
            used |= set(re.findall(r'"\$PARAMETER": "(\w+)"', json.dumps(exp["kwargs"])))
    assert used == params
    config = (GX_SOURCE_DIR / "great_expectations.yml").read_text()
    assert "    base_directory: inputs\n" in config and "analytics_enabled: false" in config
    assert set(MART_KEYS) == set(MARTS)
    assert not (GX_SOURCE_DIR / "uncommitted").exists()  # runs write into their own copy


def test_the_sample_run_passes_and_leaves_results_and_data_docs(sample_run, tmp_path):
    settings, _status, run = sample_run
    assert next(s for s in run["steps"] if s["name"] == "dbt_build")["status"] == "success"
    summary = run_quality(settings, tmp_path / "run", as_of=SAMPLE_NOW, run_id="r1")
    states = {s["suite"]: s["status"] for s in summary["suites"]}
    assert states["fills"] == states["resolutions"] == states["lookups"] == "passed", failures(summary)
    assert states["marts"] == "passed" and summary["status"] == "success"
    assert json.loads((tmp_path / "run" / "gx_results.json").read_text()) == summary
    assert (tmp_path / "run" / summary["data_docs"]).is_file()
    assert {p.name for p in (tmp_path / "run" / "gx" / "inputs").iterdir()} == {
        f"{s}.parquet" for s in SUITES
    }
    assert list((tmp_path / "run" / "gx" / "uncommitted" / "validations").rglob("*.json"))
    assert summary["frames"]["fills"]["rows"] <= HealthSettings().gx_window_days + 1  # aggregated per day
    assert summary["expectation_parameters"]["min_resolved_conditions"] == 3000


def test_the_step_warns_at_30_hours_and_fails_at_50(sample_run):
    settings, _, _ = sample_run
    with warehouse.connect(settings) as ch:
        newest = ch.query("SELECT max(timestamp) FROM raw.order_filled").result_rows[0][0]
    newest = newest.replace(tzinfo=UTC) if newest.tzinfo is None else newest

    def step_at(hours: float):
        started = newest + dt.timedelta(hours=hours)
        ctx = RunContext(settings, new_run_id(started), "test", started)
        return ctx, step_quality_checkpoint(ctx)

    ctx, late = step_at(30)
    fills = [w for w in late.warnings if w.startswith("quality warning: fills:")]
    assert len(fills) == 1 and "age_hours" in fills[0] and "24 h" in fills[0]
    assert late.status == "success" or "fills:" not in (
        late.error or ""
    )  # marts may fail while dbt is broken
    folder = history.run_folder(settings, ctx.run_id, ctx.started_at.isoformat())
    assert json.loads((folder / "gx_results.json").read_text())["suites"][0]["status"] == "warning"
    _, stale = step_at(50)
    assert stale.status == "failed"
    assert "fills: expect_column_min_to_be_between on age_hours" in stale.error
    assert "48 h" in stale.error


def test_induced_faults_fail_exactly_their_expectations(tmp_path):
    settings = make_settings(tmp_path)
    t = dt.datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
    fill_cols = [
        "id",
        "timestamp",
        "maker_asset_id",
        "taker_asset_id",
        "maker_amount_filled",
        "taker_amount_filled",
    ]
    with warehouse.connect(settings) as ch:
        ensure_tables(ch)
        ch.insert("raw.order_filled", [["a", t, "0", "123", 10, 20]], column_names=fill_cols)
        ch.insert(
            "raw.order_filled",
            [
                ["a", t, "0", "123", 10, 20],  # the same id again: a duplicate
                ["b", t, "0", "0", 10, 20],  # two collateral sides
                ["c", t, "5", "0", 0, 20],
            ],  # nothing filled
            column_names=fill_cols,
        )
        ch.insert(
            "raw.resolutions",
            [["0xABC", "MAYBE", 1, 0, 0], [condition(1), "YES", 0, 1, 1], [condition(2), "YES", 1, 0, 2]],
            column_names=["condition_id", "resolved_outcome", "payout_yes", "payout_no", "entry_index"],
        )
        ch.insert(
            "raw.market_id_lookups",
            [[condition(i), "42" if i < 4 else "7", i] for i in range(5)],
            column_names=["condition_id", "market_id", "line_number"],
        )
        ch.command(
            "CREATE TABLE analytics.fct_wallet_positions (wallet String, token_id String, amount UInt64, "
            "open_amount UInt64) ENGINE = MergeTree ORDER BY wallet"
        )
        ch.insert(
            "analytics.fct_wallet_positions",
            [["w1", "t1", 5, 0], ["w1", "t1", 3, 0], ["w2", "t2", 2**64 - 5, 0]],
        )
        ch.command(
            "CREATE TABLE analytics.fct_resolution_outcomes (wallet String, condition_id String) "
            "ENGINE = MergeTree ORDER BY wallet"
        )
        ch.insert("analytics.fct_resolution_outcomes", [["", "c1"]])
        ch.command(
            "CREATE TABLE analytics.fct_wallet_category_pnl (wallet String, category String) "
            "ENGINE = MergeTree ORDER BY wallet"
        )
    summary = run_quality(settings, tmp_path / "run", as_of=t + dt.timedelta(hours=1), run_id="faults")
    assert failures(summary) == {
        ("fills", "duplicate_ids"): "critical",
        ("fills", "non_positive_amounts"): "critical",
        ("fills", "collateral_sides_wrong"): "critical",
        ("resolutions", "resolved"): "critical",  # 1 resolved < 3,000
        ("resolutions", "id_shape"): "critical",
        ("resolutions", "payout_pattern"): "critical",  # MAYBE and YES 0/1: not resolved by the models
        ("lookups", "share"): "critical",  # one market id for 80 % of the rows
        ("lookups", "conditions"): "warning",
        ("marts", "exists"): "critical",  # dim_markets is missing
        ("marts", "null_keys"): "critical",
        ("marts", "duplicate_keys"): "critical",
        ("marts", "negative_positions"): "critical",
        ("marts", "rows"): "warning",  # fct_wallet_category_pnl is empty
    }
    assert summary["status"] == "failed" and summary["failed_warning"] == 2
    shapes = next(f for s in summary["suites"] for f in s["failures"] if f["column"] == "id_shape")
    assert shapes["observed"]["unexpected_values"] == ["0xABC"]


def test_lookups_suite_is_skipped_while_its_table_is_absent(tmp_path):
    settings = make_settings(tmp_path)
    with warehouse.connect(settings) as ch:
        ensure_tables(ch)
        ch.command("DROP TABLE raw.market_id_lookups")
    ctx = RunContext(settings, new_run_id(SAMPLE_NOW), "test", SAMPLE_NOW)
    result = step_quality_checkpoint(ctx)
    assert result.details["suites"]["lookups"] == "skipped"
    assert "lookups skipped" in result.message
    folder = history.run_folder(settings, ctx.run_id, ctx.started_at.isoformat())
    checkpoint = json.loads((folder / "gx" / "checkpoints" / "nightly.json").read_text())
    assert [v["name"] for v in checkpoint["validation_definitions"]] == ["fills", "resolutions", "marts"]
    # empty raw tables and no marts: the fail-level expectations fail the step
    assert result.status == "failed" and "marts: expect_column_values_to_be_in_set on exists" in result.error


def test_mart_checks_are_pushed_into_sql():
    sql = quality._mart_sql("fct_wallet_positions")
    assert "uniqExact(wallet, token_id)" in sql and "amount >= 9223372036854775808" in sql
    assert "negative_positions" in quality._mart_sql("dim_markets")


def test_a_lookup_of_two_rows_is_too_small_to_call_uniform(tmp_path):
    settings = make_settings(tmp_path)
    with warehouse.connect(settings) as ch:
        ensure_tables(ch)
        ch.insert(
            "raw.market_id_lookups",
            [[condition(1), "42", 1], [condition(2), "42", 2]],
            column_names=["condition_id", "market_id", "line_number"],
        )
    summary = run_quality(settings, tmp_path / "run", as_of=SAMPLE_NOW, run_id="tiny")
    lookups = next(s for s in summary["suites"] if s["suite"] == "lookups")
    assert lookups["status"] == "warning"
    assert [(f["column"], f["severity"]) for f in lookups["failures"]] == [("conditions", "warning")]


def test_resolutions_suite_counts_what_the_models_resolve(tmp_path):
    """Issue 14/13: the suite reads dim_markets.is_resolved instead of its own YES/NO rule, so
    50-50 entries the models resolve are counted and their payouts accepted, while an entry
    the models do not resolve still fails."""
    settings = make_settings(tmp_path)
    rows = [
        [condition(1), "YES", 1, 0, 0],
        [condition(2), "NO", 0, 1, 1],
        [condition(3), "50-50", 1, 1, 2],
        [condition(4), "50-50", 1, 1, 3],
        [condition(5), None, None, None, 4],
        [condition(6), "MAYBE", 1, 0, 5],
    ]
    with warehouse.connect(settings) as ch:
        ensure_tables(ch)
        ch.insert(
            "raw.resolutions",
            rows,
            column_names=["condition_id", "resolved_outcome", "payout_yes", "payout_no", "entry_index"],
        )
        ch.command(
            "CREATE TABLE analytics.dim_markets (condition_id String, is_resolved Bool) "
            "ENGINE = MergeTree ORDER BY condition_id"
        )
        ch.insert(  # what the models decided: YES, NO and 50-50 resolve; MAYBE does not
            "analytics.dim_markets", [[r[0], r[1] in ("YES", "NO", "50-50")] for r in rows]
        )
    hs = HealthSettings(min_resolved_conditions=4)
    summary = run_quality(settings, tmp_path / "run", as_of=SAMPLE_NOW, run_id="r-models", health=hs)
    resolutions = next(s for s in summary["suites"] if s["suite"] == "resolutions")
    failed = {f["column"]: f for f in resolutions["failures"]}
    assert "resolved" not in failed  # 4 resolved: YES, NO and both 50-50
    assert set(failed) == {"payout_pattern"}
    assert failed["payout_pattern"]["observed"]["unexpected_values"] == ["MAYBE:1:0"]
    frame = quality.pd.read_parquet(tmp_path / "run" / "gx" / "inputs" / "resolutions.parquet")
    assert int(frame["resolved"].sum()) == 4
