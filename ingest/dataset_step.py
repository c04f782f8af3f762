"""The ingest step for dataset files (GOLDSKY_SOURCE=dataset, and the sample's generated files).

Returns an honest StepResult for the night's assembly to grade: rows read and new, every file
that needs a look named in `warnings` (rejected, re-sent with other content, not a dataset
file), counts in `details`, and `partial` with the rejected files named in `error` when any
file was rejected (the other files are loaded all the same); no dataset file at all is
missing input. How that becomes the run's status is the assembly's decision.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from ingest import goldsky_files
from ingest.tables import ensure_tables
from pipeline import names, warehouse
from pipeline.logs import counted
from pipeline.steps import PARTIAL, MissingInput, RunContext, StepResult


def step_ingest_dataset(
    ctx: RunContext, directory: Path, details: dict[str, Any] | None = None
) -> StepResult:
    """Load the new dataset files under `directory`; `details` carries what the caller
    knows already (source, sample). MissingInput when the folder holds no dataset file."""
    details = dict(details or {})
    if not goldsky_files.discover(directory):
        others = goldsky_files.unknown_files(directory)
        also = f" ({len(others)} other files, e.g. {others[0].name})" if others else ""
        raise MissingInput(f"no dataset files under {directory}{also}")
    # The plausible window ends shortly after the later of the wall clock and the run's own
    # clock (simulated nights run on theirs).
    now = max(dt.datetime.now(dt.UTC), ctx.started_at.astimezone(dt.UTC))
    with warehouse.connect(ctx.settings) as ch:
        ensure_tables(ch)
        report = goldsky_files.load_directory(ch, directory, now=now)
        total = warehouse.count_rows(ch, names.ORDER_FILLED)
    counts = report.counts()
    details.update(
        files_loaded=counts["loaded"],
        files_skipped=counts["skipped"],
        files_rejected=[f.error for f in report.rejected],
        files_unknown=[str(p.relative_to(directory)) for p in report.unknown],
        rows_resent=report.rows_resent,
        rows_conflicting=report.rows_conflicting,
        raw_rows=total,
    )
    message = (
        f"{counted(counts['loaded'], 'file')} loaded, {counts['skipped']} already loaded, "
        f"{counts['rejected']} rejected"
        + (f", {counts['unknown']} not dataset files" if counts["unknown"] else "")
        + (f"; {report.rows_conflicting} re-sent ids with other content" if report.rows_conflicting else "")
    )
    result = StepResult(
        rows_in=report.rows_in,
        rows_out=report.rows_new,
        details=details,
        warnings=report.warnings,
        message=message,
    )
    if report.rejected:
        result.status = PARTIAL
        result.error = "; ".join(f.error for f in report.rejected if f.error)
    return result
