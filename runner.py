#!/usr/bin/env python3
"""Cascadian pipeline command line: `runner.py run` is the nightly job.

runner.py run                     the nightly job once (exit 0 ok, 1 partial, 2 failed, 3 busy)
runner.py runs                    the recent runs
runner.py schedule [--next N]     fire the run daily at 03:00 America/New_York
runner.py cron                    a crontab entry (any cron) and the systemd units, reading .env
runner.py ingest                  load new Goldsky fills only
runner.py ingest --since D --until D   bound a subgraph backfill (GOLDSKY_SOURCE=subgraph)
runner.py dbt build [...]         dbt with plain dbt arguments, on the configured engine
runner.py sql "select ..."        query the warehouse, read-only (table, csv or json; --write to change it)
runner.py validate [FILE...]      check reference files without loading them (--json)
runner.py health [--json]         the healthcheck (exit 0 healthy, 1 warning, 2 critical)
runner.py report --run-id ID      re-render a run's health report from its stored inputs
runner.py migrate                 apply the app database's migrations, build its dbt models
runner.py serve [--host --port]   the read API (docs/api.md)
runner.py config [--markdown]     every setting, its variable, default and meaning

Also installed as the console script `cascadian` (`cascadian run` = `runner.py run`).
Exit codes (pipeline/exit_codes.py): 0 ok, 1 worth a look, 2 failed, 3 busy.
"""

from __future__ import annotations

import os
import time

# Every process runs in UTC: chDB's "server" time zone is the process's TZ.
os.environ["TZ"] = "UTC"
time.tzset()
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402

from pipeline.config import ConfigError, load_env_file, load_settings  # noqa: E402
from pipeline.exit_codes import RUN_STATUS, ExitCode  # noqa: E402
from pipeline.logs import setup_logging  # noqa: E402
from pipeline.runlock import RunLockHeld  # noqa: E402
from pipeline.warehouse import WarehouseBusy, WarehouseUnavailable  # noqa: E402


def _print_run(run: dict) -> None:
    print(f"run {run['run_id']}: {run['status']}")
    for step in run["steps"]:
        print(f"  {step['name']:<20} {step['status']:<11} {step['seconds']:>8.2f}s  {step['message']}")
    for warning in run["warnings"]:
        print(f"  warning: {warning}")


def cmd_run(args: argparse.Namespace) -> int:
    from nightly.run import run_nightly

    if args.if_local_time:  # cron without CRON_TZ: only the entry at the scheduled local time runs
        from pipeline import schedule

        due, why = schedule.guard(schedule.schedule_config(), args.if_local_time)
        if not due:
            print(why)
            return ExitCode.OK
    status, run = run_nightly(load_settings(), trigger=args.trigger)
    _print_run(run)
    return RUN_STATUS[status]


def cmd_runs(args: argparse.Namespace) -> int:
    from pipeline.history import recent_runs
    from pipeline.steps import not_successful

    settings = load_settings()
    runs = recent_runs(settings, limit=args.limit)
    if args.json:
        print(json.dumps(runs, indent=2, default=str))
        return 0
    if not runs:  # a header alone reads like a listing that failed
        print(f"no runs yet (none recorded under {settings.reports_dir})")
        return 0
    print(
        f"{'run id':<24} {'trigger':<9} {'status':<11} {'started (UTC)':<20} {'seconds':>8}  not successful"
    )
    for r in runs:
        failed = ", ".join(not_successful(r.get("steps", [])))
        seconds = f"{r['seconds']:.1f}" if r.get("seconds") is not None else "-"
        print(
            f"{r['run_id']:<24} {r.get('trigger', '?'):<9} {r['status']:<11} "
            f"{r['started_at'][:19]:<20} {seconds:>8}  {failed}"
        )
    return 0


def cmd_schedule(args: argparse.Namespace) -> int:
    import datetime as dt

    from nightly.run import run_nightly
    from pipeline import schedule

    config = schedule.schedule_config()
    if args.next:
        for fire in schedule.next_fire_times(config, dt.datetime.now(dt.UTC), args.next):
            print(
                f"{fire.strftime('%Y-%m-%d %H:%M %Z')}  =  "
                f"{fire.astimezone(dt.UTC).strftime('%Y-%m-%d %H:%M UTC')}"
            )
        return 0
    settings = load_settings()
    scheduler: schedule.Scheduler

    def fire(now: dt.datetime, trigger: str) -> None:
        try:
            status, run = run_nightly(settings, trigger=trigger, now=now)
            _print_run(run)
            if status == "interrupted":
                scheduler.stop.set()
        except RunLockHeld as exc:
            print(f"skipped: {exc}", file=sys.stderr)

    scheduler = schedule.Scheduler(config, settings, fire)
    schedule.install_stop_signals(scheduler.stop)
    scheduler.serve()
    return 0


