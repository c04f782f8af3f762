"""The nightly schedule: 03:00 America/New_York, every local day, across DST changes.

Fire times come from APScheduler's cron trigger on the IANA zone, so 03:00 local is 07:00
UTC in summer and 08:00 UTC in winter, and the two DST Sundays still get exactly one run
(03:00 exists once on both). The loop itself is small and takes its clock and sleep as
arguments, so tests drive it through simulated nights. A run missed while the machine was
down is caught up once at start when the last successful run is older than
SCHEDULE_CATCHUP_HOURS.

For deployment, `runner.py cron` prints a systemd timer (recommended: systemd evaluates the
zone itself) and a crontab entry for crons without CRON_TZ: it fires at every hour the local
time can fall on cron's clock, and `guard` (the runner's `--if-local-time`) lets only the
right one run. Both read the settings from the one env file (CASCADIAN_ENV_FILE).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import signal
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger

from pipeline import history
from pipeline.config import Settings, load_settings

log = logging.getLogger(__name__)

Clock = Callable[[], dt.datetime]


@dataclass(frozen=True)
class ScheduleConfig:
    timezone: str = "America/New_York"
    hour: int = 3
    minute: int = 0
    catchup_hours: float = 26.0

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def trigger(self) -> CronTrigger:
        return CronTrigger(hour=self.hour, minute=self.minute, timezone=self.zone)


def schedule_config(env: Mapping[str, str] | None = None) -> ScheduleConfig:
    """The schedule from the settings (SCHEDULE_AT, SCHEDULE_TZ, SCHEDULE_CATCHUP_HOURS)."""
    chosen = load_settings(env).schedule
    return ScheduleConfig(
        timezone=chosen.tz, hour=chosen.hour, minute=chosen.minute, catchup_hours=chosen.catchup_hours
    )


def next_fire_times(config: ScheduleConfig, after: dt.datetime, n: int) -> list[dt.datetime]:
    """The next `n` fire times strictly after `after`, in the schedule's zone."""
    trigger, times, previous, now = config.trigger(), [], None, after
    while len(times) < n:
        fire = trigger.get_next_fire_time(previous, now)
        if fire <= after:  # the trigger includes `now` itself; the schedule wants strictly later
            now = fire + dt.timedelta(seconds=1)
            continue
        times.append(fire)
        previous, now = fire, fire + dt.timedelta(seconds=1)
    return times


def needs_catchup(settings: Settings, config: ScheduleConfig, now: dt.datetime) -> bool:
    """Whether the last successful run is older than the catch-up limit (or there is none)."""
    for run in history.recent_runs(settings, limit=50):
        if run.get("status") == "success":
            finished = dt.datetime.fromisoformat(run["finished_at"])
            return now - finished > dt.timedelta(hours=config.catchup_hours)
    return True


# How long after the scheduled minute the guard still lets a cron-started run through (cron
# on a busy machine starts late); under an hour, so the other candidate hour never passes.
GUARD_WINDOW = dt.timedelta(minutes=30)


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def parse_local_time(value: str) -> tuple[int, int]:
    """HH:MM as (hour, minute); ValueError naming the value otherwise."""
    match = re.fullmatch(r"(\d{1,2}):(\d{2})", value.strip())
    if not match or int(match[1]) > 23 or int(match[2]) > 59:
        raise ValueError(f"{value!r} is not a time of day as HH:MM")
    return int(match[1]), int(match[2])


def guard(config: ScheduleConfig, at: str, now: dt.datetime | None = None) -> tuple[bool, str]:
    """Whether a cron-started run at `now` is the one scheduled at `at` (HH:MM) in the
    schedule's zone, and why. Cron without CRON_TZ fires at every UTC hour 03:00 New York can
    be; only the entry that lands at 03:00 local passes. The scheduled time comes from the same
    trigger the built-in scheduler uses, so the DST Sundays behave alike."""
    hour, minute = parse_local_time(at)
    wanted = ScheduleConfig(timezone=config.timezone, hour=hour, minute=minute)
    now = (now or utc_now()).astimezone(dt.UTC)
    due = next_fire_times(wanted, now - GUARD_WINDOW - dt.timedelta(seconds=1), 1)[0]
    local = now.astimezone(wanted.zone)
    if due <= now:
        return True, f"{local:%H:%M %Z} in {config.timezone}: the run scheduled at {at}"
    return False, (
        f"not running: it is {local:%H:%M %Z} in {config.timezone} ({now:%Y-%m-%d %H:%M} UTC), "
        f"not {at}; the next scheduled run is {due:%Y-%m-%d %H:%M %Z} ({due.astimezone(dt.UTC):%H:%M} UTC)"
    )


def system_zone() -> str:
    """The machine's time zone, which cron's clock follows (the runner itself runs in UTC)."""
    try:
        named = Path("/etc/timezone").read_text().strip()
        if named:
            ZoneInfo(named)
            return named
    except (OSError, ValueError, KeyError):
        pass
    try:
        target = str(Path("/etc/localtime").resolve())
    except OSError:
        return "UTC"
    marker = "/zoneinfo/"
    if marker in target:
        name = target.split(marker, 1)[1].removeprefix("posix/").removeprefix("right/")
        try:
            ZoneInfo(name)
            return name
        except (ValueError, KeyError):
            pass
    return "UTC"


