"""Live Goldsky ingest against a real HTTP server on 127.0.0.1 (tests/support/goldsky_fake.py).

The promise under test: whatever the server does (crowded seconds at page boundaries, rate
limits, 5xx, stalls, dropped connections, garbage, duplicates) and however the process
dies, the rows stored are exactly the events served, each once.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ingest import subgraph
from ingest.subgraph import Cursor, GoldskyError, MalformedPage, TokenBucket
from pipeline import warehouse
from pipeline.config import PROJECT_ROOT, ConfigError, load_settings
from tests.support.goldsky_fake import TRANSIENT_FAULTS, FakeGoldsky, Fault, make_event, make_events
from tests.support.settings import make_settings

UTC = dt.UTC
START = 1704067200  # 2024-01-01
# Crowded seconds: one of > 3,000 events, and exact / near multiples of the page size.
CROWDED = {3600: 3500, 7200: 1000, 10800: 999, 14400: 1001}
ROW_COLUMNS = (
    "id, toUnixTimestamp(timestamp), transaction_hash, order_hash, maker, taker, "
    "maker_asset_id, taker_asset_id, maker_amount_filled, taker_amount_filled, fee, "
    "block_number, contract_version"
)


def _dataset() -> list[dict]:
    events = make_events(2500, START, crowded=CROWDED)
    # The same events served twice: repeated in the data set, so they come in two pages or
    # twice in one page.
    return events + events[:40] + events[2500:2530] + events[-5:]


EVENTS = _dataset()


def _settings(tmp_path: Path, fake: FakeGoldsky, **env: str):
    base = {
        "GOLDSKY_SOURCE": "subgraph",
        "GOLDSKY_SUBGRAPH_URL": fake.url,
        "GOLDSKY_PNL_SUBGRAPH_URL": fake.pnl_url,
        "GOLDSKY_START": "2024-01-01",
        "GOLDSKY_RATE_LIMIT": "0",
        "GOLDSKY_RETRY_WAIT_S": "0.01",
        "GOLDSKY_RETRY_MAX_WAIT_S": "0.05",
        "GOLDSKY_TIMEOUT_S": "0.5",
        "GOLDSKY_MAX_ATTEMPTS": "6",
        "GOLDSKY_BATCH_ROWS": "2500",
    }
    base.update(env)
    return make_settings(tmp_path, **base)


def _rows(settings) -> dict[str, tuple]:
    """Stored rows by id; fails if any id is stored twice (no FINAL: duplicates would show)."""
    with warehouse.connect(settings) as ch:
        rows = ch.query(f"SELECT {ROW_COLUMNS} FROM raw.order_filled").result_rows
    by_id = {r[0]: tuple(r) for r in rows}
    assert len(by_id) == len(rows), f"{len(rows) - len(by_id)} duplicate rows stored"
    return by_id


def _cursor(settings, key: str = "subgraph") -> Cursor | None:
    with warehouse.connect(settings) as ch:
        state = subgraph.read_cursor(ch, key)
    return state.cursor if state else None


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """The reference: one clean run over the whole data set."""
    tmp = tmp_path_factory.mktemp("clean")
    with FakeGoldsky(EVENTS) as fake:
        settings = _settings(tmp, fake)
        report = subgraph.ingest_fills(settings)
        log = list(fake.log)
    return _rows(settings), report, log


def test_clean_run_stores_every_served_event_once_with_crowded_seconds(uninterrupted):
    rows, report, log = uninterrupted
    served = {e["id"] for e in EVENTS}
    assert set(rows) == served
    assert report.rows_new == len(served) and report.rows_fetched >= len(served)
    # The > 3,000-event second was read in id order, continuing with id_gt.
    crowded = str(START + 3600)
    by_id = [
        r.variables["where"]
        for r in log
        if r.root == "orderFilledEvents" and r.variables["where"].get("timestamp") == crowded
    ]
    assert len(by_id) >= 4 and sum("id_gt" in w for w in by_id) >= 3
    assert all(r.variables["first"] == 1000 for r in log if r.root == "orderFilledEvents")
    # Values arrive as the file loader would store them.
    e = make_event(7, int(EVENTS[7]["timestamp"]))
    assert rows[e["id"]] == (
        e["id"],
        int(e["timestamp"]),
        e["transactionHash"],
        e["orderHash"],
        e["maker"],
        e["taker"],
        e["makerAssetId"],
        e["takerAssetId"],
        int(e["makerAmountFilled"]),
        int(e["takerAmountFilled"]),
        int(e["fee"]),
        0,
        "v1",
    )


def test_cursor_is_stored_and_a_second_run_adds_nothing(tmp_path):
    with FakeGoldsky(EVENTS) as fake:
        settings = _settings(tmp_path, fake)
        subgraph.ingest_fills(settings)
        last = max(int(e["timestamp"]) for e in EVENTS)
        assert _cursor(settings) == Cursor(last + 1)
        before = fake.requests
        again = subgraph.ingest_fills(settings)
        assert again.rows_new == 0 and again.rows_fetched == 0
        assert fake.requests - before == 2  # _meta and one empty page
        # The same range again under its own cursor (--since): every event served twice,
        # nothing stored twice, and the nightly cursor untouched.
        replay = subgraph.ingest_fills(settings, since=dt.datetime(2024, 1, 1, tzinfo=UTC))
        assert replay.rows_fetched >= len({e["id"] for e in EVENTS}) and replay.rows_new == 0
        assert _cursor(settings) == Cursor(last + 1)
        assert _cursor(settings, replay.source) == Cursor(last + 1)
    assert set(_rows(settings)) == {e["id"] for e in EVENTS}


def test_every_transient_fault_is_ridden_out_and_ids_match_exactly(tmp_path, uninterrupted, caplog):
    with FakeGoldsky(EVENTS, timeout_stall_s=0.8) as fake:
        # One of each fault first (each followed by a good answer), then random ones.
        for kind in TRANSIENT_FAULTS:
            fake.schedule(Fault(kind, "0" if kind == "429_retry_after_0" else None), "ok")
        fake.chaos(0.3, seed=7)
        settings = _settings(tmp_path, fake)
        with caplog.at_level(logging.WARNING, logger="ingest.subgraph"):
            report = subgraph.ingest_fills(settings)
        kinds = {r.fault for r in fake.log if r.fault}
        assert kinds >= set(TRANSIENT_FAULTS)
        assert report.retries == sum(1 for r in fake.log if r.fault and r.fault != "ok")
        assert set(_rows(settings)) == fake.served_ids == {e["id"] for e in EVENTS}
    assert _rows(settings) == uninterrupted[0]
    assert any("retrying" in r.getMessage() for r in caplog.records)


def test_retry_after_is_honoured(tmp_path):
    with FakeGoldsky(EVENTS[:50]) as fake:
        fake.schedule(Fault("429", retry_after="1"), "ok", Fault("429"))
        settings = _settings(tmp_path, fake)
        subgraph.ingest_fills(settings)
        at = [r.at for r in fake.log]
        assert at[1] - at[0] >= 0.95  # told to wait a second: waited it
        assert at[3] - at[2] < 0.5  # no Retry-After: our own (tiny) backoff
    assert len(_rows(settings)) == 50


def test_fatal_graphql_error_stops_with_its_message_and_resume_completes(tmp_path, uninterrupted):
    with FakeGoldsky(EVENTS) as fake:
        settings = _settings(tmp_path, fake)
        fake.schedule("ok", "ok", "ok", "ok", "ok", "ok", "graphql_fatal")
        with pytest.raises(GoldskyError, match="has no field `orderFilledEventz`"):
            subgraph.ingest_fills(settings)
        assert fake.requests == 7  # not retried
        partial = _rows(settings)
        assert 0 < len(partial) < len(uninterrupted[0])  # pages before the error were kept
        subgraph.ingest_fills(settings)
    assert _rows(settings) == uninterrupted[0]


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ("bad_event", r"maker not-an-address is not an address.*nothing from this batch was written"),
        ("missing_field", r"field \w+ is missing"),
    ],
)
def test_malformed_page_is_rejected_and_nothing_from_it_is_written(tmp_path, fault, message, uninterrupted):
    with FakeGoldsky(EVENTS) as fake:
        settings = _settings(tmp_path, fake)
        fake.schedule(*["ok"] * 4, fault)
        with pytest.raises(MalformedPage, match=message):
            subgraph.ingest_fills(settings)
        bad = fake.log[4]
        assert bad.fault == fault and bad.ids
        cursor = _cursor(settings)
        stored = _rows(settings)
        assert not set(bad.ids) & set(stored)
        # Everything stored lies before the cursor, which lies before the bad page's start.
        requested = bad.variables["where"]
        assert cursor is None or cursor.ts <= int(requested.get("timestamp_gte", requested.get("timestamp")))
        assert all(row[1] <= cursor.ts for row in stored.values()) if cursor else not stored
        subgraph.ingest_fills(settings)
    assert _rows(settings) == uninterrupted[0]


def test_persistently_malformed_json_gives_up_with_a_clear_error(tmp_path):
    with FakeGoldsky(EVENTS[:10]) as fake:
        settings = _settings(tmp_path, fake, GOLDSKY_MAX_ATTEMPTS="3")
        fake.schedule("ok", "bad_json", "bad_json", "bad_json")
        with pytest.raises(MalformedPage, match="gave up after 3 attempts: malformed JSON"):
            subgraph.ingest_fills(settings)
    assert _rows(settings) == {}


def test_http_4xx_is_fatal_and_names_the_api_key(tmp_path):
    with FakeGoldsky(EVENTS[:10]) as fake:
        settings = _settings(tmp_path, fake)
        fake.schedule("ok", "401")
        with pytest.raises(GoldskyError, match="HTTP 401 \\(check GOLDSKY_API_KEY\\)"):
            subgraph.ingest_fills(settings)
        assert fake.requests == 2


def test_empty_subgraph_and_empty_range(tmp_path):
    with FakeGoldsky([]) as fake:
        settings = _settings(tmp_path, fake)
        report = subgraph.ingest_fills(settings)
        assert (report.rows_fetched, report.pages) == (0, 0)
        assert _cursor(settings) is None
    with FakeGoldsky(EVENTS) as fake:
        settings = _settings(tmp_path / "range", fake)
        empty = subgraph.ingest_fills(
            settings, since=dt.datetime(2023, 1, 1, tzinfo=UTC), until=dt.datetime(2023, 1, 2, tzinfo=UTC)
        )
        assert empty.rows_fetched == 0 and _rows(settings) == {}


def test_until_bounds_the_backfill_and_the_next_run_continues(tmp_path, uninterrupted):
    until = dt.datetime.fromtimestamp(START + 3600 + 1, UTC)  # just after the crowded second
    with FakeGoldsky(EVENTS) as fake:
        settings = _settings(tmp_path, fake)
        first = subgraph.ingest_fills(settings, until=until)
        expected = {e["id"] for e in EVENTS if int(e["timestamp"]) < until.timestamp()}
        assert set(_rows(settings)) == expected and first.rows_new == len(expected)
        assert _cursor(settings) == Cursor(int(until.timestamp()))
        assert all(
            int(r.variables["where"].get("timestamp_lt", 0)) == int(until.timestamp())
            for r in fake.log
            if r.root == "orderFilledEvents" and "timestamp_gte" in r.variables["where"]
        )
        subgraph.ingest_fills(settings)
    assert _rows(settings) == uninterrupted[0]


@pytest.mark.parametrize(("moment", "batch"), [("inserted", 2), ("committed", 3), ("inserted", 1)])
def test_crash_inside_a_batch_then_resume_equals_uninterrupted(tmp_path, moment, batch, uninterrupted):
    class Crash(Exception):
        pass

    def hook(event: str, number: int) -> None:
        if (event, number) == (moment, batch):
            raise Crash(f"killed after batch {number} was {event}")

    with FakeGoldsky(EVENTS) as fake:
        settings = _settings(tmp_path, fake)
        with pytest.raises(Crash):
            subgraph.ingest_fills(settings, hook=hook)
        subgraph.ingest_fills(settings)
    assert _rows(settings) == uninterrupted[0]


@pytest.mark.slow
def test_process_killed_at_random_moments_then_resumed_equals_uninterrupted(tmp_path, uninterrupted):
    """SIGKILL a real `runner.py ingest` process twice mid-run, then let it finish."""
    with FakeGoldsky(EVENTS, delay_s=0.02) as fake:
        settings = _settings(tmp_path, fake)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GOLDSKY_", "CLICKHOUSE_"))}
        env.update(
            TZ="UTC",
            CASCADIAN_HOME=str(settings.home),
            DATA_DIR=str(settings.data_dir),
            REPORTS_DIR=str(tmp_path / "reports"),
            GOLDSKY_SOURCE="subgraph",
            GOLDSKY_SUBGRAPH_URL=fake.url,
            GOLDSKY_START="2024-01-01",
            GOLDSKY_RATE_LIMIT="0",
            GOLDSKY_BATCH_ROWS="1500",
            GOLDSKY_RETRY_WAIT_S="0.01",
            LOG_LEVEL="DEBUG",
            LOG_FORMAT="text",
        )
        cmd = [sys.executable, str(PROJECT_ROOT / "runner.py"), "ingest"]
        cursors = []
        # Kill after the n-th batch of a run is committed, then a moment later: the kill
        # lands while pages are fetched, staged or inserted, or between insert and cursor.
        for batches, delay in ((2, 0.0), (1, 0.07)):
            proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            seen, output = 0, []
            for line in proc.stdout:  # type: ignore[union-attr]
                output.append(line)
                seen += "batch committed" in line
                if seen >= batches:
                    time.sleep(delay)
                    proc.send_signal(signal.SIGKILL)
                    break
            proc.wait(30)
            assert proc.returncode == -signal.SIGKILL, "".join(output)
            cursors.append(_cursor(settings))
        assert None not in cursors and cursors[0] != cursors[1]
        subgraph.ingest_fills(settings)  # the last run in-process: one process start less
    assert _rows(settings) == uninterrupted[0]


def test_lag_is_reported_and_warned_about(tmp_path):
    old = START + 86_400
    with FakeGoldsky(EVENTS[:10], head_ts=old) as fake:
        settings = _settings(tmp_path, fake, GOLDSKY_MAX_LAG_MINUTES="30")
        lag = subgraph.subgraph_lag(settings)
        assert lag["block_number"] == 80_000_000 and lag["block_time"].startswith("2024-01-02")
        assert lag["lag_minutes"] > 30 and lag["ok"] is False and lag["has_indexing_errors"] is False
        report = subgraph.ingest_fills(settings)
        assert any("minutes behind the chain" in w for w in report.warnings)
        assert any("2026-04-28" in w for w in report.warnings)
    with FakeGoldsky([], head_ts=int(time.time()) - 60) as fake:
        fresh = subgraph.subgraph_lag(_settings(tmp_path / "fresh", fake))
        assert fresh["ok"] is True and fresh["lag_minutes"] < 5
    down = subgraph.subgraph_lag(_settings(tmp_path / "down", fake, GOLDSKY_MAX_ATTEMPTS="1"))
    assert down["ok"] is False and "connection refused" in down["error"]


def test_api_key_is_sent_as_bearer_and_never_shown(tmp_path, caplog):
    with FakeGoldsky(EVENTS[:5]) as fake:
        settings = _settings(tmp_path, fake, GOLDSKY_API_KEY="sk-secret-123")
        with caplog.at_level(logging.DEBUG):
            subgraph.ingest_fills(settings)
        assert {r.authorization for r in fake.log} == {"Bearer sk-secret-123"}
    assert "sk-secret" not in repr(settings) and "sk-secret" not in str(settings.describe())
    assert not any("sk-secret" in r.getMessage() + str(getattr(r, "ctx", "")) for r in caplog.records)


def test_progress_lines_carry_rows_rate_cursor_and_eta(tmp_path, caplog):
    with FakeGoldsky(EVENTS) as fake:
        settings = _settings(tmp_path, fake)
        with caplog.at_level(logging.INFO, logger="ingest.subgraph"):
            subgraph.ingest_fills(settings, until=dt.datetime(2024, 1, 2, tzinfo=UTC), progress_every_s=0)
    lines = [r.ctx for r in caplog.records if r.getMessage() == "subgraph ingest progress"]
    assert len(lines) >= 3
    assert {"rows", "rows_per_s", "cursor", "eta", "eta_s", "target"} <= set(lines[-1])
    assert lines[-1]["target"].startswith("2024-01-02") and 0 <= lines[-1]["eta_s"] <= 1


def test_token_bucket_limits_the_request_rate():
    clock = [0.0]
    bucket = TokenBucket(rate=10, burst=2, clock=lambda: clock[0])
    slept = []

    def sleep(s):
        slept.append(s)
        clock[0] += s

    for _ in range(12):
        bucket.acquire(sleep)
    assert clock[0] == pytest.approx(1.0, abs=0.01)  # 2 free, then 10 at 10/s
    assert TokenBucket(rate=0).acquire(sleep) == 0.0


def test_client_rate_limit_against_the_server(tmp_path):
    with FakeGoldsky(EVENTS[:5]) as fake:
        settings = _settings(tmp_path, fake, GOLDSKY_RATE_LIMIT="40")
        with subgraph.SubgraphClient.from_settings(settings) as client:
            started = time.monotonic()
            for _ in range(30):
                client.query(subgraph.META_QUERY)
            elapsed = time.monotonic() - started
    assert elapsed >= (30 - 10) / 40 * 0.9  # burst of 10, then 40/s


def test_subgraph_settings():
    s = load_settings({"GOLDSKY_SOURCE": "subgraph"})
    assert s.goldsky_subgraph_url.endswith("/orderbook-subgraph/0.0.1/gn")
    assert s.goldsky_pnl_subgraph_url.endswith("/pnl-subgraph/0.0.14/gn")
    assert (s.goldsky_rate_limit, s.goldsky_page_size, s.goldsky_max_lag_minutes) == (20.0, 1000, 60.0)
    assert s.goldsky_start == dt.datetime(2020, 1, 1, tzinfo=UTC) and s.goldsky_api_key is None
    assert load_settings({"GOLDSKY_START": "2024-03-01T12:00:00Z"}).goldsky_start == dt.datetime(
        2024, 3, 1, 12, tzinfo=UTC
    )
    for env, message in [
        ({"GOLDSKY_PAGE_SIZE": "5000"}, "less than or equal to 1000"),
        ({"GOLDSKY_RATE_LIMIT": "fast"}, "GOLDSKY_RATE_LIMIT='fast': Input should be a valid number"),
        ({"GOLDSKY_START": "yesterday"}, "not an ISO date"),
    ]:
        with pytest.raises(ConfigError, match=message):
            load_settings(env)


def test_runner_ingest_takes_since_and_until_and_the_step_dispatches(tmp_path):
    import runner
    from nightly.steps import step_ingest_fills
    from pipeline.steps import RunContext

    args = runner.build_parser().parse_args(
        ["ingest", "--since", "2024-01-01", "--until", "2024-01-01T02:00"]
    )
    assert (args.since, args.until) == (
        dt.datetime(2024, 1, 1, tzinfo=UTC),
        dt.datetime(2024, 1, 1, 2, tzinfo=UTC),
    )
    with pytest.raises(SystemExit):
        runner.build_parser().parse_args(["ingest", "--since", "last week"])
    now = dt.datetime.now(UTC)
    with FakeGoldsky(EVENTS) as fake:
        settings = _settings(tmp_path, fake)
        result = step_ingest_fills(RunContext(settings, "t", "test", now), since=args.since, until=args.until)
    expected = {e["id"] for e in EVENTS if int(e["timestamp"]) < START + 7200}
    assert result.rows_out == len(expected) and set(_rows(settings)) == expected
    assert result.details["source"] == "subgraph:2024-01-01T00:00:00+00:00..2024-01-01T02:00:00+00:00"
    with pytest.raises(ValueError, match="subgraph source only"):
        step_ingest_fills(RunContext(make_settings(tmp_path / "s"), "t", "test", now), since=args.since)


# --- issue 15, 5: fail fast on infrastructure, retry the transient within a budget ----------


@pytest.mark.parametrize(
    ("url", "cause"),
    [
        ("http://127.0.0.1:9/subgraphs/closed/gn", r"connection refused"),
        ("http://goldsky.invalid/subgraphs/nothing/gn", r"cannot resolve host goldsky\.invalid"),
    ],
)
def test_an_unreachable_endpoint_stops_within_seconds_with_its_real_cause(tmp_path, url, cause):
    """Issue 15, 7: DNS failures were retried 10 times per endpoint with waits up to 60 s
    (16 minutes), although retrying cannot fix them."""
    with FakeGoldsky([]) as fake:
        settings = _settings(
            tmp_path,
            fake,
            GOLDSKY_SUBGRAPH_URL=url,
            GOLDSKY_MAX_ATTEMPTS="10",
            GOLDSKY_RETRY_WAIT_S="1",
            GOLDSKY_RETRY_MAX_WAIT_S="60",
        )
        started = time.monotonic()
        with pytest.raises(GoldskyError, match=cause) as info:
            subgraph.ingest_fills(settings)
        assert time.monotonic() - started < 5
    assert "retrying cannot fix" in str(info.value)
    assert _cursor(settings) is None


@pytest.mark.parametrize("status", ["401", "403"])
def test_refused_credentials_stop_at_once(tmp_path, status):
    with FakeGoldsky(EVENTS[:10]) as fake:
        settings = _settings(tmp_path, fake)
        fake.schedule(status)
        with pytest.raises(GoldskyError, match=f"HTTP {status} \\(check GOLDSKY_API_KEY\\)"):
            subgraph.ingest_fills(settings)
        assert fake.requests == 1  # the _meta request: the run stopped there


def test_graph_node_store_errors_are_retried(tmp_path):
    """graph-node answers `store error ...` when its database is briefly unavailable: that is
    transient, like a 503."""
    with FakeGoldsky(EVENTS[:50]) as fake:
        settings = _settings(tmp_path, fake)
        fake.schedule("ok", "store_error", "store_error", "ok")
        report = subgraph.ingest_fills(settings)
        assert report.retries == 2 and report.rows_new == 50
    assert len(_rows(settings)) == 50


def test_transient_failures_give_up_when_the_retry_budget_is_spent(tmp_path):
    with FakeGoldsky(EVENTS[:50]) as fake:
        settings = _settings(
            tmp_path,
            fake,
            GOLDSKY_RETRY_BUDGET_S="1.5",
            GOLDSKY_MAX_ATTEMPTS="1000",
            GOLDSKY_RETRY_WAIT_S="0.2",
            GOLDSKY_RETRY_MAX_WAIT_S="0.2",
        )
        fake.schedule("ok", *["503"] * 200)
        started = time.monotonic()
        with pytest.raises(
            GoldskyError, match=r"retry budget of 1\.5 s \(GOLDSKY_RETRY_BUDGET_S\).*HTTP 503"
        ):
            subgraph.ingest_fills(settings)
        elapsed = time.monotonic() - started
        assert 1.0 < elapsed < 4
        assert 3 <= fake.requests < 20
        # a Retry-After beyond what is left of the budget is not waited for
        fake.faults.clear()
        fake.schedule(Fault("429", retry_after="120"))
        started = time.monotonic()
        with pytest.raises(GoldskyError, match=r"Retry-After 120 s.*retry budget"):
            subgraph.ingest_fills(settings, check_lag=False)
        assert time.monotonic() - started < 3


def test_retry_budget_setting():
    assert load_settings({}).goldsky_retry_budget_s == 300.0
    assert load_settings({"GOLDSKY_RETRY_BUDGET_S": "45"}).goldsky_retry_budget_s == 45.0
    with pytest.raises(ConfigError, match="GOLDSKY_RETRY_BUDGET_S"):
        load_settings({"GOLDSKY_RETRY_BUDGET_S": "-1"})
