"""A night no busy reader, bad file or kill can poison, with a status that tells the truth
(issue 15: the engine held by the run, a rejected reference file, "success" with nothing
built, secrets outside the log, the record of a killed run)."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

import runner
from nightly.run import run_nightly
from pipeline import history, warehouse
from pipeline.config import PROJECT_ROOT
from pipeline.steps import SUCCESS, Step, StepResult
from tests.support.engine import start_reader_loop, wait_until_in
from tests.support.factories import fill, market, resolution, token, wallet, write_jsonl, write_reference
from tests.support.settings import SAMPLE_NOW, make_settings

pytestmark = pytest.mark.slow


def _env(settings, **extra) -> dict[str, str]:
    return {
        "MIN_RESOLVED_CONDITIONS": str(settings.health.min_resolved_conditions),
        "CASCADIAN_HOME": str(settings.home),
        "DATA_DIR": str(settings.data_dir),
        "REPORTS_DIR": str(settings.reports_dir),
        "GOLDSKY_SOURCE": settings.goldsky_source,
        "GOLDSKY_DATASET_DIR": str(settings.goldsky_dataset_dir),
        "SAMPLE_DAYS": str(settings.sample_days),
        **extra,
    }


def test_a_reader_in_a_loop_cannot_make_a_step_fail(tmp_path):
    """Before: each step opened and closed the engine, and a reader grabbing it in between
    made dbt_build fail "held by another process". Now the run holds it from its first step
    to its record; the reader waits its turn (it sees busy), the run is untouched."""
    settings = make_settings(tmp_path)
    run_nightly(settings, now=SAMPLE_NOW)  # the engine directory exists, with data
    reader = start_reader_loop(settings.clickhouse_path, 300)
    try:
        wait_until_in(reader)  # the reader is cycling before the run starts
        status, run = run_nightly(settings, now=SAMPLE_NOW + dt.timedelta(days=1))
    finally:
        ok, busy = (int(x) for x in reader.communicate(timeout=60)[0].split())
    assert status == SUCCESS, [(s["name"], s["status"], s["message"]) for s in run["steps"]]
    assert ok > 0 and busy > 0  # the reader got in before the run, and was turned away during it


def test_an_engine_held_past_the_wait_is_busy_exit_3(held_directory, monkeypatch, capsys):
    for name, value in _env(held_directory, CLICKHOUSE_WAIT_S="1").items():
        monkeypatch.setenv(name, value)
    started = time.monotonic()
    assert runner.main(["run"]) == 3
    assert time.monotonic() - started < 10
    err = capsys.readouterr().err
    assert "busy: the embedded ClickHouse" in err and "after waiting 1 s" in err and "pid" in err
    assert history.recent_runs(held_directory) == []  # a run that never started records nothing
    # not even a run folder with a "run started" line, which `report --run-id` read as a run
    assert not any(held_directory.reports_dir.rglob("*"))


def test_a_run_stopped_while_waiting_for_the_engine_never_started(held_directory):
    """SIGTERM while the run waits for a held engine: it used to keep waiting (up to
    CLICKHOUSE_WAIT_S) and then run every step as interrupted. It stops waiting at once,
    exits busy and leaves nothing: no run folder, and a released run lock (a lock left with
    its run id would make the next run record a takeover of a run that never started)."""
    env = {**os.environ, **_env(held_directory, CLICKHOUSE_WAIT_S="120"), "LOG_FORMAT": "json"}
    proc = subprocess.Popen(
        [sys.executable, "runner.py", "run"],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    for line in proc.stdout:
        if "waiting for the embedded engine" in line:
            break
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 3
    assert "busy:" in proc.stderr.read()
    assert not any(held_directory.reports_dir.rglob("*"))
    assert (held_directory.home / "run.lock").read_text() == ""


def test_a_rejected_reference_file_keeps_the_build_running(tmp_path):
    """Before: one bad line in markets.jsonl skipped dbt_build ("needs load_reference"), so
    the night's new fills never reached the marts. Now the last good version is used and the
    night is partial, naming the file."""
    settings = make_settings(tmp_path, GOLDSKY_SOURCE="dataset", MIN_RESOLVED_CONDITIONS="1")
    write_reference(settings.data_dir, [market(1)], [resolution(1, "YES")])
    recent = int((SAMPLE_NOW - dt.timedelta(hours=6)).timestamp())
    day1 = [fill(1, recent, wallet(1), "BUY", token(1, 0), 10_000_000, 4_000_000)]
    write_jsonl(settings.goldsky_dataset_dir / "d1.jsonl", day1)
    assert run_nightly(settings, now=SAMPLE_NOW)[0] == SUCCESS
    (settings.data_dir / "markets.jsonl").write_text("{not json\n")
    day2 = [fill(2, recent + 1800, wallet(2), "BUY", token(1, 1), 5_000_000, 2_000_000)]
    write_jsonl(settings.goldsky_dataset_dir / "d2.jsonl", day2)
    status, run = run_nightly(settings, now=SAMPLE_NOW + dt.timedelta(hours=1))
    by = {s["name"]: s for s in run["steps"]}
    assert status == "partial"
    assert by["load_reference"]["status"] == "partial"
    assert any("markets.jsonl" in w for w in run["warnings"])
    assert by["dbt_build"]["status"] == SUCCESS
    with warehouse.connect(settings) as ch:
        wallets = ch.query(
            "SELECT wallet, condition_id FROM analytics.fct_wallet_positions ORDER BY wallet"
        ).result_rows
    # the new fill reached the marts, mapped through the last good markets.jsonl
    assert [w for w, _ in wallets] == [wallet(1), wallet(2)] and all(c for _, c in wallets)


def test_a_critical_final_health_is_never_exit_0(tmp_path, monkeypatch, capsys):
    """Fills three days old: everything loads and builds, but trade freshness is critical."""
    settings = make_settings(tmp_path, GOLDSKY_SOURCE="dataset", MIN_RESOLVED_CONDITIONS="1")
    write_reference(settings.data_dir, [market(1)], [resolution(1, "YES")])
    old = int((dt.datetime.now(dt.UTC) - dt.timedelta(days=3)).timestamp())
    write_jsonl(
        settings.goldsky_dataset_dir / "old.jsonl",
        [fill(1, old, wallet(1), "BUY", token(1, 0), 10_000_000, 4_000_000)],
    )
    for name, value in _env(settings).items():
        monkeypatch.setenv(name, value)
    assert runner.main(["run"]) == 1
    run = history.last_run(settings)
    final = next(s for s in run["steps"] if s["name"] == "final_health")
    assert run["status"] == "partial" and final["details"]["health_status"] == "critical"


def test_secrets_never_reach_the_run_record(tmp_path):
    """A password given as `?password=` and an error body echoing the API key: neither may
    appear in summary.json, the steps, ops.runs or ops.run_steps (before: only run.log was
    redacted)."""
    password, key = "pg-hunter2-secret", "gk-live-0123456789"
    settings = make_settings(
        tmp_path,
        POSTGRES_URL=f"postgresql://app@127.0.0.1:1/db?password={password}",
        GOLDSKY_API_KEY=key,
    )

    def echoes_the_key(_ctx):
        raise RuntimeError(f'HTTP 401: {{"error": "bad key {key}"}} from {settings.postgres_url}')

    plan = [Step("preflight", lambda ctx: StepResult(message="ok")), Step("goldsky", echoes_the_key)]
    status, run = run_nightly(settings, now=SAMPLE_NOW, step_list=plan)
    assert status == "partial"
    folder = history.run_folder(settings, run["run_id"], run["started_at"])
    written = [p.read_text() for p in folder.rglob("*") if p.is_file()]
    with warehouse.connect(settings) as ch:
        written += [str(r) for r in ch.query("SELECT * FROM ops.runs").result_rows]
        written += [str(r) for r in ch.query("SELECT * FROM ops.run_steps").result_rows]
    assert any("HTTP 401" in text for text in written)
    assert not [text for text in written if password in text or key in text]


KILLABLE = textwrap.dedent("""
    import sys, time
    sys.argv = ["runner.py", "run", "--trigger", "schedule"]
    import runner
    from nightly import steps as night
    from pipeline.steps import Step, StepResult

    def slow(ctx):
        print("slow step started", flush=True)
        time.sleep(600)
        return StepResult()

    original = night.steps
    night.steps = lambda: [s for s in original() if s.name in ("preflight", "preflight_health")] + [
        Step("slow", slow)
    ]
    sys.exit(runner.main(sys.argv[1:]))
