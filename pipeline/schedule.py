"""The nightly schedule: 03:00 America/New_York, every local day, across DST changes.

Fire times come from APScheduler's cron trigger on the IANA zone, so 03:00 local is 07:00
UTC in summer and 08:00 UTC in winter, and the two DST Sundays still get exactly one run
(03:00 exists once on both). The loop itself is small and takes its clock and sleep as
arguments, so tests drive it through simulated nights. A run missed while the machine was
down is caught up once at start when the last successful run is older than
SCHEDULE_CATCHUP_HOURS.
"""

from __future__ import annotations

import datetime as dt
import logging
import signal
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
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


def cron_entry(config: ScheduleConfig, project_dir: str, python: str) -> str:
    return (
        f"# Cascadian nightly run at {config.hour:02d}:{config.minute:02d} {config.timezone} "
        "(cron evaluates CRON_TZ, so DST is handled)\n"
        f"CRON_TZ={config.timezone}\n"
        f"{config.minute} {config.hour} * * * cd {project_dir} && {python} runner.py run "
        "--trigger cron >> reports/cron.log 2>&1\n"
    )


def systemd_units(config: ScheduleConfig, project_dir: str, python: str) -> str:
    return f"""# /etc/systemd/system/cascadian-nightly.service
[Unit]
Description=Cascadian nightly pipeline run

[Service]
Type=oneshot
WorkingDirectory={project_dir}
Environment=TZ=UTC
ExecStart={python} runner.py run --trigger systemd
# exit 1 (partial) and 3 (another run holds the lock) are not service failures
SuccessExitStatus=1 3

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
