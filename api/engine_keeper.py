"""The warehouse reader's child process (embedded engine only): runs the API's warehouse work
and keeps the engine open across a burst of requests.

One client (the keeper) holds the engine while requests keep coming; each request opens its
own client beside it, which costs about 10 ms and nothing else, instead of starting the
engine (about 200 ms, and five threads chDB never gives back). The keeper lets go:
- after IDLE_CLOSE_S without a request, so an idle API never holds the engine;
- after HOLD_MAX_S of continuous use, then waits GAP_S before opening it again, so a
  nightly run waiting for the engine (it retries every 0.5 s, pipeline.warehouse.hold) gets
  it even while requests keep arriving; from then on the API answers 503 busy until the run
  ends.
Every function here runs in the child; `call` returns how many times the engine was opened,
so the parent replaces the child before chDB's leftovers grow (api/reader.py).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from pipeline import warehouse
from pipeline.config import Settings

IDLE_CLOSE_S = 1.0
HOLD_MAX_S = 2.0
GAP_S = 1.0  # longer than the run's 0.5 s retry plus its own open


class _Keeper:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.client = None
        self.opened_at = self.last_used = 0.0
        self.released_at: float | None = None  # when HOLD_MAX_S made it let go
        self.opens = 0
        self.watcher: threading.Thread | None = None

    def ensure_open(self, settings: Settings) -> None:
        now = time.monotonic()
        if self.client is not None and now - self.opened_at >= HOLD_MAX_S:
            self.release()
            self.released_at = now
        if self.client is not None:
            return
        if self.released_at is not None:
            time.sleep(max(0.0, self.released_at + GAP_S - time.monotonic()))
            self.released_at = None
        try:
            self.client = warehouse.open_client(settings)
        except (warehouse.WarehouseBusy, warehouse.WarehouseUnavailable):
            return  # the request's own open says so, with its own message
        self.opens += 1
        self.opened_at = time.monotonic()
        if self.watcher is None:
            self.watcher = threading.Thread(target=self._close_when_idle, name="engine-idle", daemon=True)
            self.watcher.start()

    def release(self) -> None:
        if self.client is not None:
            try:
                self.client.close()
            finally:
                self.client = None

    def _close_when_idle(self) -> None:
        while True:
            time.sleep(IDLE_CLOSE_S / 4)
            with self.lock:
                if self.client is not None and time.monotonic() - self.last_used >= IDLE_CLOSE_S:
                    self.release()


_keeper = _Keeper()


def call(settings: Settings, fn: Callable[..., Any], args: tuple) -> tuple[Any, int]:
    """`fn(*args)` with the engine kept open; returns its result and the engine opens so far."""
    with _keeper.lock:
        _keeper.ensure_open(settings)
        try:
            return fn(*args), _keeper.opens
        finally:
            _keeper.last_used = time.monotonic()


def close() -> None:
    """Let go of the engine (before the child is replaced)."""
    with _keeper.lock:
        _keeper.release()
