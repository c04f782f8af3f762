"""Helpers for the API tests: uvicorn in a thread on a free port, `runner.py serve` as its own
process, and an SSE reader."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

from api.app import create_app
from pipeline.config import PROJECT_ROOT, ApiSettings, Settings


@contextlib.contextmanager
def running_api(settings: Settings, api: ApiSettings, app: FastAPI | None = None) -> Iterator[str]:
    """The API (or `app`, one create_app made) served on 127.0.0.1 (a free port) until the
    block ends; yields its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app or create_app(settings, api), log_level="warning", lifespan="on", timeout_graceful_shutdown=1
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the API did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def settings_environment(settings: Settings) -> dict[str, str]:
    """The variables that give another process these settings' paths and databases."""
    env = {
        "CASCADIAN_HOME": str(settings.home),
        "CLICKHOUSE_PATH": str(settings.clickhouse_path),
        "DATA_DIR": str(settings.data_dir),
        "REPORTS_DIR": str(settings.reports_dir),
        "GOLDSKY_DATASET_DIR": str(settings.goldsky_dataset_dir),
        "GOLDSKY_SOURCE": settings.goldsky_source,
    }
    if settings.postgres_url:
        env["POSTGRES_URL"] = settings.postgres_url
    return env


@dataclass
class Served:
    base: str  # http://127.0.0.1:<port>
    pid: int
    output: Path  # what the server printed (stdout and stderr)

    def text(self) -> str:
        return self.output.read_text(errors="replace")


@contextlib.contextmanager
def serve_process(settings: Settings, folder: Path, **variables: str) -> Iterator[Served]:
    """`runner.py serve` in its own process (its own threads, its own logging, as deployed),
    with the settings' paths and `variables`; stopped with SIGTERM when the block ends."""
    folder.mkdir(parents=True, exist_ok=True)
    env_file = folder / "empty.env"
    env_file.write_text("")
    env = {
        "PATH": os.environ.get("PATH", ""),
        "TZ": "UTC",
        "CASCADIAN_ENV_FILE": str(env_file),
        "LOG_LEVEL": "INFO",
        "LOG_FORMAT": "text",
        **settings_environment(settings),
        **variables,
    }
    output = folder / "serve.log"
    for _attempt in range(3):  # a free port may be taken between choosing and binding it
        port = free_port()
        with output.open("wb") as sink:
            proc = subprocess.Popen(
                [sys.executable, "runner.py", "serve", "--host", "127.0.0.1", "--port", str(port)],
                cwd=PROJECT_ROOT,
                env=env,
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        ready = False
        while not ready and proc.poll() is None and time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                ready = httpx.get(f"{base}/openapi.json", timeout=2).status_code == 200
            time.sleep(0.05)
        if ready:
            break
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    else:
        raise RuntimeError(f"runner.py serve did not start: {output.read_text()[-2000:]}")
    try:
        yield Served(base, proc.pid, output)
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def iter_sse(response: httpx.Response) -> Iterator[dict[str, Any]]:
    """Server-Sent Events as dicts: {"comment": ...} or {"id", "event", "data", "retry"}."""
    block: dict[str, Any] = {}
    data: list[str] = []
    for line in response.iter_lines():
        if line == "":
            if data:
                block["data"] = "\n".join(data)
            if block:
                yield block
            block, data = {}, []
            continue
        if line.startswith(":"):
            block.setdefault("comment", line[1:].strip())
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "data":
            data.append(value)
        else:
            block[name] = value


def next_event(
    events: Iterator[dict[str, Any]], deadline_s: float = 5.0, kinds: tuple[str, ...] | None = None
) -> dict[str, Any]:
    """The next event (not a comment / retry line) of one of `kinds`, within `deadline_s`."""
    end = time.monotonic() + deadline_s
    for event in events:
        if "event" in event and (kinds is None or event["event"] in kinds):
            return event
        if time.monotonic() > end:
            break
    raise AssertionError(f"no {kinds or 'event'} within {deadline_s} s")
