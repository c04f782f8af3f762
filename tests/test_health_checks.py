"""The healthcheck: every check driven to each of its statuses, concurrency and time budget."""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psycopg
import pytest

from health import checks
from health.checks import CRITICAL, HEALTHY, NOT_CONFIGURED, WARNING, run_checks
from ingest.reference_files import LOAD_COLUMNS
from ingest.tables import ensure_tables
from pipeline import warehouse
from pipeline.config import ConfigError, HealthSettings, load_settings
from pipeline.steps import RunContext, StepResult
from tests.support.factories import resolution
from tests.support.goldsky_fake import FakeGoldsky
from tests.support.settings import SAMPLE_NOW, make_settings

UTC = dt.UTC
NOW = dt.datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
FAST = HealthSettings(check_timeout_s=8.0, api_timeout_s=2.0, postgres_timeout_s=2.0)


def one(settings, name: str, hs: HealthSettings = FAST, now: dt.datetime = NOW, run=None) -> dict:
    report = run_checks(settings, hs, now=now, run=run, only=(name,))
    [check] = report["checks"]
    assert check["name"] == name
    return check


def iso(t: dt.datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def write_map(
    data_dir: Path,
    resolved: int,
    unresolved: int = 2,
    claimed: int | None = None,
    last_updated: dt.datetime | None = NOW,
) -> Path:
    entries = [resolution(i, "YES" if i % 2 else "NO") for i in range(resolved)]
    entries += [resolution(resolved + i, None) for i in range(unresolved)]
    doc = {
        "total_conditions": len(entries),
        "resolved_conditions": resolved if claimed is None else claimed,
        "resolutions": entries,
    }
    if last_updated is not None:
        doc["last_updated"] = iso(last_updated)
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / "expanded_resolution_map.json"
    path.write_text(json.dumps(doc))
    return path


def touch(path: Path, when: dt.datetime, text: str = "{}\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        path.write_text(text)
    os.utime(path, (when.timestamp(), when.timestamp()))
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- configuration --------------------------------------------------------------------------


def health_settings(env: dict[str, str]) -> HealthSettings:
    return load_settings(env).health


def test_every_threshold_comes_from_the_environment_with_defaults():
    assert load_settings({}).health == HealthSettings()
    hs = health_settings(
        {
            "MIN_RESOLVED_CONDITIONS": "10",
            "API_BASE_URL": "http://x:1/",
            "API_ROUTES": "/a, /b",
            "API_SLOW_MS": "250",
            "HEALTH_FRESHNESS_WARN_HOURS": "1",
            "HEALTH_FRESHNESS_CRITICAL_HOURS": "2",
            "HEALTH_POSTGRES_TABLES": "t1",
            "HEALTH_CHECK_TIMEOUT_S": "3",
        }
    )
    assert (hs.min_resolved_conditions, hs.api_base_url, hs.api_routes, hs.api_slow_ms) == (
        10,
        "http://x:1",
        ("/a", "/b"),
        250,
    )
    assert (hs.freshness_warn_hours, hs.freshness_critical_hours, hs.postgres_tables, hs.check_timeout_s) == (
        1,
        2,
        ("t1",),
        3,
    )
    with pytest.raises(ConfigError, match="HEALTH_TRADES_WARN_HOURS"):
        health_settings({"HEALTH_TRADES_WARN_HOURS": "50"})
    with pytest.raises(ConfigError, match="API_SLOW_MS"):
        health_settings({"API_SLOW_MS": "fast"})


# --- 1. Goldsky -----------------------------------------------------------------------------


def test_goldsky_sample_source_is_healthy(tmp_path):
    check = one(make_settings(tmp_path), "goldsky")
    assert (check["status"], check["message"].startswith("sample data")) == (HEALTHY, True)


@pytest.mark.parametrize(("age_h", "status"), [(2, HEALTHY), (30, WARNING), (50, CRITICAL)])
def test_goldsky_dataset_newest_file_age(tmp_path, age_h, status):
    settings = make_settings(tmp_path, GOLDSKY_SOURCE="dataset")
    touch(settings.goldsky_dataset_dir / "a" / "old.jsonl", NOW - dt.timedelta(hours=90))
    touch(settings.goldsky_dataset_dir / "b" / "new.jsonl", NOW - dt.timedelta(hours=age_h))
    check = one(settings, "goldsky")
    assert check["status"] == status
    assert check["details"]["newest_file"] == "b/new.jsonl"
    assert check["details"]["age_hours"] == pytest.approx(age_h, abs=0.01)


def test_goldsky_dataset_file_the_last_load_rejected_is_not_the_newest(tmp_path):
    """The newest file on disk was reported healthy ("newest dataset file bad.jsonl is 1.0 h
    old") though the night's load rejected it: it is named as rejected, with the reason, and
    the source's age is that of the newest file not rejected."""
    from ingest import goldsky_files
    from tests.support.factories import fill, token, wallet, write_jsonl

    settings = make_settings(tmp_path, GOLDSKY_SOURCE="dataset")
    good = [fill(1, 1764300000, wallet(1), "BUY", token(1, 0), 10_000_000, 4_000_000)]
    inbox = settings.goldsky_dataset_dir
    write_jsonl(inbox / "a" / "good.jsonl", good)
    write_jsonl(inbox / "b" / "bad.jsonl", [dict(good[0], id="x", maker_amount_filled="?")])
    with warehouse.connect(settings) as ch:
        ensure_tables(ch)
        report = goldsky_files.load_directory(ch, inbox)
    assert [f.path.name for f in report.rejected] == ["bad.jsonl"]
    touch(inbox / "a" / "good.jsonl", NOW - dt.timedelta(hours=2))
    touch(inbox / "b" / "bad.jsonl", NOW - dt.timedelta(hours=1))
    check = one(settings, "goldsky")
    assert check["status"] == WARNING, check
    assert "bad.jsonl" in check["message"] and "rejected" in check["message"]
    assert "maker_amount_filled" in check["message"]  # the reason, from the load's record
    assert check["details"]["newest_file"] == "a/good.jsonl"
    assert check["details"]["rejected_files"][0]["file"] == "b/bad.jsonl"
    # fixed in place (new bytes): not the rejected file any more
    write_jsonl(inbox / "b" / "bad.jsonl", [dict(good[0], id="y")])
    touch(inbox / "b" / "bad.jsonl", NOW - dt.timedelta(hours=1))
    assert one(settings, "goldsky")["status"] == HEALTHY


def test_goldsky_dataset_without_files_is_critical(tmp_path):
    check = one(make_settings(tmp_path, GOLDSKY_SOURCE="dataset"), "goldsky")
    assert check["status"] == CRITICAL and "does not exist" in check["message"]


@pytest.mark.parametrize(("lag_min", "status"), [(5, HEALTHY), (90, WARNING), (2000, CRITICAL)])
def test_goldsky_subgraph_lag(tmp_path, lag_min, status):
    head = int(time.time() - lag_min * 60)
    with FakeGoldsky(head_ts=head) as fake:
        settings = make_settings(tmp_path, GOLDSKY_SOURCE="subgraph", GOLDSKY_SUBGRAPH_URL=fake.url)
        check = one(settings, "goldsky")
    assert check["status"] == status, check
    assert check["details"]["lag_minutes"] == pytest.approx(lag_min, abs=1)


def test_goldsky_subgraph_errors_are_critical_without_retries(tmp_path):
    with FakeGoldsky(head_ts=int(time.time())) as fake:
        fake.schedule("500", "500", "500")
        settings = make_settings(
            tmp_path, GOLDSKY_SOURCE="subgraph", GOLDSKY_SUBGRAPH_URL=fake.url, GOLDSKY_RETRY_WAIT_S="5"
        )
        started = time.monotonic()
        check = one(settings, "goldsky")
        assert time.monotonic() - started < 3  # one attempt, no backoff
        assert len(fake.log) == 1
    assert check["status"] == CRITICAL and "unreachable" in check["message"]


def test_goldsky_subgraph_module_missing_is_a_warning(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ingest.subgraph", None)  # import raises ImportError
    check = one(make_settings(tmp_path, GOLDSKY_SOURCE="subgraph"), "goldsky")
    assert check["status"] == WARNING and "not available" in check["message"]


# --- 2, 3, 8. ClickHouse, tables, trade freshness ------------------------------------------


def test_sample_warehouse_is_healthy_with_version_counts_and_fresh_fills(sample_run):
    settings, _, _ = sample_run
    report = run_checks(settings, FAST, now=SAMPLE_NOW, only=("clickhouse", "tables", "trade_freshness"))
    by = {c["name"]: c for c in report["checks"]}
    assert by["clickhouse"]["status"] == HEALTHY and by["clickhouse"]["details"]["version"]
    tables = by["tables"]["details"]["tables"]
    assert set(tables) == set(checks.required_tables()) and len(tables) == 10
    assert tables["raw.order_filled"]["rows"] > 1000
    mart_tables = [t for t in tables if t.startswith("analytics.")]
    if all(tables[t]["exists"] for t in mart_tables):
        assert by["tables"]["status"] == HEALTHY
    assert by["trade_freshness"]["status"] == HEALTHY
    assert by["trade_freshness"]["details"]["age_hours"] < 24


def test_trade_freshness_at_30_and_50_hours(sample_run):
    settings, _, _ = sample_run
    newest = dt.datetime.fromisoformat(
        one(settings, "trade_freshness", now=SAMPLE_NOW)["details"]["newest_fill"]
    )
    assert one(settings, "trade_freshness", now=newest + dt.timedelta(hours=30))["status"] == WARNING
    late = one(settings, "trade_freshness", now=newest + dt.timedelta(hours=50))
    assert late["status"] == CRITICAL and "50.0 h old" in late["message"]


def test_missing_and_empty_tables(tmp_path):
    settings = make_settings(tmp_path)
    from ingest.tables import ensure_tables

    with warehouse.connect(settings) as ch:
        ensure_tables(ch)  # raw tables exist and are empty, no marts
    missing = one(settings, "tables")
    assert missing["status"] == CRITICAL
    assert "missing: analytics.fct_wallet_positions" in missing["message"]
    assert missing["details"]["tables"]["raw.order_filled"] == {"exists": True, "rows": 0}
    fills = one(settings, "trade_freshness")
    assert fills["status"] == CRITICAL and "empty" in fills["message"]
    with warehouse.connect(settings) as ch:
        for table in checks.required_tables():
            if table.startswith("analytics."):
                ch.command(f"CREATE TABLE {table} (x UInt8) ENGINE = MergeTree ORDER BY x")
    empty = one(settings, "tables")
    assert empty["status"] == WARNING and empty["message"].startswith("empty: raw.order_filled")
    first_column = {
        "raw.order_filled": "id",
        "raw.resolutions": "condition_id",
        "raw.markets": "condition_id",
        "raw.category_map": "canonical",
    }
    with warehouse.connect(settings) as ch:
        for table in checks.required_tables():
            ch.command(
                f"INSERT INTO {table} ({first_column.get(table, 'x')}) VALUES "
                + ("('x')" if table in first_column else "(1)")
            )
    full = one(settings, "tables")
    assert full["status"] == HEALTHY and full["message"] == "10 tables present, 10 rows"


def test_no_fills_table_is_critical(tmp_path):
    settings = make_settings(tmp_path)
    check = one(settings, "trade_freshness")
    assert check["status"] == CRITICAL and "does not exist" in check["message"]


def test_unreachable_clickhouse_server_is_critical(tmp_path):
    settings = make_settings(tmp_path, CLICKHOUSE_URL=f"http://127.0.0.1:{free_port()}")
    report = run_checks(settings, FAST, now=NOW, only=("clickhouse", "tables"))
    assert [c["status"] for c in report["checks"]] == [CRITICAL, CRITICAL]
    assert "unreachable: cannot reach ClickHouse" in report["checks"][0]["message"]


def test_a_held_engine_reads_busy_and_the_other_checks_still_run(engine_holder):
    """Busy names whoever holds the engine: it used to say "pipeline running" for any
    holder, a plain script included."""
    held, holder = engine_holder
    write_map(held.data_dir, resolved=5)
    touch(held.data_dir / "markets.jsonl", NOW)
    hs = FAST.replace(min_resolved_conditions=3)
    report = run_checks(held, hs, now=NOW)
    by = {c["name"]: c for c in report["checks"]}
    for name in ("clickhouse", "tables", "trade_freshness", "resolution_integrity"):
        assert by[name]["status"] == WARNING, by[name]
        assert (
            by[name]["message"].startswith("busy: ") and f"held by pid {holder.pid} (" in by[name]["message"]
        )
        assert "pipeline running" not in by[name]["message"]
        assert by[name]["details"]["busy"] is True
    assert by["reference_freshness"]["status"] == HEALTHY
    assert by["goldsky"]["status"] == HEALTHY
    assert report["seconds"] < 5


# --- 4. Postgres ----------------------------------------------------------------------------


def test_postgres_not_configured_is_not_a_warning(tmp_path):
    check = one(make_settings(tmp_path), "postgres")
    assert check["status"] == NOT_CONFIGURED and "not configured" in check["message"]


def test_postgres_stopped_is_critical(tmp_path):
    settings = make_settings(tmp_path, POSTGRES_URL=f"postgresql://postgres:secret@127.0.0.1:{free_port()}/x")
    check = one(settings, "postgres")
    assert check["status"] == CRITICAL and check["message"].startswith("unreachable")
    assert "secret" not in json.dumps(check)


def test_postgres_app_tables_missing_then_present(tmp_path, empty_pg_url):
    settings = make_settings(tmp_path, POSTGRES_URL=empty_pg_url)
    check = one(settings, "postgres")
    assert check["status"] == WARNING
    assert "app tables missing: strategies, strategy_watchlists" in check["message"]
    with psycopg.connect(empty_pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE strategies (id int)")
        conn.execute("CREATE TABLE strategy_watchlists (id int)")
    check = one(settings, "postgres")
    assert check["status"] == HEALTHY, check
    assert check["details"]["tables"] == {"strategies": True, "strategy_watchlists": True}


# --- 5. reference file freshness -----------------------------------------------------------


@pytest.mark.parametrize(("age_h", "status"), [(3, HEALTHY), (30, WARNING), (50, CRITICAL)])
def test_reference_freshness_from_last_updated(tmp_path, age_h, status):
    settings = make_settings(tmp_path)
    write_map(settings.data_dir, 3, last_updated=NOW - dt.timedelta(hours=age_h))
    touch(settings.data_dir / "markets.jsonl", NOW - dt.timedelta(hours=1))  # mtime: fresh
    check = one(settings, "reference_freshness")
    assert check["status"] == status
    f = check["details"]["files"]["expanded_resolution_map.json"]
    assert (f["from"], f["age_hours"]) == ("last_updated", pytest.approx(age_h))


@pytest.mark.parametrize(("age_h", "status"), [(30, WARNING), (50, CRITICAL)])
def test_reference_freshness_falls_back_to_the_modification_time(tmp_path, age_h, status):
    settings = make_settings(tmp_path)
    write_map(settings.data_dir, 3, last_updated=NOW)
    touch(settings.data_dir / "markets.jsonl", NOW - dt.timedelta(hours=age_h))
    check = one(settings, "reference_freshness")
    assert check["status"] == status
    assert check["details"]["files"]["markets.jsonl"]["from"] == "mtime"
    assert check["message"] == f"markets.jsonl {age_h:.1f} h old"


def test_reference_file_missing_is_critical_and_taxonomy_is_listed_not_graded(tmp_path):
    settings = make_settings(tmp_path)
    write_map(settings.data_dir, 3, last_updated=NOW)
    (settings.data_dir / "category_definitions.json").write_text(
        json.dumps({"last_updated": "2025-10-29T00:00:00Z", "categories": []})
    )
    check = one(settings, "reference_freshness")
    assert check["status"] == CRITICAL and check["message"] == "markets.jsonl missing"
    assert check["details"]["not_graded"]["category_definitions.json"]["age_hours"] > 24 * 300


def test_a_reference_file_the_last_load_rejected_is_a_warning_not_fresh(tmp_path):
    """A markets.jsonl rejected by the night's load was graded fresh from its own mtime (age
    0.0 h) while the warehouse kept the last good version. The file on disk is named with the
    reason, and the freshness is that of the version loaded."""
    from ingest import reference_files
    from tests.support.factories import market, write_reference

    settings = make_settings(tmp_path)
    write_reference(settings.data_dir, [market(1)], [resolution(1, "YES")])
    markets = settings.data_dir / "markets.jsonl"
    with warehouse.connect(settings) as ch:
        ensure_tables(ch)
        loaded_at = dt.datetime.now(UTC)
        reference_files.load_reference_file(ch, markets)
        markets.write_text("{not json\n")
        with pytest.raises(reference_files.ReferenceFileError):
            reference_files.load_reference_file(ch, markets)
    later = loaded_at + dt.timedelta(hours=30)
    write_map(settings.data_dir, 3, last_updated=later)  # the map itself is fresh
    touch(markets, later - dt.timedelta(minutes=5))  # the rejected file looks fresh on disk
    check = one(settings, "reference_freshness", now=later)
    assert check["status"] == WARNING, check
    assert "markets.jsonl" in check["message"] and "rejected" in check["message"]
    assert "[json-syntax]" in check["message"]  # the reason, from the load's record
    f = check["details"]["files"]["markets.jsonl"]
    assert f["from"] == "loaded_at" and f["age_hours"] == pytest.approx(30, abs=0.1)
    assert f["rejected"]["reason"]
    # the last good version still young: the rejection alone is worth a look
    assert one(settings, "reference_freshness", now=loaded_at + dt.timedelta(hours=1))["status"] == WARNING
    # replaced by a good file that is not loaded yet: graded by the file again
    write_reference(settings.data_dir, [market(1), market(2)], [resolution(1, "YES")])
    touch(markets, later)
    write_map(settings.data_dir, 3, last_updated=later)
    assert one(settings, "reference_freshness", now=later)["status"] == HEALTHY


# --- 6. resolution integrity ----------------------------------------------------------------


def model_world(
    settings,
    resolved: int,
    unresolved: int = 2,
    claimed: int | None = None,
    fifty_fifty: int = 0,
    built: bool = True,
) -> None:
    """A warehouse as the load and the build leave it: the map's entries in raw.resolutions,
    its load (entries, the header's claim) in ops.reference_loads, and dim_markets saying
    which conditions are resolved; 50-50 entries are resolved in the models."""
    rows = [resolution(i, "YES" if i % 2 else "NO") for i in range(resolved)]
    rows += [
        {**resolution(resolved + i, "YES"), "resolved_outcome": "50-50", "payout_yes": 1, "payout_no": 1}
        for i in range(fifty_fifty)
    ]
    rows += [resolution(resolved + fifty_fifty + i, None) for i in range(unresolved)]
    with warehouse.connect(settings) as ch:
        ensure_tables(ch)
        ch.command("TRUNCATE TABLE raw.resolutions")
        ch.insert(
            "raw.resolutions",
            [
                [r["condition_id"], r["resolved_outcome"], r["payout_yes"], r["payout_no"], i]
                for i, r in enumerate(rows)
            ],
            column_names=["condition_id", "resolved_outcome", "payout_yes", "payout_no", "entry_index"],
        )
        ch.insert(
            "ops.reference_loads",
            [["expanded_resolution_map.json", "sha", 1, len(rows), resolved, claimed, None, NOW, "loaded"]],
            column_names=LOAD_COLUMNS[:9],
        )
        ch.command("DROP TABLE IF EXISTS analytics.dim_markets")
        if built:
            ch.command(
                "CREATE TABLE analytics.dim_markets (condition_id String, is_resolved Bool) "
                "ENGINE = MergeTree ORDER BY condition_id"
            )
            ch.insert(
                "analytics.dim_markets",
                [[r["condition_id"], r["resolved_outcome"] is not None] for r in rows],
                column_names=["condition_id", "is_resolved"],
            )


def test_resolution_integrity_statuses(tmp_path):
    settings = make_settings(tmp_path)
    hs = FAST.replace(min_resolved_conditions=10)
    model_world(settings, resolved=12, claimed=12, built=False)
    missing = one(settings, "resolution_integrity", hs)
    assert missing["status"] == CRITICAL and "analytics.dim_markets" in missing["message"]
    model_world(settings, resolved=12, claimed=12)
    ok = one(settings, "resolution_integrity", hs)
    assert ok["status"] == HEALTHY and ok["details"]["resolved"] == 12, ok
    model_world(settings, resolved=9, claimed=9)
    low = one(settings, "resolution_integrity", hs)
    assert (
        low["status"] == CRITICAL
        and "only 9 resolved conditions (MIN_RESOLVED_CONDITIONS=10)" in low["message"]
    )
    model_world(settings, resolved=12, claimed=20)
    claim = one(settings, "resolution_integrity", hs)
    assert claim["status"] == WARNING
    assert claim["message"] == "header claims 20 resolved, the models resolve 12"
    model_world(settings, resolved=12, claimed=None)
    assert one(settings, "resolution_integrity", hs)["status"] == WARNING


def test_resolved_follows_the_models_not_a_rule_of_its_own(tmp_path):
    """Issue 13: 50-50 resolutions count as resolved once the models say so: the check reads
    dim_markets.is_resolved instead of parsing the map with its own rule."""
    settings = make_settings(tmp_path)
    model_world(settings, resolved=10, fifty_fifty=3, claimed=13)
    path = write_map(settings.data_dir, resolved=10, claimed=13)  # the file as delivered
    doc = json.loads(path.read_text())
    doc["resolutions"] += [
        {**resolution(100 + i, "YES"), "resolved_outcome": "50-50", "payout_yes": 1, "payout_no": 1}
        for i in range(3)
    ]
    path.write_text(json.dumps(doc))
    check = one(settings, "resolution_integrity", FAST.replace(min_resolved_conditions=13))
    assert check["status"] == HEALTHY, check
    assert check["details"]["resolved"] == 13 and check["details"]["claimed"] == 13
    assert check["details"]["source"] == "analytics.dim_markets"


def test_default_minimum_is_3000_resolved(sample_run):
    settings, _, _ = sample_run
    check = one(settings, "resolution_integrity", HealthSettings())
    assert check["status"] == HEALTHY and check["details"]["min_resolved"] == 3000
    with warehouse.connect(settings) as ch:
        built = ch.command("SELECT countIf(is_resolved) FROM analytics.dim_markets")
    assert check["details"]["resolved"] == built >= 3000


# --- 7. API routes --------------------------------------------------------------------------


class FakeApi:
    """A real HTTP server on 127.0.0.1: per route, a status code and a delay."""

    def __init__(self, routes: dict[str, tuple[int, float]]):
        self.routes = routes

    def __enter__(self) -> FakeApi:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                code, delay = api.routes.get(self.path, (404, 0.0))
                time.sleep(delay)
                body = b'{"ok": true}'
                try:
                    self.send_response(code)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass  # the client gave up

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def test_api_not_configured_is_not_a_warning(tmp_path):
    check = one(make_settings(tmp_path), "api")
    assert (check["status"], check["message"]) == (
        NOT_CONFIGURED,
        "API not configured (API_BASE_URL is unset)",
    )


def test_unconfigured_optional_parts_leave_the_overall_status_alone(tmp_path):
    report = run_checks(make_settings(tmp_path), FAST, now=NOW, only=("goldsky", "postgres", "api"))
    assert [c["status"] for c in report["checks"]] == [HEALTHY, NOT_CONFIGURED, NOT_CONFIGURED]
    assert (report["status"], report["exit_code"]) == (HEALTHY, 0)
    assert report["counts"] == {"healthy": 1, "not_configured": 2, "warning": 0, "critical": 0}


@pytest.mark.parametrize(
    ("health_route", "status", "words"),
    [
        ((200, 0.0), HEALTHY, "/api/health 200 in"),
        ((200, 0.4), WARNING, "/api/health: slow:"),
        ((500, 0.0), CRITICAL, "/api/health: HTTP 500"),
        ((200, 3.0), CRITICAL, "/api/health: no answer within 1 s"),
    ],
)
def test_api_routes(tmp_path, health_route, status, words):
    with FakeApi({"/api/health": health_route, "/api/strategies": (200, 0.0)}) as api:
        hs = FAST.replace(api_base_url=api.url, api_slow_ms=200, api_timeout_s=1.0)
        started = time.monotonic()
        check = one(make_settings(tmp_path), "api", hs)
        assert time.monotonic() - started < 2.5  # the routes are probed concurrently, each bounded
    assert check["status"] == status, check
    assert words in check["message"]
    assert check["details"]["routes"]["/api/strategies"]["status"] == HEALTHY


# --- 9. last pipeline run -------------------------------------------------------------------


def write_summary(
    settings,
    started: dt.datetime,
    status: str = "success",
    minutes: float = 5,
    failed: tuple[str, ...] = (),
    partial: tuple[str, ...] = (),
) -> dict:
    run_id = started.strftime("%Y%m%dT%H%M%SZ") + "-abcdef"
    run = {
        "run_id": run_id,
        "trigger": "test",
        "status": status,
        "started_at": started.isoformat(),
        "finished_at": (started + dt.timedelta(minutes=minutes)).isoformat(),
        "seconds": minutes * 60,
        "steps": [{"name": "preflight", "status": "success"}]
        + [{"name": n, "status": "failed"} for n in failed]
        + [{"name": n, "status": "partial"} for n in partial],
        "warnings": [],
    }
    folder = settings.reports_dir / started.date().isoformat() / run_id
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "summary.json").write_text(json.dumps(run))
    return run


def test_last_run_statuses(tmp_path):
    settings = make_settings(tmp_path)
    none = one(settings, "last_run")
    assert none["status"] == CRITICAL and "no pipeline run recorded" in none["message"]
    write_summary(settings, NOW - dt.timedelta(hours=2))
    assert one(settings, "last_run")["status"] == HEALTHY
    # it finished at NOW - 1:55
    assert one(settings, "last_run", now=NOW + dt.timedelta(hours=28))["status"] == WARNING  # 29.9 h
    old = one(settings, "last_run", now=NOW + dt.timedelta(hours=49))  # 50.9 h
    assert old["status"] == CRITICAL and "finished 50.9 h ago" in old["message"]
    write_summary(settings, NOW - dt.timedelta(hours=1), status="partial", failed=("ingest_fills",))
    partial = one(settings, "last_run")
    assert partial["status"] == WARNING and "(ingest_fills failed)" in partial["message"]
    # a partial step is what made the run partial: it is named too, with its status ("?" was)
    write_summary(
        settings,
        NOW - dt.timedelta(minutes=50),
        "partial",
        failed=("ingest_fills",),
        partial=("load_reference",),
    )
    partial = one(settings, "last_run")
    assert "(ingest_fills failed, load_reference partial)" in partial["message"], partial["message"]
    assert "preflight" not in partial["message"] and "?" not in partial["message"]
    write_summary(settings, NOW - dt.timedelta(minutes=30), status="failed", failed=("dbt_build",))
    assert one(settings, "last_run")["status"] == CRITICAL


def test_last_run_inside_a_run_describes_this_run(tmp_path):
    settings = make_settings(tmp_path)
    ctx = RunContext(settings, "run-1", "test", NOW)
    ctx.results["ingest_fills"] = StepResult()
    assert one(settings, "last_run", run=ctx)["status"] == HEALTHY
    ctx.results["dbt_build"] = StepResult(status="failed")
    check = one(settings, "last_run", run=ctx)
    assert check["status"] == WARNING and "dbt_build" in check["message"]


# --- 10. Great Expectations results ---------------------------------------------------------


def write_gx(
    settings, status: str, generated: dt.datetime = NOW, run_id: str = "20261128T110000Z-aaaaaa"
) -> None:
    severity = {"failed": "critical", "warning": "warning"}.get(status)
    failures = (
        [{"expectation": "expect_column_min_to_be_between", "column": "age_hours", "severity": severity}]
        if severity
        else []
    )
    folder = settings.reports_dir / "2026-11-28" / run_id
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "gx_results.json").write_text(
        json.dumps(
            {
                "run_id": run_id,
                "generated_at": generated.isoformat(),
                "status": status,
                "failed_critical": int(status == "failed"),
                "suites": [
                    {
                        "suite": "fills",
                        "status": {"success": "passed"}.get(status, status),
                        "evaluated": 6,
                        "successful": 6 - len(failures),
                        "failures": failures,
                    }
                ],
            }
        )
    )


@pytest.mark.parametrize(
    ("gx_status", "status"), [("success", HEALTHY), ("warning", WARNING), ("failed", CRITICAL)]
)
def test_great_expectations_results(tmp_path, gx_status, status):
    settings = make_settings(tmp_path)
    write_gx(settings, gx_status)
    check = one(settings, "great_expectations")
    assert check["status"] == status
    if status != HEALTHY:
        assert "fills: expect_column_min_to_be_between(age_hours)" in check["message"]


def test_great_expectations_missing_or_stale_results_warn(tmp_path):
    settings = make_settings(tmp_path)
    assert one(settings, "great_expectations")["status"] == WARNING
    write_gx(settings, "success", generated=NOW - dt.timedelta(hours=30))
    stale = one(settings, "great_expectations")
    assert stale["status"] == WARNING and "older than 26 h" in stale["message"]
    write_gx(settings, "success", run_id="20261128T115900Z-bbbbbb")  # the newest run's results count
    assert one(settings, "great_expectations")["status"] == HEALTHY


# --- running them together ------------------------------------------------------------------


def test_a_hanging_check_is_cut_off_at_its_budget(tmp_path, monkeypatch):
    def hang(env):
        time.sleep(30)

    monkeypatch.setattr(checks, "CHECKS", [("api", "API routes", hang), *checks.CHECKS[:1]])
    started = time.monotonic()
    report = run_checks(make_settings(tmp_path), FAST.replace(check_timeout_s=0.5), now=NOW)
    assert time.monotonic() - started < 2
    hung, goldsky = report["checks"]
    assert (hung["status"], hung["details"]) == (CRITICAL, {"timed_out": True})
    assert "no answer within 0.5 s" in hung["message"] and hung["seconds"] >= 0.4
    assert goldsky["status"] == HEALTHY
    assert report["status"] == CRITICAL


def test_every_remote_part_hanging_stays_within_the_budget(tmp_path):
    """Subgraph, Postgres and API all accept connections and never answer."""
    black_hole = socket.socket()
    black_hole.bind(("127.0.0.1", 0))
    black_hole.listen(16)
    url = f"127.0.0.1:{black_hole.getsockname()[1]}"
    try:
        settings = make_settings(
            tmp_path,
            GOLDSKY_SOURCE="subgraph",
            GOLDSKY_SUBGRAPH_URL=f"http://{url}/gn",
            POSTGRES_URL=f"postgresql://postgres@{url}/test",
        )
        hs = FAST.replace(
            check_timeout_s=1.5, api_base_url=f"http://{url}", api_timeout_s=30, postgres_timeout_s=30
        )
        started = time.monotonic()
        report = run_checks(settings, hs, now=NOW)
        elapsed = time.monotonic() - started
    finally:
        black_hole.close()
    by = {c["name"]: c for c in report["checks"]}
    assert elapsed < 3, elapsed
    for name in ("goldsky", "postgres", "api"):
        assert by[name]["status"] == CRITICAL, by[name]
    assert len(report["checks"]) == 10 and report["status"] == CRITICAL
    # the warehouse checks finished, so their client was closed: this process may open another engine
    with warehouse.connect(make_settings(tmp_path / "other")) as ch:
        assert ch.command("SELECT 1") == 1


def test_checks_run_concurrently(tmp_path, monkeypatch):
    def slow(env):
        time.sleep(0.5)
        return checks.Outcome(HEALTHY, "slow but fine")

    monkeypatch.setattr(checks, "CHECKS", [(f"c{i}", f"C{i}", slow) for i in range(6)])
    report = run_checks(make_settings(tmp_path), FAST, now=NOW)
    assert report["seconds"] < 1.5
    assert all(c["seconds"] >= 0.5 for c in report["checks"])


def test_a_crashing_check_is_a_critical_finding(tmp_path, monkeypatch):
    def boom(env):
        raise ValueError("kaput")

    monkeypatch.setattr(checks, "CHECKS", [("api", "API routes", boom)])
    [check] = run_checks(make_settings(tmp_path), FAST, now=NOW)["checks"]
    assert check["status"] == CRITICAL and check["message"] == "check failed: ValueError: kaput"


def test_last_run_knows_a_run_in_progress_and_one_that_died(tmp_path):
    from pipeline.runlock import run_lock

    settings = make_settings(tmp_path)
    write_summary(settings, NOW - dt.timedelta(hours=2))
    with run_lock(settings, "20261128T115500Z-cccccc", (NOW - dt.timedelta(minutes=5)).isoformat()):
        running = one(settings, "last_run")
    assert running["status"] == HEALTHY
    assert running["message"].startswith("run 20261128T115500Z-cccccc in progress since")
    assert running["details"]["in_progress"]["run_id"] == "20261128T115500Z-cccccc"
    assert "in progress" not in one(settings, "last_run")["message"]  # released cleanly
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    (settings.home / "run.lock").write_text(
        json.dumps(
            {
                "run_id": "20261128T115600Z-dddddd",
                "pid": int(dead.stdout),
                "started_at": (NOW - dt.timedelta(minutes=4)).isoformat(),
            }
        )
    )
    died = one(settings, "last_run")
    assert died["status"] == CRITICAL and "20261128T115600Z-dddddd" in died["message"]
    assert "did not finish" in died["message"]
