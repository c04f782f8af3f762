"""Helpers for the API tests: uvicorn in a thread on a free port, and an SSE reader."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import uvicorn

from api.app import create_app
from pipeline.config import ApiSettings, Settings


@contextlib.contextmanager
def running_api(settings: Settings, api: ApiSettings) -> Iterator[str]:
    """The API served on 127.0.0.1 (a free port) until the block ends; yields its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        create_app(settings, api), log_level="warning", lifespan="on", timeout_graceful_shutdown=1
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
