"""`runner.py sql`: ad-hoc queries for analysts, mainly against the embedded engine, which
no other process can open while it is in use.

Read-only unless `--write`: the command is for looking, and one mistyped statement must not
drop the marts. ClickHouse's `readonly` 2, not 1: 1 also refuses every settings change, those
clickhouse-connect sends with a query to a server and an analyst's `SETTINGS max_threads = 1`.
"""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import json
import re
import sys
from typing import Any, TextIO

from pipeline import warehouse
from pipeline.config import Settings
from pipeline.exit_codes import ExitCode


def _plain(value: Any) -> Any:
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, int) and abs(value) > 2**53:
        return str(value)  # JSON readers lose precision above 2^53
    return value


def render(columns: list[str], rows: list[tuple], fmt: str, out: TextIO) -> None:
    if fmt == "csv":
        writer = csv.writer(out)
        writer.writerow(columns)
        writer.writerows(rows)
    elif fmt == "json":
        for row in rows:
            out.write(json.dumps({c: _plain(v) for c, v in zip(columns, row)}) + "\n")
    else:
        cells = [[("NULL" if v is None else str(v)) for v in row] for row in rows]
        widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
        out.write(" | ".join(c.ljust(w) for c, w in zip(columns, widths)) + "\n")
        out.write("-+-".join("-" * w for w in widths) + "\n")
        for r in cells:
            out.write(" | ".join(v.ljust(w) for v, w in zip(r, widths)) + "\n")
        out.write(f"({len(rows)} rows)\n")


# A query's own trailing FORMAT clause: the client appends its own, so the engine reads two.
_OWN_FORMAT = re.compile(r"\bformat\s+\w+\s*;?\s*$", re.IGNORECASE)

READ_ONLY = {"readonly": 2}  # reads and settings changes; no writes, no DDL
_GUARD_CLAUSE = f"\n SETTINGS readonly = '{READ_ONLY['readonly']}'"
READ_ONLY_REFUSAL = "(READONLY)"  # the engine's error name for a query refused as a write


def _read_only_settings(ch) -> dict[str, int]:
    """The settings that make a query read-only, unless the ClickHouse user already is (a
    read-only profile may not change `readonly`, and the client would refuse to send it)."""
    setting = ch.server_settings.get("readonly")
    return {} if setting is not None and setting.value != "0" else dict(READ_ONLY)


def run_query(settings: Settings, query: str, fmt: str, out: TextIO, write: bool = False) -> int:
    from clickhouse_connect.driver.exceptions import DatabaseError

    with warehouse.connect(settings) as ch:
        guard = {} if write else _read_only_settings(ch)
        try:
            result = ch.query(query, settings=guard)
        except DatabaseError as exc:
            # the embedded client adds the guard to the query's text, which errors echo
            reason = warehouse.engine_message(str(exc).replace(_GUARD_CLAUSE, ""))
            if _OWN_FORMAT.search(query):
                print(
                    "query failed: the query ends with a FORMAT clause of its own; drop it and "
                    "choose the output with --format table, csv or json",
                    file=sys.stderr,
                )
            elif guard and READ_ONLY_REFUSAL in reason:
                print(
                    "query refused: runner.py sql is read-only; to change the warehouse "
                    f"deliberately, run it again with --write ({reason})",
                    file=sys.stderr,
                )
            else:
                print(f"query failed: {reason}", file=sys.stderr)
            return ExitCode.FAILED
        render(list(result.column_names), result.result_rows, fmt, out)
    return ExitCode.OK