""")


def test_a_killed_run_is_recorded_as_interrupted_with_its_trigger_and_steps(tmp_path):
    settings = make_settings(tmp_path)
    env = {**os.environ, **_env(settings), "PYTHONPATH": str(PROJECT_ROOT), "LOG_FORMAT": "json"}
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLABLE], cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, text=True
    )
    for line in proc.stdout:
        if "slow step started" in line:
            break
    shown = history.recent_runs(settings)
    assert [r["status"] for r in shown] == ["running"]  # while it runs, it is shown as running
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    shown = history.recent_runs(settings)
    assert [r["status"] for r in shown] == ["interrupted"]  # shown so as soon as it is gone
    _, new = run_nightly(settings)  # the next run takes over its lock
    killed = next(r for r in history.recent_runs(settings) if r["run_id"] != new["run_id"])
    assert killed["status"] == "interrupted" and killed["trigger"] == "schedule"
    assert [s["name"] for s in killed["steps"]] == ["preflight", "preflight_health"]
    assert "died before the run finished" in killed["error"]
    with warehouse.connect(settings) as ch:
        recorded = ch.query(
            "SELECT trigger, status FROM ops.runs WHERE run_id = {r:String}",
            parameters={"r": killed["run_id"]},
        ).result_rows
    assert recorded == [("schedule", "interrupted")]
