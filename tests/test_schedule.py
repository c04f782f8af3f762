"""Deploying the schedule: a cron entry that fires at 03:00 New York on any cron (no CRON_TZ),
the runner's guard that lets only the right one of its UTC hours run, and the systemd units;
both read the one env file."""

from __future__ import annotations

import datetime as dt
import re
import shutil
import subprocess
from zoneinfo import ZoneInfo

import pytest

import runner
from pipeline import schedule
from pipeline.config import PROJECT_ROOT

NY = ZoneInfo("America/New_York")
UTC = dt.UTC
PYTHON = "/srv/cascadian/.venv/bin/python"
PROJECT = "/srv/cascadian"
ENV_FILE = "/srv/cascadian/.env"


def _cron_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def _fields(line: str) -> tuple[list[int], list[int], str]:
    minute, hour, dom, month, dow, command = line.split(None, 5)
    assert (dom, month, dow) == ("*", "*", "*")
    return [int(m) for m in minute.split(",")], [int(h) for h in hour.split(",")], command


def test_the_cron_entry_needs_no_cron_tz_and_covers_both_utc_hours():
    text = schedule.cron_entry(schedule.ScheduleConfig(), PROJECT, PYTHON, ENV_FILE)
    assert not re.search(r"^\s*CRON_TZ\s*=", text, re.M)  # Debian's stock cron ignores it
    [line] = _cron_lines(text)
    minutes, hours, command = _fields(line)
    assert (minutes, hours) == ([0], [7, 8])  # 03:00 EDT is 07:00 UTC, 03:00 EST is 08:00 UTC
    assert f"cd {PROJECT} && {PYTHON} runner.py run --trigger cron --if-local-time 03:00" in command
    assert ENV_FILE in text  # says where the settings come from


def test_the_cron_entry_says_when_the_env_file_does_not_exist(tmp_path):
    """It said "Settings come from <clone>/.env" when no such file existed: the runs would
    have used the defaults while the operator believed their settings were read."""
    missing = str(tmp_path / ".env")
    text = schedule.cron_entry(schedule.ScheduleConfig(), PROJECT, PYTHON, missing)
    assert "Settings come from" not in text and f"{missing} (CASCADIAN_ENV_FILE) does not exist" in text
    (tmp_path / ".env").write_text("LOG_LEVEL=INFO\n")
    text = schedule.cron_entry(schedule.ScheduleConfig(), PROJECT, PYTHON, missing)
    assert f"Settings come from {missing}" in text


def test_run_accepts_only_the_triggers_that_exist(capsys):
    """`--trigger bogus` was accepted and recorded with the run; the choices are the ones the
    scheduler, cron and systemd entries and a person use."""
    with pytest.raises(SystemExit) as caught:
        runner.build_parser().parse_args(["run", "--trigger", "bogus"])
    assert caught.value.code == 2 and "invalid choice: 'bogus'" in capsys.readouterr().err
    made = schedule.cron_entry(schedule.ScheduleConfig(), PROJECT, PYTHON, ENV_FILE)
    made += schedule.systemd_units(schedule.ScheduleConfig(), PROJECT, PYTHON, ENV_FILE)
    used = set(re.findall(r"--trigger (\w+)", made)) | {"manual", "schedule", "catchup"}
    for trigger in used:
        assert runner.build_parser().parse_args(["run", "--trigger", trigger]).trigger == trigger


def test_cron_hours_follow_the_zone_cron_runs_in():
    config = schedule.ScheduleConfig()
    assert schedule.cron_times(config, "UTC") == {0: [7, 8]}
    # Europe changes its clocks on other Sundays than the US: 03:00 New York is 08:00 or 09:00 there
    assert schedule.cron_times(config, "Europe/Berlin") == {0: [8, 9]}
    # a half-hour zone keeps the minute
    assert schedule.cron_times(config, "Asia/Kolkata") == {30: [12, 13]}
    assert schedule.cron_times(schedule.ScheduleConfig(timezone="UTC", hour=3), "UTC") == {0: [3]}


def _cron_fires(line: str, days: int, start: dt.date) -> list[dt.datetime]:
    """Every time cron (on a UTC clock) would start the command of `line`."""
    minutes, hours, _ = _fields(line)
    return [
        dt.datetime(day.year, day.month, day.day, h, m, tzinfo=UTC)
        for day in (start + dt.timedelta(days=i) for i in range(days))
        for h in hours
        for m in minutes
    ]


def test_over_two_years_the_guard_passes_exactly_once_a_night_at_03_local():
    config = schedule.ScheduleConfig()
    [line] = _cron_lines(schedule.cron_entry(config, PROJECT, PYTHON, ENV_FILE))
    passed = [t for t in _cron_fires(line, 731, dt.date(2026, 1, 1)) if schedule.guard(config, "03:00", t)[0]]
    local = [t.astimezone(NY) for t in passed]
    assert all((t.hour, t.minute) == (3, 0) for t in local)
    dates = [t.date() for t in local]
    assert len(dates) == len(set(dates)) == 731  # one run per local day, none missed


