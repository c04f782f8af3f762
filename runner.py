#!/usr/bin/env python3
"""Cascadian pipeline command line: `runner.py run` is the nightly job.

    runner.py run                     ingest fills -> load reference files -> dbt build
    runner.py ingest                  load new Goldsky fills only
    runner.py dbt build [...]         dbt with plain dbt arguments, on the configured engine
    runner.py sql "select ..."        query the warehouse (table, csv or json output)
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

from pipeline.config import ConfigError, load_settings  # noqa: E402
from pipeline.logs import setup_logging  # noqa: E402
from pipeline.warehouse import WarehouseBusy, WarehouseUnavailable  # noqa: E402


def cmd_run(args: argparse.Namespace) -> int:
    from pipeline.nightly import EXIT_CODES, run_nightly

    status, run = run_nightly(load_settings(), trigger=args.trigger)
    print(f"run {run['run_id']}: {status}")
    for step in run["steps"]:
        print(f"  {step['name']:<16} {step['status']:<8} {step['seconds']:>8.2f}s  {step['message']}")
    for warning in run["warnings"]:
        print(f"  warning: {warning}")
    return EXIT_CODES[status]


def cmd_ingest(args: argparse.Namespace) -> int:
    from pipeline.nightly import step_ingest_fills
    from pipeline.steps import RunContext, Step, new_run_id, run_step
    import datetime as dt

    now = dt.datetime.now(dt.timezone.utc)
    ctx = RunContext(load_settings(), new_run_id(now), "manual", now)
    result = run_step(Step("ingest_fills", step_ingest_fills), ctx)
    print(f"ingest: {result.status}: {result.message or result.error}")
    return {"success": 0, "skipped": 0}.get(result.status, 2)


def cmd_dbt(args: argparse.Namespace) -> int:
    from pipeline.dbt_chdb import run_dbt

    outcome = run_dbt(load_settings(), args.dbt_args)
    return 0 if outcome.success else 1


def cmd_sql(args: argparse.Namespace) -> int:
    from pipeline.sql_cli import run_query

    return run_query(load_settings(), args.query, args.format, sys.stdout)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="runner.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run", help="run the nightly job once")
    p.add_argument("--trigger", default="manual", help="recorded with the run (manual, schedule, ...)")
    p.set_defaults(func=cmd_run)
    sub.add_parser("ingest", help="load new fills from the configured source").set_defaults(func=cmd_ingest)
    p = sub.add_parser("dbt", help="run dbt with the given arguments (e.g. `dbt build -s marts`)")
    p.add_argument("dbt_args", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_dbt)
    p = sub.add_parser("sql", help="run a query against the warehouse")
    p.add_argument("query")
    p.add_argument("--format", choices=("table", "csv", "json"), default="table")
    p.set_defaults(func=cmd_sql)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    setup_logging(settings.log_level, os.environ.get("LOG_FORMAT", "text"))
    try:
        return args.func(args)
    except WarehouseBusy as exc:
        print(str(exc), file=sys.stderr)
        return 3
    except WarehouseUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