def cmd_cron(args: argparse.Namespace) -> int:
    from pipeline import schedule
    from pipeline.config import PROJECT_ROOT, env_file_path

    config = schedule.schedule_config()
    python = str(PROJECT_ROOT / ".venv" / "bin" / "python")
    env_file = str(env_file_path())
    print(schedule.cron_entry(config, str(PROJECT_ROOT), python, env_file, schedule.system_zone()))
    print(schedule.systemd_units(config, str(PROJECT_ROOT), python, env_file))
    return 0


def cmd_ingest(args: argparse.Namespace) -> int:
    import datetime as dt
    import functools

    from nightly.steps import step_ingest_fills
    from pipeline import warehouse
    from pipeline.steps import PARTIAL, SKIPPED, SUCCESS, RunContext, Step, new_run_id, run_step

    now = dt.datetime.now(dt.UTC)
    ctx = RunContext(load_settings(), new_run_id(now), "manual", now)
    step_fn = functools.partial(step_ingest_fills, since=args.since, until=args.until)
    # held for the step, as a run does: a held engine is busy (3) before any work, not a
    # failed step (2), and no reader can take it between the step's connections
    with warehouse.hold(ctx.settings, 0):
        result = run_step(Step("ingest_fills", step_fn), ctx)
    print(f"ingest: {result.status}: {result.message or result.error}")
    if result.status == SKIPPED:
        return ExitCode.FAILED if result.missing_input else ExitCode.OK
    return {SUCCESS: ExitCode.OK, PARTIAL: ExitCode.WARNING}.get(result.status, ExitCode.FAILED)


def cmd_dbt(args: argparse.Namespace) -> int:
    import contextlib

    from pipeline import warehouse
    from pipeline.dbt_chdb import needs_engine, run_dbt

    settings = load_settings()
    # held for the command (busy is exit 3 before dbt starts, and no reader can take the
    # engine between dbt's connections); `dbt ls` and the like need no engine
    held = warehouse.hold(settings, 0) if needs_engine(args.dbt_args) else contextlib.nullcontext()
    with held:
        outcome = run_dbt(settings, args.dbt_args)
    return ExitCode.OK if outcome.success else ExitCode.FAILED


def cmd_sql(args: argparse.Namespace) -> int:
    from pipeline.sql_cli import run_query

    return run_query(load_settings(), args.query, args.format, sys.stdout, write=args.write)


def cmd_validate(args: argparse.Namespace) -> int:
    from ingest.validate_cli import main as validate_main

    return validate_main(args.files, args.json)


def cmd_health(args: argparse.Namespace) -> int:
    from health.cli import main as health_main

    return health_main(as_json=args.json)


def cmd_report(args: argparse.Namespace) -> int:
    from health.report import main as report_main

    return report_main(args.run_id)


