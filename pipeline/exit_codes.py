"""What every command's exit status means, in one place (README, Exit codes; docs/runbook.md).

Cron, systemd and monitors key on these numbers, so every command maps its outcome here:
0 all good, 1 worth a look (a partial run, a health warning, a file with warnings),
2 failed (a failed run, a critical check, an invalid file, a configuration error),
3 busy (another run or process holds what this one needs; try again later).
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    WARNING = 1
    FAILED = 2
    BUSY = 3


# A run's status (pipeline.steps) -> its exit code.
RUN_STATUS = {
    "success": ExitCode.OK,
    "partial": ExitCode.WARNING,
    "interrupted": ExitCode.WARNING,
    "failed": ExitCode.FAILED,
    "busy": ExitCode.BUSY,
}

# A healthcheck's overall status -> its exit code. Parts that are not configured are neither.
HEALTH_STATUS = {
    "healthy": ExitCode.OK,
    "not_configured": ExitCode.OK,
    "warning": ExitCode.WARNING,
    "critical": ExitCode.FAILED,
}

# A reference file's validation status -> its exit code.
VALIDATION_STATUS = {"valid": ExitCode.OK, "warnings": ExitCode.WARNING, "invalid": ExitCode.FAILED}