def cron_times(config: ScheduleConfig, cron_zone: str = "UTC", years: int = 2) -> dict[int, list[int]]:
    """The minutes and hours, on a cron clock in `cron_zone`, at which the schedule can fall:
    {minute: [hours]} over the next `years` years of fire times (DST in both zones included)."""
    zone = ZoneInfo(cron_zone)
    start = dt.datetime(utc_now().year, 1, 1, tzinfo=dt.UTC)
    found: dict[int, set[int]] = {}
    for fire in next_fire_times(config, start, 366 * years):
        local = fire.astimezone(zone)
        found.setdefault(local.minute, set()).add(local.hour)
    return {minute: sorted(hours) for minute, hours in sorted(found.items())}


def cron_entry(
    config: ScheduleConfig, project_dir: str, python: str, env_file: str, cron_zone: str = "UTC"
) -> str:
    """Crontab lines that fire at the schedule's local time on any cron, CRON_TZ or not: one
    entry at every hour the schedule can fall on cron's clock, and the runner's guard
    (`--if-local-time`) lets only the one at the scheduled local time run."""
    at = f"{config.hour:02d}:{config.minute:02d}"
    lines = [
        f"# Cascadian nightly run at {at} {config.timezone}, for any cron (CRON_TZ is not needed).",
        f"# cron's clock here: {cron_zone}. {at} {config.timezone} falls on the hours below depending on",
        "# daylight saving; cron starts the run at each, and the runner's --if-local-time guard runs",
        "# only the one that is the scheduled local time (the other exits 0 and says why).",
        f"# Settings come from {env_file} (CASCADIAN_ENV_FILE), which the runner reads itself."
        if Path(env_file).is_file()
        # said as a fact, it let an operator believe settings were read that never were
        else f"# {env_file} (CASCADIAN_ENV_FILE) does not exist: the runs use the defaults until it "
        "does (docs/configuration.md).",
    ]
    command = (
        f"cd {project_dir} && {python} runner.py run --trigger cron --if-local-time {at} "
        ">> reports/cron.log 2>&1"
    )
    for minute, hours in cron_times(config, cron_zone).items():
        lines.append(f"{minute} {','.join(str(h) for h in hours)} * * * {command}")
    return "\n".join(lines) + "\n"


def systemd_units(config: ScheduleConfig, project_dir: str, python: str, env_file: str) -> str:
    """The recommended route: systemd (>= 235) evaluates OnCalendar in the schedule's zone."""
    return f"""# /etc/systemd/system/cascadian-nightly.service
[Unit]
Description=Cascadian nightly pipeline run

[Service]
Type=oneshot
WorkingDirectory={project_dir}
# the same settings file the runner reads by itself (`-`: optional)
EnvironmentFile=-{env_file}
Environment=TZ=UTC
ExecStart={python} runner.py run --trigger systemd
# exit 3 (another run holds the lock) is not a failure of this one; a partial night (1)
# is, so that `systemctl --failed` and OnFailure= alerts see it
SuccessExitStatus=3

# /etc/systemd/system/cascadian-nightly.timer
[Unit]
Description=Cascadian nightly run at {config.hour:02d}:{config.minute:02d} {config.timezone}

[Timer]
OnCalendar=*-*-* {config.hour:02d}:{config.minute:02d}:00 {config.timezone}
Persistent=true

[Install]
WantedBy=timers.target
"""


@dataclass
class Scheduler:
    """Fires `run` at each scheduled time until `stop` is set."""

    config: ScheduleConfig
    settings: Settings
    run: Callable[[dt.datetime, str], object]
    clock: Clock = field(default=lambda: dt.datetime.now(dt.UTC))
    sleep: Callable[[float], object] | None = None
    stop: threading.Event = field(default_factory=threading.Event)

    def _wait_until(self, when: dt.datetime) -> bool:
        """Sleep until `when`; False when asked to stop first."""
        while not self.stop.is_set():
            remaining = (when - self.clock()).total_seconds()
            if remaining <= 0:
                return True
            chunk = min(remaining, 60.0)
            if self.sleep is not None:
                self.sleep(chunk)
            else:
                self.stop.wait(chunk)
        return False

    def serve(self, max_runs: int | None = None) -> int:
        """Run until stopped (or `max_runs` runs); returns the number of runs fired."""
        fired = 0
        now = self.clock()
        if needs_catchup(self.settings, self.config, now):
            log.info(
                "catch-up run: no successful run within the limit",
                extra={"ctx": {"catchup_hours": self.config.catchup_hours}},
            )
            self.run(now, "catchup")
            fired += 1
        while not self.stop.is_set() and (max_runs is None or fired < max_runs):
            fire = next_fire_times(self.config, self.clock(), 1)[0]
            log.info(
                "next run scheduled",
                extra={
                    "ctx": {
                        "at_local": fire.isoformat(),
                        "at_utc": fire.astimezone(dt.UTC).isoformat(),
                    }
                },
            )
            if not self._wait_until(fire):
                break
            self.run(fire.astimezone(dt.UTC), "schedule")
            fired += 1
        return fired


def install_stop_signals(stop: threading.Event) -> None:
    """SIGTERM/SIGINT between runs stop the scheduler; during a run the run's own handler
    lets the current step finish first."""

    def handler(signum, _frame):
        log.warning("scheduler stopping", extra={"ctx": {"signal": signal.Signals(signum).name}})
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, handler)
