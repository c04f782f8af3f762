"""The API and the embedded engine's one-process lock (issues 15 and 16): while a night holds
the engine the wallet route answers 503 with Retry-After, never 500; and an API under load
never keeps a waiting night from taking the engine."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from pipeline.config import PROJECT_ROOT, ApiSettings
from tests.support.api_helpers import running_api, settings_environment
from tests.support.watchlist_world import WALLETS

WALLET_ROUTE = f"/api/wallets/{WALLETS['A']}/category-pnl"
# These tests count 503s and 500s, not time: a request slowed by a loaded machine (CI beside
# other work) must not turn into the request timeout's 504.
LOADED_MACHINE_TIMEOUT_S = 120.0

# As a nightly run does (pipeline.warehouse.hold): wait for the engine, hold it, report.
NIGHT = """
import json, sys, time
from pipeline import warehouse
from pipeline.config import load_settings
settings = load_settings(json.loads(sys.argv[1]))
started = time.monotonic()
with warehouse.hold(settings, wait_s=float(sys.argv[2])):
    print(f"held after {time.monotonic() - started:.2f} s", flush=True)
    sys.stdin.readline()  # until the test says so
print("released", flush=True)
"""


def start_night(settings, wait_s: float) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", NIGHT, json.dumps(settings_environment(settings)), str(wait_s)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=PROJECT_ROOT,
        env={"TZ": "UTC", "PATH": ""},
    )


async def hammer(base: str, stop: asyncio.Event, answers: list, concurrency: int = 20) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:

        async def worker() -> None:
            while not stop.is_set():
                response = await client.get(WALLET_ROUTE)
                answers.append((time.monotonic(), response.status_code, response.headers.get("retry-after")))

        await asyncio.gather(*(worker() for _ in range(concurrency)))


def test_while_a_night_holds_the_engine_the_wallet_route_is_503_with_retry_after(watchlist_world):
    settings = watchlist_world.settings
    night = start_night(settings, wait_s=30)
    try:
        assert night.stdout.readline().startswith("held")
        with running_api(
            settings,
            ApiSettings(retry_after_s=7, marts_cache_s=0, request_timeout_s=LOADED_MACHINE_TIMEOUT_S),
        ) as base:

            async def scenario() -> list:
                answers: list = []
                stop = asyncio.Event()
                task = asyncio.create_task(hammer(base, stop, answers))
                while len(answers) < 150:
                    await asyncio.sleep(0.05)
                night.stdin.write("\n")  # the night ends while requests keep coming
                night.stdin.flush()
                await asyncio.to_thread(night.stdout.readline)
                released = time.monotonic()
                while not any(t > released + 1 and code == 200 for t, code, _ in answers):
                    await asyncio.sleep(0.05)
                stop.set()
                await task
                return answers

            answers = asyncio.run(asyncio.wait_for(scenario(), 120))
    finally:
        night.kill()
        night.wait()
    codes = {code for _, code, _ in answers}
    assert codes == {200, 503}, codes  # never a 500
    assert all(retry == "7" for _, code, retry in answers if code == 503)


def test_a_night_takes_the_engine_from_an_api_under_load(watchlist_world):
    settings = watchlist_world.settings
    with running_api(
        settings, ApiSettings(retry_after_s=5, marts_cache_s=0, request_timeout_s=LOADED_MACHINE_TIMEOUT_S)
    ) as base:

        async def scenario() -> tuple[str, list]:
            answers: list = []
            stop = asyncio.Event()
            task = asyncio.create_task(hammer(base, stop, answers))
            while len(answers) < 50:  # the API holds the engine for a burst of requests now
                await asyncio.sleep(0.05)
            night = start_night(settings, wait_s=20)
            try:
                held = await asyncio.to_thread(night.stdout.readline)
                busy = []
                if held.startswith("held"):
                    during = len(answers)
                    await asyncio.sleep(1.0)
                    busy = [code for _, code, _ in answers[during:]]
                    night.stdin.write("\n")
                    night.stdin.flush()
                    await asyncio.to_thread(night.stdout.readline)
                else:
                    held += night.stderr.read() if night.stderr else ""
            finally:
                night.kill()
                night.wait()
            stop.set()
            await task
            return held, busy

        held, busy = asyncio.run(asyncio.wait_for(scenario(), 120))
    assert held.startswith("held after"), held  # not "busy ... after waiting 20 s"
    assert busy and set(busy) == {503}, busy


def _spawned_workers() -> set[int]:
    """This process's children started by multiprocessing's spawn (the reader's child)."""
    found = set()
    for task in Path("/proc/self/task").iterdir():
        try:  # a thread (or a child) may end while we look
            for pid in (task / "children").read_text().split():
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
                if b"multiprocessing.spawn" in cmdline and b"resource_tracker" not in cmdline:
                    found.add(int(pid))
        except FileNotFoundError:
            continue
    return found


def _gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/status").read_text().split("State:")[1].split()[0] in ("Z", "X")
    except (FileNotFoundError, IndexError):
        return True


def test_a_reader_process_that_dies_is_a_503_then_replaced(watchlist_world):
    before = _spawned_workers()
    with (
        running_api(watchlist_world.settings, ApiSettings(marts_cache_s=0)) as base,
        httpx.Client(base_url=base, timeout=30) as c,
    ):
        assert c.get(WALLET_ROUTE).status_code == 200
        started = _spawned_workers() - before
        assert len(started) == 1, (before, started)
        (child,) = started
        os.kill(child, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while not _gone(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        first = c.get(WALLET_ROUTE)
        assert first.status_code == 503 and "reader process died" in first.json()["detail"], first.text
        after = c.get(WALLET_ROUTE)  # a new child, the engine again
        assert after.status_code == 200, after.text
