"""The health steps of a run, the report notebook, and the `health` / `report` commands."""

from __future__ import annotations

import datetime as dt
import io
import json
import re
import shutil
import sys
import threading

import nbformat
import pytest
from jsonschema import Draft202012Validator

import runner
from health import cli
from health.checks import CHECKS, run_checks
from health.quality import step_quality_checkpoint
from health.report import NOTEBOOK, OUTPUT_HTML, OUTPUT_NOTEBOOK, ensure_kernelspec, step_health_report
from health.steps import FINAL_FILE, PREFLIGHT_FILE, step_final_health, step_preflight_health
from nightly.run import run_nightly
from pipeline import history, names
from pipeline.config import PROJECT_ROOT, HealthSettings, variable_name
from pipeline.exit_codes import HEALTH_STATUS
from pipeline.steps import RunContext, Step, new_run_id, run_step, summary
from tests.support import mart_shapes
from tests.support.settings import SAMPLE_NOW, make_settings
from tests.test_health_checks import free_port

SCHEMA = json.loads((PROJECT_ROOT / "schemas" / "health_report.schema.json").read_text())
SECTIONS = (
    "Overall status",
    "Checks",
    "Step durations",
    "Freshness over recent runs",
    "Row counts over recent runs",
    "Great Expectations",
    "Top wallets per category",
    "PnL by category",
    "Leaderboard, last 30 days",
)


def validate(report: dict) -> None:
    Draft202012Validator.check_schema(SCHEMA)
    errors = sorted(
        Draft202012Validator(SCHEMA, format_checker=Draft202012Validator.FORMAT_CHECKER).iter_errors(report),
        key=str,
    )
    assert not errors, [f"{list(e.path)}: {e.message}" for e in errors]


