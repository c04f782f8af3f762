"""Token map and resolution map refreshed from the (fake) Goldsky subgraphs."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from ingest import reference_files, refresh
from ingest.goldsky_client import MalformedPage
from nightly.steps import steps
from pipeline import warehouse
from pipeline.steps import SKIPPED, SUCCESS, RunContext, Step, run_step
from tests.support.factories import write_jsonl
from tests.support.goldsky_fake import FakeGoldsky, conditions, market_datas
from tests.support.settings import make_settings

UTC = dt.UTC
NOW = dt.datetime(2026, 11, 28, 8, 0, tzinfo=UTC)


def _settings(tmp_path, fake, **env):
    base = {
        "GOLDSKY_SOURCE": "subgraph",
        "GOLDSKY_SUBGRAPH_URL": fake.url,
        "GOLDSKY_PNL_SUBGRAPH_URL": fake.pnl_url,
        "GOLDSKY_RATE_LIMIT": "0",
        "GOLDSKY_RETRY_WAIT_S": "0.01",
        "GOLDSKY_RETRY_MAX_WAIT_S": "0.05",
        "GOLDSKY_PAGE_SIZE": "100",
    }
    return make_settings(tmp_path, **{**base, **env})


def _ctx(settings):
    return RunContext(settings=settings, run_id="test", trigger="test", started_at=NOW)


def test_resolution_map_is_rebuilt_in_the_documented_format(tmp_path):
    conds = conditions(250)
    # Payouts on another scale still read as YES/NO/50-50; a three-way or uneven payout does not.
    conds.append({"id": "0x" + "ab" * 32, "payoutNumerators": ["1000", "0"], "payoutDenominator": "1000"})
    conds.append({"id": "0x" + "cd" * 32, "payoutNumerators": ["0", "0", "1"], "payoutDenominator": "1"})
    conds.append({"id": "0x" + "ef" * 32, "payoutNumerators": ["5", "5"], "payoutDenominator": "10"})
    conds.append({"id": "0x" + "12" * 32, "payoutNumerators": ["3", "1"], "payoutDenominator": "4"})
    conds.append({"id": "0x" + "34" * 32, "payoutNumerators": ["1", "1"], "payoutDenominator": "1"})
    with FakeGoldsky(conditions=conds) as fake:
        settings = _settings(tmp_path, fake)
        listed = conds[0]["id"]
        write_jsonl(
            settings.data_dir / "markets.jsonl",
            [{"condition_id": listed, "market_id": 512345, "token_ids": ["1", "2"]}],
        )
        fake.schedule("503", "ok", "allowance_200")  # rides out faults like the fills do
        result = refresh.refresh_resolutions(settings, now=NOW)
    doc = json.loads(result.path.read_text())
    assert list(doc) == ["total_conditions", "resolved_conditions", "last_updated", "resolutions"]
    assert doc["last_updated"] == "2026-11-28T08:00:00.000Z"
    assert doc["total_conditions"] == len(conds) == len(doc["resolutions"])
    by_id = {e["condition_id"]: e for e in doc["resolutions"]}
    assert by_id[listed] == {
        "condition_id": listed,
        "market_id": "512345",
        "resolved_outcome": "YES",
        "payout_yes": 1,
        "payout_no": 0,
        "resolved_at": "2026-11-28T08:00:00.000Z",
    }
    assert (
        by_id[conds[1]["id"]]["resolved_outcome"] == "NO" and by_id[conds[1]["id"]]["market_id"] == "unknown"
    )
    # unresolved, three outcomes, an uneven split, numerators that do not add up
    for cid in (conds[2]["id"], "0x" + "cd" * 32, "0x" + "12" * 32, "0x" + "34" * 32):
        e = by_id[cid]
        assert (e["resolved_outcome"], e["payout_yes"], e["payout_no"], e["resolved_at"]) == (None,) * 4
    assert by_id["0x" + "ab" * 32]["resolved_outcome"] == "YES"
    # [1, 1] (and [5, 5] of 10) is UMA's 50-50: each token redeems at half
    for cid in (conds[3]["id"], "0x" + "ef" * 32):
        e = by_id[cid]
        assert (e["resolved_outcome"], e["payout_yes"], e["payout_no"]) == ("50-50", 1, 1)
        assert e["resolved_at"] == "2026-11-28T08:00:00.000Z"
    assert doc["resolved_conditions"] == sum(e["resolved_outcome"] is not None for e in doc["resolutions"])
    assert doc["resolved_conditions"] == 63 + 63 + 62 + 1 + 1
    # The reference loader reads it as it is, with a header that agrees with the entries.
    _rows, load = reference_files.resolution_rows(result.path)
    assert load.entries == len(conds) and load.resolved == doc["resolved_conditions"] and not load.warnings
    assert not [p for p in result.path.parent.iterdir() if p.name.endswith(".tmp")]


def test_a_failed_refresh_keeps_the_previous_file(tmp_path):
    with FakeGoldsky(conditions=conditions(150)) as fake:
        settings = _settings(tmp_path, fake, GOLDSKY_MAX_ATTEMPTS="2")
        first = refresh.refresh_resolutions(settings, now=NOW)
        before = first.path.read_bytes()
        fake.schedule("ok", "graphql_fatal")  # page 2 fails: nothing is written
        with pytest.raises(Exception, match="has no field"):
            refresh.refresh_resolutions(settings, now=NOW + dt.timedelta(days=1))
        assert first.path.read_bytes() == before
        fake.conditions = [dict(conditions(1)[0], payoutDenominator="one")]
        with pytest.raises(MalformedPage, match="payoutDenominator 'one' is not an integer"):
            refresh.refresh_resolutions(settings, now=NOW)
        fake.conditions = []
        with pytest.raises(Exception, match="returned no conditions"):
            refresh.refresh_resolutions(settings, now=NOW)
        assert first.path.read_bytes() == before


def test_token_map_is_replaced_whole(tmp_path):
    tokens = market_datas(130)
    tokens.append({"id": "123", "condition": "0x" + "EF" * 32, "outcomeIndex": None})
    with FakeGoldsky(market_datas=tokens) as fake:
        settings = _settings(tmp_path, fake)
        with warehouse.connect(settings) as ch:
            from ingest.tables import ensure_tables

            ensure_tables(ch)
            assert refresh.refresh_token_map(settings, ch) == len(tokens)
            rows = ch.query("SELECT token_id, condition_id, outcome_index FROM raw.token_map").result_rows
            assert sorted(rows) == sorted(
                (
                    t["id"],
                    t["condition"].lower(),
                    None if t["outcomeIndex"] is None else int(t["outcomeIndex"]),
                )
                for t in tokens
            )
            fake.market_datas = sorted(tokens[:10], key=lambda t: t["id"])
            refresh.refresh_token_map(settings, ch)
            assert ch.command("SELECT count() FROM raw.token_map") == 10
            fake.market_datas = [{"id": "12", "condition": "nope", "outcomeIndex": "0"}]
            with pytest.raises(MalformedPage, match="condition 'nope'"):
                refresh.refresh_token_map(settings, ch)
            assert ch.command("SELECT count() FROM raw.token_map") == 10
            assert not ch.command("SELECT count() FROM system.tables WHERE name LIKE '_stage_token_map%'")


def test_nightly_step_runs_before_ingest_only_for_the_subgraph_source(tmp_path):
    names = [s.name for s in steps()]
    assert names.index("refresh_resolutions") < names.index("ingest_fills")
    step = Step("refresh_resolutions", refresh.step_refresh_resolutions)
    skipped = run_step(step, _ctx(make_settings(tmp_path / "sample")))
    assert skipped.status == SKIPPED and "GOLDSKY_SOURCE=sample" in skipped.message
    with FakeGoldsky(market_datas=market_datas(20), conditions=conditions(20)) as fake:
        settings = _settings(tmp_path, fake)
        done = run_step(step, _ctx(settings))
    assert done.status == SUCCESS, done.error
    assert (done.details["tokens"], done.details["conditions"], done.details["resolved"]) == (40, 20, 15)
    assert (settings.data_dir / "expanded_resolution_map.json").exists()


def test_an_unresolvable_endpoint_fails_the_step_in_seconds_naming_the_cause(tmp_path):
    """Issue 15, 7: after 16 minutes of retries the step said "no tokens, no conditions (0
    resolved)" instead of why."""
    import time

    with FakeGoldsky(conditions=conditions(5)) as fake:
        settings = _settings(
            tmp_path,
            fake,
            GOLDSKY_SUBGRAPH_URL="http://goldsky.invalid/subgraphs/orderbook/gn",
            GOLDSKY_PNL_SUBGRAPH_URL="http://127.0.0.1:9/subgraphs/pnl/gn",
            GOLDSKY_MAX_ATTEMPTS="10",
            GOLDSKY_RETRY_WAIT_S="1",
            GOLDSKY_RETRY_MAX_WAIT_S="60",
        )
        started = time.monotonic()
        done = run_step(Step("refresh_resolutions", refresh.step_refresh_resolutions), _ctx(settings))
    assert time.monotonic() - started < 5
    assert done.status == "failed"
    assert "cannot resolve host goldsky.invalid" in done.error and "connection refused" in done.error
    assert "no tokens" not in done.message and "cannot resolve host" in done.message
    assert not (settings.data_dir / "expanded_resolution_map.json").exists()
