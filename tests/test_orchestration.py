"""Nightly orchestration: simulated nights across DST, failure policy, one run at a time."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from zoneinfo import ZoneInfo

import pytest

import runner
from nightly.run import run_nightly
from pipeline import history, schedule, warehouse
from pipeline.config import PROJECT_ROOT, ConfigError
from pipeline.redact import redact
from pipeline.runlock import RunLockHeld, run_lock
from pipeline.steps import SkipStep, Step, StepResult
from tests.support.settings import make_settings

NY = ZoneInfo("America/New_York")
UTC = dt.UTC


def _local(y, m, d, h=3):
    return dt.datetime(y, m, d, h, tzinfo=NY)


class FakeClock:
    def __init__(self, start: dt.datetime):
        self.now = start

    def __call__(self) -> dt.datetime:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


def _warehouse_state(settings):
    with warehouse.connect(settings) as ch:
        return ch.query("SELECT count(), uniqExact(id) FROM raw.order_filled").result_rows[0], ch.command(
            "SELECT sum(n_fills) FROM analytics.fct_wallet_positions"
        )


def _simulate(tmp_path, seed_night: dt.datetime, first_wake: dt.datetime):
    settings = make_settings(tmp_path, SAMPLE_DAYS="2")
    status, _ = run_nightly(settings, trigger="schedule", now=seed_night.astimezone(UTC))
    assert status == "success"
    clock = FakeClock(first_wake.astimezone(UTC))
    fired, states = [], [_warehouse_state(settings)]

    def fire(now, trigger):
        fired.append((now, trigger, run_nightly(settings, trigger=trigger, now=now)[0]))
        states.append(_warehouse_state(settings))

    config = schedule.ScheduleConfig()
    ran = schedule.Scheduler(config, settings, fire, clock=clock, sleep=clock.sleep).serve(max_runs=3)
    assert ran == 3
    return settings, fired, states


@pytest.mark.slow
@pytest.mark.parametrize(
    ("seed", "wake", "nights", "utc_hours"),
    [
        # daylight saving ends on 2026-11-01: 03:00 local is 07:00 UTC before, 08:00 UTC from then on
        (_local(2026, 10, 30), _local(2026, 10, 31, 1), [(10, 31), (11, 1), (11, 2)], [7, 8, 8]),
        # daylight saving starts on 2026-03-08: 08:00 UTC before, 07:00 UTC from then on (a past
        # spring: ingest rejects fills dated more than an hour after the real clock)
        (_local(2026, 3, 6), _local(2026, 3, 7, 1), [(3, 7), (3, 8), (3, 9)], [8, 7, 7]),
    ],
)
def test_three_nights_at_03_local_across_dst(tmp_path, seed, wake, nights, utc_hours):
    settings, fired, states = _simulate(tmp_path, seed, wake)
    assert [f[2] for f in fired] == ["success"] * 3
    assert [f[1] for f in fired] == ["schedule"] * 3
    local = [f[0].astimezone(NY) for f in fired]
    assert [(t.month, t.day, t.hour, t.minute) for t in local] == [(m, d, 3, 0) for m, d in nights]
    assert [f[0].hour for f in fired] == utc_hours
    # every night brings a new day of fills; nothing is ever duplicated
    counts = [s[0][0] for s in states]
    assert counts == sorted(counts) and len(set(counts)) == 4
    assert all(total == unique for (total, unique), _ in states)
    fills_in_marts = [s[1] for s in states]
    assert fills_in_marts == sorted(fills_in_marts) and len(set(fills_in_marts)) == 4
    runs = history.recent_runs(settings)
    assert [r["status"] for r in runs] == ["success"] * 4


def test_catch_up_runs_once_at_start_when_the_last_success_is_too_old(tmp_path):
    settings = make_settings(tmp_path)
    config = schedule.ScheduleConfig(catchup_hours=26)
    now = dt.datetime(2026, 11, 10, 6, tzinfo=UTC)
    assert schedule.needs_catchup(settings, config, now)  # never ran
    history.record_run(
        settings,
        {
            "run_id": "r1",
            "trigger": "schedule",
            "status": "success",
            "started_at": "2026-11-09T08:00:00+00:00",
            "finished_at": "2026-11-09T08:05:00+00:00",
            "steps": [],
            "warnings": [],
        },
    )
    assert not schedule.needs_catchup(settings, config, now)  # 21h55m since the last success
    assert schedule.needs_catchup(settings, config, now + dt.timedelta(hours=8))  # 29h55m
    calls = []
    clock = FakeClock(now + dt.timedelta(hours=8))
    sched = schedule.Scheduler(
        config, settings, lambda t, trig: calls.append(trig), clock=clock, sleep=clock.sleep
    )
    sched.serve(max_runs=2)
    assert calls == ["catchup", "schedule"]


def test_next_fire_times_and_cron_output(capsys):
    config = schedule.ScheduleConfig()
    times = schedule.next_fire_times(config, dt.datetime(2026, 10, 30, 12, tzinfo=UTC), 5)
    assert [t.strftime("%m-%d %H:%M %Z") for t in times] == [
        "10-31 03:00 EDT",
        "11-01 03:00 EST",
        "11-02 03:00 EST",
        "11-03 03:00 EST",
        "11-04 03:00 EST",
    ]
    # exactly at a fire time, the next one is the following day
    assert schedule.next_fire_times(config, times[0], 1)[0] == times[1]
    assert runner.main(["schedule", "--next", "5"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 5 and all(" 03:00 E" in line and " UTC" in line for line in lines)
    assert runner.main(["cron"]) == 0
    out = capsys.readouterr().out
    assert "0 7,8 * * * " in out and "--if-local-time 03:00" in out  # tests/test_schedule.py
    assert "OnCalendar=*-*-* 03:00:00 America/New_York" in out


def test_bad_schedule_setting_is_a_configuration_error():
    with pytest.raises(
        ConfigError, match="SCHEDULE_TZ='Mars/Olympus': 'Mars/Olympus' is not an IANA time zone"
    ):
        schedule.schedule_config({"SCHEDULE_TZ": "Mars/Olympus"})


def _ok(ctx):
    return StepResult(message="ok")


def _boom(ctx):
    raise RuntimeError("upstream API returned garbage")


def _missing(ctx):
    raise SkipStep("no input today")


def test_a_non_critical_failure_ends_partial_and_independent_steps_still_run(tmp_path):
    settings = make_settings(tmp_path)
    steps = [
        Step("first", _ok),
        Step("flaky", _boom),
        Step("needs_flaky", _ok, needs=("flaky",)),
        Step("optional", _missing),
        Step("independent", _ok),
    ]
    status, run = run_nightly(settings, step_list=steps)
    by_name = {s["name"]: s for s in run["steps"]}
    assert status == "partial"
    assert by_name["flaky"]["status"] == "failed"
    assert "RuntimeError: upstream API returned garbage" in by_name["flaky"]["error"]
    assert (
        by_name["needs_flaky"]["status"] == "skipped" and "needs flaky" in by_name["needs_flaky"]["message"]
    )
    assert by_name["optional"]["status"] == "skipped" and by_name["optional"]["message"] == "no input today"
    assert by_name["independent"]["status"] == "success"
    log_lines = [
        json.loads(line)
        for line in (history.run_folder(settings, run["run_id"], run["started_at"]) / "run.log")
        .read_text()
        .splitlines()
    ]
    failed = [line for line in log_lines if line["msg"] == "step failed"]
    assert failed[0]["step"] == "flaky" and failed[0]["run_id"] == run["run_id"]


def test_unreachable_clickhouse_fails_fast_and_is_still_recorded(tmp_path, monkeypatch, capsys):
    settings = make_settings(tmp_path, CLICKHOUSE_URL="http://127.0.0.1:1")
    for k, v in {
        "CASCADIAN_HOME": settings.home,
        "REPORTS_DIR": settings.reports_dir,
        "DATA_DIR": settings.data_dir,
        "CLICKHOUSE_URL": "http://127.0.0.1:1",
    }.items():
        monkeypatch.setenv(k, str(v))
    assert runner.main(["run"]) == 2
    run = history.last_run(settings)
    assert run["status"] == "failed"
    # nothing after the critical failure ran but the final health and the report
    assert [s["name"] for s in run["steps"]] == ["preflight", "final_health", "health_report"]
    assert "cannot reach ClickHouse" in run["steps"][0]["error"]
    assert (history.run_folder(settings, run["run_id"], run["started_at"]) / "health.json").exists()


@pytest.mark.slow
def test_configured_postgres_that_is_down_fails_fast(tmp_path):
    settings = make_settings(tmp_path, POSTGRES_URL="postgresql://postgres@127.0.0.1:1/test")
    status, run = run_nightly(settings)
    assert status == "failed"
    assert [s["name"] for s in run["steps"]] == ["preflight", "final_health", "health_report"]
    assert "127.0.0.1" in run["steps"][0]["error"] or "connect" in run["steps"][0]["error"].lower()


HOLD_LOCK = textwrap.dedent("""
    import sys
    from pipeline.config import load_settings
    from pipeline.runlock import run_lock
    settings = load_settings({"CASCADIAN_HOME": sys.argv[1]})
    with run_lock(settings, "holder-run", "2026-11-28T03:00:00+00:00"):
        print("locked", flush=True)
        sys.stdin.read()