def _env(monkeypatch, settings) -> None:
    for name, value in {
        "CASCADIAN_HOME": str(settings.home),
        "DATA_DIR": str(settings.data_dir),
        "REPORTS_DIR": str(settings.reports_dir),
        "GOLDSKY_SOURCE": settings.goldsky_source,
        "GOLDSKY_DATASET_DIR": str(settings.goldsky_dataset_dir),
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("POSTGRES_URL", "API_BASE_URL", "CLICKHOUSE_URL"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def reported(sample_run):
    """The health steps of a run on the sample data, in the order the lead wires them."""
    settings, _, run = sample_run
    ctx = RunContext(settings, new_run_id(SAMPLE_NOW), "test", SAMPLE_NOW)
    for name, fn in (
        ("preflight_health", step_preflight_health),
        ("quality_checkpoint", step_quality_checkpoint),
        ("final_health", step_final_health),
        ("health_report", step_health_report),
    ):
        run_step(Step(name, fn), ctx)
    folder = history.run_folder(settings, ctx.run_id, ctx.started_at.isoformat())
    assert next(s for s in run["steps"] if s["name"] == "dbt_build")["status"] == "success"
    return settings, ctx, folder


def html_text(path) -> str:
    text = path.read_text()
    text = re.sub(r"<(style|script)\b.*?</\1>", " ", text, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", text))


# --- the steps ------------------------------------------------------------------------------


def test_the_health_steps_record_schema_valid_json(reported):
    _settings, ctx, folder = reported
    assert ctx.results["preflight_health"].status == "success"
    assert ctx.results["final_health"].status == "success"
    for name in (PREFLIGHT_FILE, FINAL_FILE):
        report = json.loads((folder / name).read_text())
        validate(report)
        assert [c["name"] for c in report["checks"]] == [name for name, _, _ in CHECKS]
    final = json.loads((folder / FINAL_FILE).read_text())
    assert final["run_id"] == ctx.run_id
    by = {c["name"]: c for c in final["checks"]}
    assert by["last_run"]["details"]["in_progress"] is True
    assert by["great_expectations"]["details"]["run_id"] == ctx.run_id  # this run's checkpoint
    assert ctx.results["final_health"].details["checks"]["postgres"]["status"] == "not_configured"


def test_preflight_fails_only_when_clickhouse_is_unreachable(tmp_path):
    settings = make_settings(tmp_path, CLICKHOUSE_URL=f"http://127.0.0.1:{free_port()}")
    result = step_preflight_health(RunContext(settings, "r-unreachable", "test", SAMPLE_NOW))
    assert result.status == "failed" and result.error.startswith("ClickHouse unreachable")
    fresh = make_settings(tmp_path / "fresh")  # nothing loaded, no run, no marts: still fine to start
    result = step_preflight_health(RunContext(fresh, "r-fresh", "test", SAMPLE_NOW))
    assert result.status == "success"
    assert result.details["checks"]["last_run"]["status"] == "critical"
    assert result.details["checks"]["tables"]["status"] == "critical"


def test_preflight_with_the_engine_busy_is_not_a_failure(held_directory):
    result = step_preflight_health(RunContext(held_directory, "r-busy", "test", SAMPLE_NOW))
    assert result.status == "success"
    assert result.details["checks"]["clickhouse"]["message"].startswith("busy: ")


# --- the report -----------------------------------------------------------------------------


def test_the_report_has_every_section_and_no_code(reported):
    _settings, ctx, folder = reported
    result = ctx.results["health_report"]
    assert result.status == "success", result.error
    html = folder / OUTPUT_HTML
    text = html_text(html)
    for section in SECTIONS:
        assert section in text, section
    raw = html.read_text()
    assert "import pandas" not in raw and "load_json(" not in raw and "run_folder =" not in raw
    assert raw.count("<img") >= 3  # step durations, freshness, row counts
    assert ctx.run_id in text and "Goldsky source" in text and "preflight_health" in text
    assert raw.count("<img") >= 4  # + PnL by category
    assert "Politics / Geopolitics" in text and "realized PnL" in text
    nb = nbformat.read(str(folder / OUTPUT_NOTEBOOK), as_version=4)
    tags = [c.metadata.get("tags", []) for c in nb.cells]
    assert ["parameters"] in tags and ["injected-parameters"] in tags
    assert nb.metadata.kernelspec.name == "python3"
    assert not [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]


def test_the_report_reads_only_the_run_folder(reported):
    _settings, ctx, folder = reported
    source = "\n".join(
        c.source for c in nbformat.read(str(NOTEBOOK), as_version=4).cells if c.cell_type == "code"
    )
    assert not re.search(r"clickhouse|chdb|warehouse|import (pipeline|health|ingest)", source)
    data = folder / "report_data"
    assert {p.name for p in data.iterdir()} >= {"run.json", "steps.json", "history.json", "table_counts.json"}
    assert (data / "top_wallets.parquet").exists() and (data / "pnl_by_category.parquet").exists()
    steps = json.loads((data / "steps.json").read_text())
    assert [s["name"] for s in steps] == ["preflight_health", "quality_checkpoint", "final_health"]
    history_rows = json.loads((data / "history.json").read_text())
    assert history_rows[-1]["run_id"] == ctx.run_id and history_rows[-1]["trade_age_hours"] is not None


def test_report_command_renders_again_from_the_stored_inputs(reported, monkeypatch, capsys):
    settings, ctx, folder = reported
    _env(monkeypatch, settings)
    before = (folder / OUTPUT_HTML).stat().st_mtime_ns
    # the run has ended since its report was made: its summary now has every step and the status
    (folder / "summary.json").write_text(json.dumps(summary(ctx, "success", SAMPLE_NOW), default=str))
    assert runner.main(["report", "--run-id", ctx.run_id]) == 0
    assert (folder / OUTPUT_HTML).stat().st_mtime_ns > before
    data = folder / "report_data"
    assert json.loads((data / "run.json").read_text())["status"] == "success"
    assert json.loads((data / "history.json").read_text())[-1]["status"] == "success"
    assert [s["name"] for s in json.loads((data / "steps.json").read_text())][-1] == "health_report"
    assert "health_report" in html_text(folder / OUTPUT_HTML)
    assert str(folder / OUTPUT_HTML) in capsys.readouterr().out
    assert runner.main(["report", "--run-id", "no-such-run"]) == 2
    assert "no run 'no-such-run'" in capsys.readouterr().err


def test_the_kernel_is_this_interpreter(tmp_path):
    spec = json.loads(ensure_kernelspec(tmp_path).read_text())
    assert spec["argv"][0] == sys.executable and spec["argv"][1].endswith("launch_kernel.py")


# --- the command ----------------------------------------------------------------------------


def test_health_json_matches_its_schema_and_sets_the_exit_code(sample_run, monkeypatch, capsys):
    settings, _, _ = sample_run
    _env(monkeypatch, settings)
    code = runner.main(["health", "--json"])
    report = json.loads(capsys.readouterr().out)
    validate(report)
    assert code == report["exit_code"] == HEALTH_STATUS[report["status"]]
    by = {c["name"]: c for c in report["checks"]}
    assert by["postgres"]["status"] == by["api"]["status"] == "not_configured"
    assert by["clickhouse"]["status"] == "healthy"
    assert report["seconds"] < 10


def test_a_fresh_correct_setup_is_healthy_exit_0(sample_run, monkeypatch, capsys, tmp_path):
    """Sample data loaded, no Postgres, no API: nothing is wrong, so nothing may page."""
    settings, _, run = sample_run
    _env(monkeypatch, settings)
    # the sample night's record alone (other tests add stale quality results to the shared one)
    folder = history.run_folder(settings, run["run_id"], run["started_at"])
    shutil.copytree(folder, tmp_path / "reports" / folder.parent.name / folder.name)
    monkeypatch.setenv("REPORTS_DIR", str(tmp_path / "reports"))
    soon = SAMPLE_NOW + dt.timedelta(hours=1)  # the morning after the sample night
    monkeypatch.setattr(cli, "run_checks", lambda s, h: run_checks(s, h, now=soon))
    assert runner.main(["health"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^Postgres +not configured +\d", out, re.M), out
    assert re.search(r"^API routes +not configured +\d", out, re.M), out
    assert re.search(r"^overall: HEALTHY +\(8 healthy, 2 not configured, 0 warning, 0 critical\)", out, re.M)
    assert runner.main(["health", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    validate(report)
    assert (report["status"], report["exit_code"]) == ("healthy", 0)
    assert report["counts"]["not_configured"] == 2


def test_health_table_output(sample_run, monkeypatch, capsys):
    settings, _, _ = sample_run
    _env(monkeypatch, settings)
    runner.main(["health"])
    out = capsys.readouterr().out
    assert out.startswith("check ")
    for _, title, _ in CHECKS:
        assert title in out
    assert re.search(r"^overall: (HEALTHY|WARNING|CRITICAL) +\(\d+ healthy", out, re.M)


@pytest.mark.parametrize(("status", "code"), [("healthy", 0), ("warning", 1), ("critical", 2)])
def test_exit_codes(monkeypatch, status, code):
    canned = {
        "status": status,
        "exit_code": code,
        "seconds": 0.1,
        "counts": {"healthy": 1, "warning": 0, "critical": 0},
        "checks": [
            {
                "name": "api",
                "title": "API routes",
                "status": status,
                "message": "m",
                "details": {},
                "seconds": 0.1,
            }
        ],
    }
    monkeypatch.setattr(cli, "run_checks", lambda settings, health: canned)
    assert cli.main(as_json=False, out=io.StringIO()) == code
    out = io.StringIO()
    assert cli.main(as_json=True, out=out) == code
    assert json.loads(out.getvalue())["status"] == status


def test_a_bad_threshold_is_a_configuration_error(monkeypatch, capsys):
    monkeypatch.setenv("MIN_RESOLVED_CONDITIONS", "lots")
    assert cli.main(as_json=True) == 2
    assert "MIN_RESOLVED_CONDITIONS='lots': Input should be a valid integer" in capsys.readouterr().err


def test_docs_cover_every_check_threshold_and_the_schema():
    doc = (PROJECT_ROOT / "docs" / "health.md").read_text()
    for name, title, _ in CHECKS:
        assert f"`{name}`" in doc and title in doc
    names = {variable_name(HealthSettings, field) for field in HealthSettings.model_fields}
    assert len(names) > 20
    for name in names:
        assert f"`{name}`" in doc, name
    assert "schemas/health_report.schema.json" in doc
    for field in SCHEMA["properties"]:
        assert f"`{field}`" in doc, field


# --- reports that do not mislead ------------------------------------------------------------


def _boom(_ctx):
    raise RuntimeError("upstream API returned garbage")


def _report_status(folder) -> tuple[str, str]:
    run = json.loads((folder / "report_data" / "run.json").read_text())
    return run["status"], html_text(folder / OUTPUT_HTML)


@pytest.mark.slow
def test_the_report_shows_the_runs_status_not_running(tmp_path):
    settings = make_settings(tmp_path)
    plan = [Step("flaky", _boom), Step("health_report", step_health_report, always=True)]
    status, run = run_nightly(settings, now=SAMPLE_NOW, step_list=plan)
    folder = history.run_folder(settings, run["run_id"], run["started_at"])
    assert status == "partial" and run["steps"][-1]["status"] == "success", run["steps"][-1]
    shown, text = _report_status(folder)
    assert shown == "partial"
    assert "run status PARTIAL" in text and "RUNNING" not in text
    assert json.loads((folder / "report_data" / "history.json").read_text())[-1]["status"] == "partial"


@pytest.mark.slow
def test_a_failed_night_still_gets_its_report(tmp_path):
    """The warehouse is unreachable: the run fails at preflight, and the report (which never
    needs the warehouse) is still written, saying so."""
    settings = make_settings(tmp_path, CLICKHOUSE_URL=f"http://127.0.0.1:{free_port()}")
    status, run = run_nightly(settings, now=SAMPLE_NOW)
    assert status == "failed"
    report = next(s for s in run["steps"] if s["name"] == "health_report")
    assert report["status"] == "success", report
    folder = history.run_folder(settings, run["run_id"], run["started_at"])
    shown, text = _report_status(folder)
    assert shown == "failed" and "run status FAILED" in text
    assert "warehouse not reachable" in text and "connection refused" in text
    for section in SECTIONS:
        assert section in text, section


def test_a_first_run_preflight_says_nothing_is_loaded_yet(tmp_path):
    fresh = make_settings(tmp_path)
    result = step_preflight_health(RunContext(fresh, "r-first", "test", SAMPLE_NOW))
    assert result.status == "success"
    assert result.message.startswith("first run: nothing loaded yet"), result.message
    assert "critical" not in result.message
    assert result.details["first_run"] is True
    # the checks themselves stay honest in health_preflight.json
    assert result.details["checks"]["tables"]["status"] == "critical"


def test_a_later_preflight_still_reports_critical(reported):
    _settings, ctx, _folder = reported
    result = ctx.results["preflight_health"]
    assert not result.details.get("first_run")
    assert not result.message.startswith("first run")


def test_gx_data_docs_are_usable_offline(reported):
    _settings, _ctx, folder = reported
    gx = json.loads((folder / "gx_results.json").read_text())
    page = folder / gx["data_docs"]
    raw = page.read_text()
    # nothing to fetch: no stylesheet, script, image or font from elsewhere
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", raw), re.findall(r"https?://\S+", raw)[:5]
    assert "<style" in raw
    text = html_text(page)
    evaluated = sum(s["evaluated"] for s in gx["suites"])
    assert text.count("expect_") >= evaluated > 10  # every expectation is listed, results included
    for suite in ("fills", "resolutions", "lookups", "marts"):
        assert suite in text
    assert gx["data_docs"] in (folder / OUTPUT_HTML).read_text()  # the report links to it


def _echoing_goldsky(key: str):
    """A subgraph endpoint whose error echoes the API key it was given."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            self.rfile.read(int(self.headers.get("content-length", 0)))
            body = json.dumps({"errors": [{"message": f"invalid API key {key} for this project"}]}).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/subgraphs/x/gn"


@pytest.mark.slow
def test_secrets_never_reach_health_json_or_the_report(tmp_path):
    password, key = "pg-hunter2-secret", "gk-live-0123456789"
    server, url = _echoing_goldsky(key)
    try:
        settings = make_settings(
            tmp_path,
            POSTGRES_URL=f"postgresql://app@127.0.0.1:{free_port()}/db?password={password}",
            GOLDSKY_API_KEY=key,
            GOLDSKY_SOURCE="subgraph",
            GOLDSKY_SUBGRAPH_URL=url,
            GOLDSKY_MAX_ATTEMPTS="1",
        )
        ctx = RunContext(settings, new_run_id(SAMPLE_NOW), "test", SAMPLE_NOW)
        for name, fn in (
            ("preflight_health", step_preflight_health),
            ("final_health", step_final_health),
            ("health_report", step_health_report),
        ):
            run_step(Step(name, fn), ctx)
    finally:
        server.shutdown()
    folder = history.run_folder(settings, ctx.run_id, ctx.started_at.isoformat())
    assert ctx.results["health_report"].status == "success", ctx.results["health_report"].error
    written = {
        p.relative_to(folder).as_posix(): p.read_text(errors="replace")
        for p in folder.rglob("*")
        if p.is_file() and p.suffix in (".json", ".ipynb", ".html")
    }
    assert {PREFLIGHT_FILE, FINAL_FILE, OUTPUT_NOTEBOOK, OUTPUT_HTML, "report_data/run.json"} <= set(written)
    assert "invalid API key" in written[FINAL_FILE]  # the error itself is kept, masked
    leaks = [name for name, text in written.items() if password in text or key in text]
    assert not leaks, leaks


# --- issue 13: unrealized PnL and the 30-day leaderboard ------------------------------------


def _grain_marts(settings) -> None:
    """Marts shaped like the dbt models of issue 13 (dbt_project/models/marts/_marts.yml):
    category PnL with unrealized, total and open value, and the 1/7/30-day leaderboard."""
    from ingest.tables import ensure_tables
    from pipeline import warehouse

    usd = 1_000_000
    with warehouse.connect(settings) as ch:
        ensure_tables(ch)
        mart_shapes.create(ch, names.FCT_WALLET_CATEGORY_PNL)
        pnl = [  # wallet, category, realized, unrealized, open value (USD)
            ("0xaaa", "Politics / Geopolitics", 1200, -300, 5000),
            ("0xbbb", "Politics / Geopolitics", -200, 150, 800),
            ("0xccc", "Sports", 50, 25, 100),
        ]
        ch.insert(
            "analytics.fct_wallet_category_pnl",
            [
                [
                    w,
                    c,
                    r * usd,
                    r,
                    u * usd,
                    u,
                    (r + u) * usd,
                    r + u,
                    o * usd,
                    o,
                    10 * usd,
                    10,
                    0,
                    3,
                    2,
                    1,
                    1,
                    0,
                    1.0,
                    0.1,
                ]
                for w, c, r, u, o in pnl
            ],
            column_names=mart_shapes.columns(names.FCT_WALLET_CATEGORY_PNL),
        )
        mart_shapes.create(ch, names.FCT_LEADERBOARD)
        as_of = dt.date(2026, 11, 27)
        board = []
        for window, days in (("1d", 1), ("7d", 7), ("30d", 30)):
            for rank, (wallet, pnl_usd) in enumerate((("0xddd", 900), ("0xaaa", 700), ("0xeee", -5)), 1):
                board.append(
                    [
                        window,
                        days,
                        as_of,
                        as_of - dt.timedelta(days=days - 1),
                        "",
                        wallet,
                        (pnl_usd + days) * usd,
                        pnl_usd + days,
                        50 * usd,
                        50,
                        4,
                        rank,
                        4 - rank,
                    ]
                )
        ch.insert(
            "analytics.fct_leaderboard",
            board,
            column_names=mart_shapes.columns(names.FCT_LEADERBOARD),
        )


@pytest.mark.slow
def test_the_report_shows_unrealized_pnl_and_a_30_day_leaderboard(tmp_path):
    settings = make_settings(tmp_path)
    _grain_marts(settings)
    ctx = RunContext(settings, new_run_id(SAMPLE_NOW), "test", SAMPLE_NOW)
    run_step(Step("health_report", step_health_report), ctx)
    assert ctx.results["health_report"].status == "success", ctx.results["health_report"].error
    folder = history.run_folder(settings, ctx.run_id, ctx.started_at.isoformat())
    text = html_text(folder / OUTPUT_HTML)
    # PnL by category: realized and unrealized, summed over wallets
    assert "unrealized PnL" in text and "total PnL" in text and "open value" in text
    assert "$1,000.00" in text and "-$150.00" in text and "$850.00" in text  # politics
    # the 30-day leaderboard, in rank order, with its window
    board = text.split("Leaderboard, last 30 days", 1)[1]
    assert board.index("0xddd") < board.index("0xaaa") < board.index("0xeee")
    assert "$930.00" in board and "$737.00" not in board  # the 30-day row, not the 7-day one
    assert "2026-10-29" in board and "2026-11-27" in board


def test_health_while_another_process_holds_the_engine_exits_3(engine_holder, monkeypatch, capsys):
    """The runbook's exit codes: busy is 3 for every command, the healthcheck included; and
    the runbook's wording, `busy: ... held by pid N (...)`, names the holder."""
    held_directory, holder = engine_holder
    _env(monkeypatch, held_directory)
    assert runner.main(["health"]) == 3
    out = " ".join(capsys.readouterr().out.split())  # the table wraps long messages
    assert "busy: " in out and f"held by pid {holder.pid} (" in out
    assert runner.main(["health", "--json"]) == 3
    report = json.loads(capsys.readouterr().out)
    validate(report)
    assert report["exit_code"] == 3
    clickhouse = next(c for c in report["checks"] if c["name"] == "clickhouse")
    assert clickhouse["status"] == "warning" and clickhouse["details"]["busy"] is True
