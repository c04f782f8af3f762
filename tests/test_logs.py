"""What a person (or a log shipper) sees: real logfmt, one redrawn progress line per step on a
terminal, dbt's node progress in the run's output and run.log, and one clear line (no
traceback unless LOG_LEVEL=DEBUG) when a service cannot be reached."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import logfmtkv
import pytest

from pipeline import history
from pipeline.config import PROJECT_ROOT
from pipeline.logs import run_id_var, setup_logging, step_var
from tests.test_health_checks import free_port

log = logging.getLogger("tests.logs")


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


CLEAR = "\r\x1b[2K"  # back to the line's start, erase it


def screen(raw: str) -> list[str]:
    """The lines a terminal shows for `raw`: a line redrawn after CLEAR keeps its last state."""
    shown = [line.split(CLEAR)[-1] for line in raw.split("\n")]
    return shown[:-1] if shown and shown[-1] == "" else shown


@pytest.fixture
def console(monkeypatch):
    """setup_logging writing to a string; restores the root logger afterwards."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)

    def make(level: str = "INFO", fmt: str = "text", tty: bool = False) -> io.StringIO:
        out = FakeTerminal() if tty else io.StringIO()
        monkeypatch.setattr(sys, "stdout", out)
        monkeypatch.setenv("COLUMNS", "100")
        setup_logging(level, fmt)
        return out

    yield make
    root.handlers[:], _ = saved
    root.setLevel(saved[1])


# --- logfmt -----------------------------------------------------------------------------------

TRICKY = {
    "file": "/data/my files/order_filled 2026-11-28.jsonl",
    "error": 'row 3: "id" is blank; expected key=value',
    "path": "C:\\goldsky\\drop",
    "empty": "",
    "lines": "first\nsecond",
    "rows": 42,
}


def test_text_lines_are_logfmt_that_a_strict_parser_reads_back(console):
    out = console("INFO", "text")
    token = step_var.set("ingest_fills")
    try:
        log.warning("dataset file rejected: see error", extra={"ctx": TRICKY})
    finally:
        step_var.reset(token)
    [line] = out.getvalue().splitlines()
    parsed = logfmtkv.parse(line, strict=True)
    assert parsed["level"] == "warning"
    assert parsed["msg"] == "dataset file rejected: see error"
    assert parsed["step"] == "ingest_fills"
    for key, value in TRICKY.items():
        assert parsed[key] == str(value), key
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", parsed["ts"])


def test_a_traceback_is_shown_only_at_debug(console):
    for level, traceback_shown in (("INFO", False), ("DEBUG", True)):
        out = console(level, "text")
        try:
            raise ValueError("the value was bad")
        except ValueError:
            log.exception("could not parse")
        text = out.getvalue()
        assert ("Traceback (most recent call last)" in text) is traceback_shown, level
        first = text.splitlines()[0]
        assert logfmtkv.parse(first, strict=True)["error"] == "ValueError: the value was bad"
        if not traceback_shown:
            assert len(text.splitlines()) == 1


def test_json_lines_stay_one_object_per_line(console):
    out = console("INFO", "json")
    log.info("dataset file loaded", extra={"ctx": {**TRICKY, "progress": "1/2"}})
    [line] = out.getvalue().splitlines()
    assert json.loads(line)["file"] == TRICKY["file"]


def test_libraries_retry_chatter_is_quiet_unless_debug(console):
    for level, shown in (("INFO", False), ("DEBUG", True)):
        out = console(level, "text")
        logging.getLogger("urllib3.connectionpool").warning(
            "Retrying (Retry(total=0)) after connection broken"
        )
        logging.getLogger("clickhouse_connect.driver").warning("Unexpected Http Driver Exception")
        assert ("Retrying" in out.getvalue()) is shown
        assert ("Unexpected Http Driver Exception" in out.getvalue()) is shown


# --- progress on a terminal ---------------------------------------------------------------------


def _ingest_like(n: int = 30) -> None:
    token = step_var.set("ingest_fills")
    try:
        log.info("step started")
        for i in range(1, n + 1):
            log.info(
                "dataset file loaded",
                extra={
                    "ctx": {"file": f"order_filled-{i:02d}.jsonl.gz", "progress": f"{i}/{n}", "rows": 400}
                },
            )
            if i == 10:
                log.warning(
                    "dataset file rejected",
                    extra={"ctx": {"file": "bad.parquet", "progress": f"{i}/{n}", "error": "file is empty"}},
                )
        log.info("dataset files done", extra={"ctx": {"loaded": n - 1, "rejected": 1}})
    finally:
        step_var.reset(token)


def test_a_terminal_shows_one_redrawn_progress_line_per_step(console):
    out = console("INFO", "auto", tty=True)
    _ingest_like(30)
    lines = screen(out.getvalue())
    assert len(lines) == 3, lines  # started, the rejected file, done: no line per loaded file
    assert "step started" in lines[0]
    assert "dataset file rejected" in lines[1] and "bad.parquet" in lines[1]
    assert "dataset files done" in lines[2]
    # while the files load, the last line is the status line, redrawn in place
    partial = out.getvalue().split("dataset files done")[0]
    last = partial.split(CLEAR)[-2]  # the status line as it stood before the step's last line
    assert "30/30" in last and "order_filled-30.jsonl.gz" in last and "ingest_fills" in last
    drawn = [part for part in out.getvalue().split(CLEAR) if "\n" not in part and part]
    assert len(drawn) == 30 and all(len(status) < 100 for status in drawn)  # fits the terminal


