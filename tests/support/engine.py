"""Fixtures around the embedded engine.

chDB admits one data directory per process at a time, so fixtures open clients only inside
`with warehouse.connect(...)` blocks and never keep one across tests.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from pipeline.config import PROJECT_ROOT
from tests.support.settings import SAMPLE_NOW, make_settings

HOLDER = """
import sys, clickhouse_connect
client = clickhouse_connect.get_client(interface="chdb", path=sys.argv[1])
client.command("SELECT 1")
print("holding", flush=True)
sys.stdin.read()  # hold the directory until the test closes our stdin
"""

# Opens the embedded engine, runs a query and closes it, over and over, as `runner.py sql`
# in a shell loop or the API answering requests would, until its stdin closes or `seconds`
# pass; prints "in" the first time it gets in, and at the end how often it got in and how
# often it was turned away.
READER_LOOP = """
import select, sys, time, clickhouse_connect
path, seconds = sys.argv[1], float(sys.argv[2])
ok = busy = 0
end = time.monotonic() + seconds
while time.monotonic() < end and not select.select([sys.stdin], [], [], 0)[0]:
    try:
        client = clickhouse_connect.get_client(interface="chdb", path=path)
        client.command("SELECT 1")
        client.close()
        ok += 1
        if ok == 1:
            print("in", flush=True)
    except Exception:
        busy += 1
    time.sleep(0.02)
print(ok, busy, flush=True)
"""


def start_reader_loop(clickhouse_path, seconds: float) -> subprocess.Popen:
    """A process running READER_LOOP on `clickhouse_path` for at most `seconds`; its first
    line is "in" once it has opened the engine (`wait_until_in`), and `communicate()` stops
    it and returns its "ok busy" counts."""
    return subprocess.Popen(
        [sys.executable, "-c", READER_LOOP, str(clickhouse_path), str(seconds)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={"TZ": "UTC", "PATH": os.environ.get("PATH", "")},
        cwd=PROJECT_ROOT,
    )


def wait_until_in(reader: subprocess.Popen) -> None:
    """Block until the reader has opened the engine once (a loaded machine may take seconds
    to start it), so that a test's next step really races a cycling reader."""
    line = reader.stdout.readline().strip()
    assert line == "in", f"the reader never opened the engine: {line!r}"


@pytest.fixture
def engine_holder(tmp_path):
    """Settings whose embedded engine directory another process holds (as a pipeline run
    would), for as long as the test runs, and that process (busy messages name it)."""
    settings = make_settings(tmp_path)
    settings.clickhouse_path.mkdir(parents=True)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(settings.clickhouse_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={"TZ": "UTC", "PATH": ""},
        cwd=PROJECT_ROOT,
    )
    assert holder.stdout.readline().strip() == "holding"
    yield settings, holder
    holder.stdin.close()
    holder.wait(timeout=30)


@pytest.fixture
def held_directory(engine_holder):
    """Settings whose embedded engine directory another process holds (`engine_holder`)."""
    return engine_holder[0]


@pytest.fixture(scope="session")
def sample_run(tmp_path_factory):
    """The nightly job run once on the sample data (10 days), shared by read-only tests."""
    from nightly.run import run_nightly

    settings = make_settings(tmp_path_factory.mktemp("sample"))
    status, run = run_nightly(settings, now=SAMPLE_NOW)
    return settings, status, run
