"""Where the API's warehouse work runs: off the event loop, in a bounded number of threads.

chDB leaves about five threads (and some memory) behind each time the embedded engine is
started and stopped in a process (measured: 30 open/close cycles, +146 threads). The API
opened and closed it for every request in its own process, so its thread count grew without
end (1,200 requests: 82 -> 175 threads and rising). With the embedded engine the work now
runs in one child process (`api.engine_keeper`, which also keeps the engine open across a
burst of requests), replaced once it has started the engine API_ENGINE_WORKER_OPENS times:
what chDB left behind leaves with it, and the server's own thread count stays flat. One
child, not several: two processes cannot open the engine at once, so requests take turns.
With a ClickHouse server (CLICKHOUSE_URL) nothing leaks: API_WAREHOUSE_THREADS threads of this
process run the queries.

Either way at most API_WAREHOUSE_QUEUE requests wait or run at once; the next is answered 503
with Retry-After at once instead of queueing without bound.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import multiprocessing
from collections.abc import Callable
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

from api import engine_keeper
from api.errors import Unavailable
from pipeline.config import ApiSettings, Settings

log = logging.getLogger(__name__)

T = TypeVar("T")
SATURATED_RETRY_AFTER_S = 2


class WarehouseReader:
    def __init__(self, settings: Settings, api: ApiSettings):
        self._settings, self._api = settings, api
        self._executor: concurrent.futures.Executor | None = None
        self._turn = asyncio.Lock()  # the child runs one request at a time
        self._in_progress = 0
        self.children_started = 0

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(*args)` in the reader (a module-level function: it may cross to the child)."""
        if self._in_progress >= self._api.warehouse_queue:
            raise Unavailable(
                f"the warehouse has {self._in_progress} requests in progress (API_WAREHOUSE_QUEUE); "
                "try again shortly",
                SATURATED_RETRY_AFTER_S,
            )
        self._in_progress += 1
        try:
            if not self._settings.embedded:
                if self._executor is None:
                    self._executor = concurrent.futures.ThreadPoolExecutor(
                        max_workers=self._api.warehouse_threads, thread_name_prefix="warehouse"
                    )
                return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)
            async with self._turn:
                return await self._in_child(fn, args)
        finally:
            self._in_progress -= 1

    async def _in_child(self, fn: Callable[..., T], args: tuple) -> T:
        loop = asyncio.get_running_loop()
        if self._executor is None:
            self._executor = concurrent.futures.ProcessPoolExecutor(
                max_workers=1,
                mp_context=multiprocessing.get_context("spawn"),  # never fork a threaded server
            )
            self.children_started += 1
        executor = self._executor
        try:
            result, opens = await loop.run_in_executor(executor, engine_keeper.call, self._settings, fn, args)
        except BrokenProcessPool:
            # the child died (killed, crashed in the engine): the next request starts a new one
            log.warning("the warehouse reader process died; a new one starts with the next request")
            self._executor = None
            executor.shutdown(wait=False, cancel_futures=True)
            raise Unavailable("the warehouse reader process died; try again", 1) from None
        if opens >= self._api.engine_worker_opens:
            await self._replace_child(executor)
        return result

    async def _replace_child(self, executor: concurrent.futures.Executor) -> None:
        """Let the child close the engine and exit; the next request starts a fresh one."""
        self._executor = None
        with contextlib.suppress(Exception):
            await asyncio.get_running_loop().run_in_executor(executor, engine_keeper.close)
        await asyncio.to_thread(executor.shutdown, True)

    def child_pids(self) -> list[int]:
        """The child process's id (embedded engine), for tests and diagnostics."""
        return list(getattr(self._executor, "_processes", None) or {})

    def close(self) -> None:
        if self._executor is not None:
            with contextlib.suppress(Exception):
                self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