@pytest.mark.parametrize(
    ("utc", "runs"),
    [
        # daylight saving ends on 2026-11-01 (06:00 UTC): 03:00 local moves from 07:00 to 08:00 UTC
        ("2026-10-31T07:00", True),
        ("2026-10-31T08:00", False),
        ("2026-11-01T07:00", False),
        ("2026-11-01T08:00", True),
        ("2026-11-02T07:00", False),
        ("2026-11-02T08:00", True),
        # daylight saving starts on 2027-03-14 (07:00 UTC): back from 08:00 to 07:00 UTC
        ("2027-03-13T07:00", False),
        ("2027-03-13T08:00", True),
        ("2027-03-14T07:00", True),
        ("2027-03-14T08:00", False),
        ("2027-03-15T07:00", True),
        ("2027-03-15T08:00", False),
        # cron on a busy machine starts a few minutes late: still the right one
        ("2027-03-15T07:04", True),
    ],
)
def test_the_guard_across_both_dst_changes(utc, runs):
    now = dt.datetime.fromisoformat(utc).replace(tzinfo=UTC)
    ok, why = schedule.guard(schedule.ScheduleConfig(), "03:00", now)
    assert ok is runs
    if not runs:
        local = now.astimezone(NY)
        assert f"{local:%H:%M %Z}" in why and "America/New_York" in why and "03:00" in why


def _pinned_clock(monkeypatch, utc: str) -> None:
    monkeypatch.setattr(schedule, "utc_now", lambda: dt.datetime.fromisoformat(utc).replace(tzinfo=UTC))


def test_run_with_the_guard_at_the_wrong_hour_exits_0_without_running(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CASCADIAN_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("REPORTS_DIR", str(tmp_path / "reports"))
    monkeypatch.setenv("SCHEDULE_TZ", "America/New_York")
    ran = []
    monkeypatch.setattr("nightly.run.run_nightly", lambda *a, **k: ran.append(k) or ("success", {}))
    _pinned_clock(monkeypatch, "2026-11-01T07:00")  # 02:00 EST: the 08:00 UTC entry is tonight's
    assert runner.main(["run", "--trigger", "cron", "--if-local-time", "03:00"]) == 0
    out = capsys.readouterr().out
    assert "not running" in out and "02:00 EST" in out
    assert ran == [] and not (tmp_path / "reports").exists()


def test_run_with_the_guard_at_the_right_hour_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("CASCADIAN_HOME", str(tmp_path / "home"))
    ran = []

    def fake_run(settings, trigger="manual", now=None):
        ran.append(trigger)
        return "success", {"run_id": "r", "status": "success", "steps": [], "warnings": []}

    monkeypatch.setattr("nightly.run.run_nightly", fake_run)
    _pinned_clock(monkeypatch, "2026-11-01T08:00")
    assert runner.main(["run", "--trigger", "cron", "--if-local-time", "03:00"]) == 0
    assert ran == ["cron"]


def test_a_bad_guard_time_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        runner.main(["run", "--if-local-time", "25:00"])
    assert exc.value.code == 2
    assert "25:00" in capsys.readouterr().err


def test_the_systemd_units_read_the_env_file_and_fire_at_03_new_york():
    text = schedule.systemd_units(schedule.ScheduleConfig(), PROJECT, PYTHON, ENV_FILE)
    assert f"EnvironmentFile=-{ENV_FILE}" in text
    assert "OnCalendar=*-*-* 03:00:00 America/New_York" in text
    assert "Persistent=true" in text
    assert f"ExecStart={PYTHON} runner.py run --trigger systemd" in text
    assert "--if-local-time" not in text  # systemd evaluates the zone itself


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_agrees_on_the_fire_times():
    config = schedule.ScheduleConfig()
    text = schedule.systemd_units(config, PROJECT, PYTHON, ENV_FILE)
    [calendar] = re.findall(r"^OnCalendar=(.+)$", text, re.M)
    out = subprocess.run(
        ["systemd-analyze", "calendar", "--iterations=3", calendar],
        capture_output=True,
        text=True,
        check=True,
        env={"TZ": "UTC", "PATH": "/usr/bin:/bin"},
    ).stdout
    fires = re.findall(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC", out)
    assert len(fires) == 3
    for fire in fires:
        local = dt.datetime.fromisoformat(fire).replace(tzinfo=UTC).astimezone(NY)
        assert (local.hour, local.minute) == (3, 0)


def test_runner_cron_prints_the_env_file_it_reads(tmp_path, monkeypatch, capsys):
    env_file = tmp_path / "cascadian.env"
    env_file.write_text("SAMPLE_DAYS=3\n")
    monkeypatch.setenv("CASCADIAN_ENV_FILE", str(env_file))
    assert runner.main(["cron"]) == 0
    out = capsys.readouterr().out
    assert f"EnvironmentFile=-{env_file}" in out
    [line] = _cron_lines(out.split("# /etc/systemd")[0])
    assert "--if-local-time 03:00" in line


def test_the_runbook_describes_both_routes_and_the_env_file():
    runbook = (PROJECT_ROOT / "docs" / "runbook.md").read_text()
    assert "CRON_TZ=" not in runbook
    for words in ("--if-local-time", "EnvironmentFile=", "CASCADIAN_ENV_FILE", "systemd >= 235"):
        assert words in runbook, words