def test_without_a_terminal_every_progress_record_is_its_own_line(console):
    out = console("INFO", "auto", tty=False)
    _ingest_like(5)
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [r.get("progress") for r in records if r["msg"] == "dataset file loaded"] == [
        f"{i}/5" for i in range(1, 6)
    ]


# --- dbt's node progress ----------------------------------------------------------------------


def test_dbt_node_progress_reaches_the_run_log(sample_run):
    """The sample night's run.log has a line per dbt node start and finish, with the step, the
    node, its status and seconds: no more silence while dbt_build runs."""
    settings, _, run = sample_run
    folder = history.run_folder(settings, run["run_id"], run["started_at"])
    records = [json.loads(line) for line in (folder / "run.log").read_text().splitlines()]
    build = next(s for s in run["steps"] if s["name"] == "dbt_build")
    started = [r for r in records if r["msg"] == "dbt node started"]
    finished = [r for r in records if r["msg"] == "dbt node finished"]
    assert len(finished) == sum(build["details"]["dbt"].values())  # every node dbt reported
    assert len(started) == len(finished)
    for r in finished:
        assert r["step"] == "dbt_build" and r["run_id"] == run["run_id"]
        assert r["node"] and r["status"] in ("success", "pass") and r["seconds"] >= 0
        assert re.fullmatch(r"\d+/\d+", r["progress"])
    assert {r["node"] for r in finished} >= {"fct_wallet_category_pnl", "dim_markets"}


def test_dbt_node_progress_is_logged_as_it_happens(sample_run, caplog):
    from pipeline.dbt_chdb import run_dbt

    settings, _, _ = sample_run
    token, run_token = step_var.set("dbt_build"), run_id_var.set("r-dbt")
    try:
        with caplog.at_level(logging.INFO):
            outcome = run_dbt(settings, ["build", "--quiet", "--select", "dim_markets"])
    finally:
        step_var.reset(token)
        run_id_var.reset(run_token)
    assert outcome.success, outcome.error
    nodes = [r for r in caplog.records if r.getMessage() in ("dbt node started", "dbt node finished")]
    assert len(nodes) == 2 * len(outcome.results)
    first = nodes[0].ctx
    assert (first["step"], first["run_id"], first["node"]) == ("dbt_build", "r-dbt", "dim_markets")
    assert first["progress"] == f"1/{len(outcome.results)}"


# --- an unreachable service -------------------------------------------------------------------


def _runner(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    base = {
        "PATH": os.environ.get("PATH", ""),
        "CASCADIAN_HOME": str(tmp_path / "home"),
        "REPORTS_DIR": str(tmp_path / "reports"),
        "DATA_DIR": str(tmp_path / "data"),
        "CASCADIAN_ENV_FILE": str(tmp_path / "none.env"),
        "LOG_FORMAT": "text",
        "COLUMNS": "200",
    }
    (tmp_path / "none.env").write_text("")
    return subprocess.run(
        [sys.executable, "runner.py", *args],
        cwd=PROJECT_ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )


def _log_lines(text: str) -> list[dict]:
    return [logfmtkv.parse(line) for line in text.splitlines() if line.startswith("ts=")]


@pytest.mark.slow
def test_an_unreachable_warehouse_is_one_clear_line_per_fact(tmp_path):
    url = f"http://127.0.0.1:{free_port()}"
    done = _runner(tmp_path, "run", CLICKHOUSE_URL=url)
    out = done.stdout + done.stderr
    assert done.returncode == 2, out
    assert "Traceback" not in out
    assert "HTTPConnectionPool" not in out and "query_id" not in out and "Retrying" not in out
    lines = _log_lines(done.stdout)
    errors = [r for r in lines if r["level"] == "error" and r.get("step") == "preflight"]
    assert len(errors) == 1, errors  # one line for the failed step, not one per layer
    cause = f"cannot reach ClickHouse at 127.0.0.1:{url.rsplit(':', 1)[1]}: connection refused"
    assert errors[0]["error"].endswith(cause)
    assert len(out.splitlines()) <= 25, out

    debug = _runner(tmp_path, "run", CLICKHOUSE_URL=url, LOG_LEVEL="DEBUG")
    assert "Traceback (most recent call last)" in debug.stdout


def test_an_unreachable_warehouse_in_the_healthcheck_says_so_once(tmp_path):
    done = _runner(tmp_path, "health", CLICKHOUSE_URL=f"http://127.0.0.1:{free_port()}")
    assert done.returncode == 2
    out = done.stdout + done.stderr
    assert "Traceback" not in out and "HTTPConnectionPool" not in out and "Retrying" not in out
    assert out.count("connection refused") == 1, out
    rows = {line.split("  ")[0]: line for line in out.splitlines()}
    for title in ("Raw and mart tables", "Trade freshness"):
        assert "not checked: ClickHouse is unreachable" in rows[title], rows[title]
    assert len(out.splitlines()) <= 15, out


def test_every_step_warning_reaches_the_run_log(sample_run):
    """The runbook says run.log holds every line: a step's warnings (the sample's tokens that
    map to no known condition) were in summary.json and the report only."""
    settings, _, run = sample_run
    folder = history.run_folder(settings, run["run_id"], run["started_at"])
    records = [json.loads(line) for line in (folder / "run.log").read_text().splitlines()]
    warned = [s for s in run["steps"] if s.get("warnings")]
    assert warned, "the sample night has step warnings (tokens no market lists)"
    for step in warned:
        line = next(
            r for r in records if r.get("step") == step["name"] and r["msg"] == f"step {step['status']}"
        )
        assert line["level"] == "WARNING" and line["warnings"] == step["warnings"]
