"""`runner.py validate [FILE...] [--json]`: check reference files without loading them.

Lets whoever produces a file check it before the nightly run rejects it. Exit codes follow
the worst file: 0 every file valid, 1 warnings only, 2 at least one invalid file (or no file
to validate).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TextIO

from ingest import validation
from pipeline.exit_codes import VALIDATION_STATUS, ExitCode


def default_paths() -> tuple[Path, list[Path]]:
    """DATA_DIR and the known reference files present in it."""
    from pipeline.config import load_settings

    data_dir = load_settings().data_dir
    return data_dir, [
        data_dir / name
        for name, kind in validation.KINDS.items()
        if kind.loaded and (data_dir / name).exists()
    ]


def main(paths: list[str], as_json: bool, out: TextIO | None = None) -> int:
    """Validate `paths` (or the known files in DATA_DIR), print a report, return the exit code."""
    out = out or sys.stdout
    if paths:
        files = [Path(p) for p in paths]
    else:
        data_dir, files = default_paths()
        if not files:
            message = f"no reference files in {data_dir}"
            print(
                json.dumps(
                    {"status": "invalid", "exit_code": int(ExitCode.FAILED), "error": message, "files": []}
                )
                if as_json
                else f"error: {message}",
                file=out,
            )
            return ExitCode.FAILED
    reports = [validation.validate_file(f) for f in files]
    code = max(VALIDATION_STATUS[r.status] for r in reports)
    status = next(s for s, c in VALIDATION_STATUS.items() if c == code)
    if as_json:
        print(
            json.dumps(
                {"status": status, "exit_code": code, "files": [r.to_dict() for r in reports]}, indent=2
            ),
            file=out,
        )
    else:
        for report in reports:
            print(validation.format_report(report), file=out)
        print(
            f"{len(reports)} file(s): {sum(r.status == 'valid' for r in reports)} valid, "
            f"{sum(r.status == 'warnings' for r in reports)} with warnings, "
            f"{sum(r.status == 'invalid' for r in reports)} invalid",
            file=out,
        )
    return code