""")


def _hold_lock(settings):
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(settings.home)],
        cwd=PROJECT_ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
    )
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_a_second_run_refuses_at_once_with_exit_3(tmp_path, monkeypatch, capsys):
    settings = make_settings(tmp_path)
    holder = _hold_lock(settings)
    try:
        monkeypatch.setenv("CASCADIAN_HOME", str(settings.home))
        monkeypatch.setenv("REPORTS_DIR", str(settings.reports_dir))
        started = time.monotonic()
        assert runner.main(["run"]) == 3
        assert time.monotonic() - started < 5
        assert "another run holds" in capsys.readouterr().err
        with pytest.raises(RunLockHeld, match="holder-run"):
            run_nightly(settings)
    finally:
        holder.stdin.close()
        holder.wait(10)


def test_a_lock_left_by_a_killed_run_is_taken_over(tmp_path):
    settings = make_settings(tmp_path)
    holder = _hold_lock(settings)
    holder.send_signal(signal.SIGKILL)
    holder.wait(10)
    status, _run = run_nightly(settings, step_list=[Step("only", _ok)])
    assert status == "success"
    dead = [r for r in history.recent_runs(settings) if r["run_id"] == "holder-run"]
    assert dead and dead[0]["status"] == "interrupted"
    assert "died before the run finished" in dead[0]["error"]
    with run_lock(settings, "next", "now") as grant:  # a clean finish leaves no stale holder
        assert grant.previous is None


def test_sigterm_lets_the_current_step_finish_and_stops_the_run(tmp_path):
    settings = make_settings(tmp_path)

    def terminated_midway(ctx):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.1)
        return StepResult(message="finished despite SIGTERM")

    before = signal.getsignal(signal.SIGTERM)
    status, run = run_nightly(settings, step_list=[Step("long", terminated_midway), Step("later", _ok)])
    by_name = {s["name"]: s for s in run["steps"]}
    assert status == "interrupted"
    assert by_name["long"]["status"] == "success"
    assert by_name["later"]["status"] == "interrupted"
    assert signal.getsignal(signal.SIGTERM) is before  # the run's handler is gone again


def test_secrets_never_reach_log_lines(monkeypatch):
    monkeypatch.setenv("CLICKHOUSE_PASSWORD", "hunter2-secret")
    monkeypatch.setenv("POSTGRES_URL", "postgresql://app:pg-pass-77@db/app")
    assert redact("auth with hunter2-secret and pg-pass-77") == "auth with *** and ***"
