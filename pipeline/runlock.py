"""One run at a time.

The lock is an exclusive `flock` on `CASCADIAN_HOME/run.lock`, which the kernel releases
when the holding process dies, however it dies: a lock left by a killed run is therefore
taken over by the next one without any manual clean-up. The file also carries the holder's
run id, pid and start time, so a refused run can say who holds it, and the run that takes
over can tell that the previous one died without finishing (a clean exit empties the file).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.config import Settings


class RunLockHeld(RuntimeError):
    """Another run holds the lock."""


@dataclass
class LockGrant:
    path: Path
    previous: dict[str, Any] | None  # the holder that died without releasing, if any


def process_alive(pid: object) -> bool:
    """Whether a process with this pid exists (one owned by another user counts)."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def lock_path(settings: Settings) -> Path:
    return settings.home / "run.lock"


def _read(fh) -> dict[str, Any] | None:
    fh.seek(0)
    text = fh.read().strip()
    if not text:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return {"raw": text}


@contextlib.contextmanager
def run_lock(
    settings: Settings, run_id: str, started_at: str, trigger: str = "manual"
) -> Iterator[LockGrant]:
    path = lock_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    fh = open(path, "a+", encoding="utf-8")  # noqa: SIM115 - held across the yield below
    try:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read(fh) or {}
            raise RunLockHeld(
                f"another run holds {path}: run {holder.get('run_id', '?')} "
                f"(pid {holder.get('pid', '?')}, started {holder.get('started_at', '?')})"
            ) from None
        previous = _read(fh)
        fh.seek(0)
        fh.truncate()
        fh.write(
            json.dumps({"run_id": run_id, "pid": os.getpid(), "started_at": started_at, "trigger": trigger})
        )
        fh.flush()
        try:
            yield LockGrant(path, previous)
        finally:
            fh.seek(0)
            fh.truncate()
            fh.flush()
            fcntl.flock(fh, fcntl.LOCK_UN)
    finally:
        fh.close()
