"""`runner.py health [--json]`: the checks as a readable table or one JSON object.

Exit code: 0 healthy, 1 warning, 2 critical (also 2 for a configuration error), 3 busy (another
process holds the embedded engine: try again later). A part that is not configured is shown
as such and does not change the exit code.
"""

from __future__ import annotations

import json
import shutil
import sys
import textwrap
from typing import Any, TextIO

from health.checks import NOT_CONFIGURED, run_checks
from pipeline.config import ConfigError, load_settings
from pipeline.exit_codes import HEALTH_STATUS, ExitCode
from pipeline.redact import redact_obj


def render_table(report: dict[str, Any], out: TextIO, width: int | None = None) -> None:
    width = width or max(80, min(shutil.get_terminal_size((120, 24)).columns, 160))
    name_w = max(len(c["title"]) for c in report["checks"])
    status_w = len(shown_status(NOT_CONFIGURED))
    head = f"{'check':<{name_w}}  {'status':<{status_w}}  {'time':>6}  message"
    out.write(head + "\n" + "-" * min(width, max(len(head), 60)) + "\n")
    indent = name_w + 2 + status_w + 2 + 6 + 2
    for c in report["checks"]:
        lines = textwrap.wrap(c["message"], max(30, width - indent)) or [""]
        out.write(
            f"{c['title']:<{name_w}}  {shown_status(c['status']):<{status_w}}  "
            f"{c['seconds']:>5.2f}s  {lines[0]}\n"
        )
        for more in lines[1:]:
            out.write(" " * indent + more + "\n")
    counts = report["counts"]
    unset = counts.get(NOT_CONFIGURED, 0)
    out.write(
        f"\noverall: {report['status'].upper()}  ({counts['healthy']} healthy, "
        + (f"{unset} not configured, " if unset else "")
        + f"{counts['warning']} warning, {counts['critical']} critical) in {report['seconds']:.2f}s\n"
    )


def shown_status(status: str) -> str:
    """A check's status for a person: upper case, `not configured` as words."""
    return "not configured" if status == NOT_CONFIGURED else status.upper()


def main(as_json: bool = False, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    try:
        settings = load_settings()
        health = settings.health
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return ExitCode.FAILED
    report = run_checks(settings, health)
    report = redact_obj(report)  # an error body may echo a configured secret
    if as_json:
        out.write(json.dumps(report, indent=2) + "\n")
    else:
        render_table(report, out)
    return ExitCode(report.get("exit_code", HEALTH_STATUS[report["status"]]))