def cmd_migrate(args: argparse.Namespace) -> int:
    from watchlist.app_models import build_app_models
    from watchlist.db import AppDatabaseUnavailable
    from watchlist.migrations import MigrationError, migrate

    settings = load_settings()
    if not settings.postgres_url:
        print("configuration error: POSTGRES_URL is not set", file=sys.stderr)
        return ExitCode.FAILED
    try:
        report = migrate(settings.postgres_url, seed_sample=settings.goldsky_source == "sample")
    except (AppDatabaseUnavailable, MigrationError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return ExitCode.FAILED
    print(
        f"migrations: {len(report.applied)} applied ({', '.join(report.applied) or 'none'}), "
        f"{len(report.already)} already applied"
        + (f"; {report.seeded} sample strategies added" if report.seeded else "")
    )
    if args.skip_models:
        return ExitCode.OK
    outcome = build_app_models(settings)
    print(f"dbt_app: {', '.join(f'{k} {v}' for k, v in sorted(outcome.counts().items())) or outcome.error}")
    return ExitCode.OK if outcome.success else ExitCode.FAILED


def cmd_serve(args: argparse.Namespace) -> int:
    from api.server import serve

    serve(load_settings(), host=args.host, port=args.port)
    return 0


def cmd_config(args: argparse.Namespace) -> int:
    from pipeline.config import configuration_markdown, variables

    if args.markdown:
        sys.stdout.write(configuration_markdown())
        return ExitCode.OK
    rows = variables()
    width = max(len(r["variable"]) for r in rows)
    for row in rows:
        value = os.environ.get(row["variable"])
        shown = (
            "(set)"
            if value and any(k in row["variable"] for k in ("PASSWORD", "TOKEN", "KEY", "URL"))
            else value
        )
        print(f"{row['variable']:<{width}}  {shown or row['default']:<24}  {row['meaning']}")
    return ExitCode.OK


def _utc_arg(value: str):
    from pipeline.config import parse_utc

    try:
        return parse_utc(value)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _local_time_arg(value: str) -> str:
    from pipeline.schedule import parse_local_time

    try:
        hour, minute = parse_local_time(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return f"{hour:02d}:{minute:02d}"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="runner.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run", help="run the nightly job once")
    from pipeline.steps import TRIGGERS

    p.add_argument("--trigger", default="manual", choices=TRIGGERS, help="recorded with the run")
    p.add_argument(
        "--if-local-time",
        type=_local_time_arg,
        metavar="HH:MM",
        help="run only if it is HH:MM in SCHEDULE_TZ now, else exit 0 saying why (cron without CRON_TZ)",
    )
    p.set_defaults(func=cmd_run)
    p = sub.add_parser("runs", help="list the recent runs")
    p.add_argument("--limit", type=int, default=10)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_runs)
    p = sub.add_parser("schedule", help="run nightly at 03:00 America/New_York until stopped")
    p.add_argument("--next", type=int, metavar="N", help="print the next N fire times and exit")
    p.set_defaults(func=cmd_schedule)
    sub.add_parser("cron", help="print an equivalent crontab entry and systemd timer").set_defaults(
        func=cmd_cron
    )
    p = sub.add_parser("ingest", help="load new fills from the configured source")
    p.add_argument("--since", type=_utc_arg, help="subgraph backfill start (ISO date/time, UTC)")
    p.add_argument("--until", type=_utc_arg, help="subgraph backfill end, exclusive (default: now)")
    p.set_defaults(func=cmd_ingest)
    p = sub.add_parser("dbt", help="run dbt with the given arguments (e.g. `dbt build -s marts`)")
    p.add_argument("dbt_args", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_dbt)
    p = sub.add_parser("sql", help="run a read-only query against the warehouse")
    p.add_argument("query")
    p.add_argument("--format", choices=("table", "csv", "json"), default="table")
    p.add_argument(
        "--write", action="store_true", help="allow statements that change the warehouse (DDL, inserts)"
    )
    p.set_defaults(func=cmd_sql)
    p = sub.add_parser(
        "validate", help="check reference files without loading them (exit 0 valid, 1 warnings, 2 invalid)"
    )
    p.add_argument("files", nargs="*", help="files to check (default: the known files in DATA_DIR)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=cmd_validate)
    p = sub.add_parser("health", help="check sources, warehouse, tables, freshness and the last run")
    p.add_argument("--json", action="store_true", help="print one JSON object (docs/health.md)")
    p.set_defaults(func=cmd_health)
    p = sub.add_parser("report", help="re-render a run's health report notebook and HTML")
    p.add_argument("--run-id", required=True, help="the run id (its folder under REPORTS_DIR)")
    p.set_defaults(func=cmd_report)
    p = sub.add_parser(
        "migrate",
        help="apply the app database's migrations (POSTGRES_URL) and build its dbt models (dbt_app/)",
    )
    p.add_argument("--skip-models", action="store_true", help="migrations only, no dbt_app build")
    p.set_defaults(func=cmd_migrate)
    p = sub.add_parser("config", help="every setting: its variable, value or default, and meaning")
    p.add_argument("--markdown", action="store_true", help="print docs/configuration.md")
    p.set_defaults(func=cmd_config)
    p = sub.add_parser("serve", help="serve the read API (docs/api.md)")
    p.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.set_defaults(func=cmd_serve)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        load_env_file()
        settings = load_settings()
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return ExitCode.FAILED
    setup_logging(settings.log_level, settings.log_format)
    try:
        return args.func(args)
    except (WarehouseBusy, RunLockHeld) as exc:
        print(str(exc), file=sys.stderr)
        return ExitCode.BUSY
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return ExitCode.FAILED
    except WarehouseUnavailable as exc:
        # one line: the cause, not a traceback (LOG_LEVEL=DEBUG logs it)
        print(f"error: {str(exc).splitlines()[0]}", file=sys.stderr)
        return ExitCode.FAILED


if __name__ == "__main__":
    sys.exit(main())
