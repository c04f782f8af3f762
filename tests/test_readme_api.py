"""The README's "Watchlists and the API" section, followed literally (issue 16): from a fresh
checkout its commands end with a non-empty watchlist, and each of the five sample strategies
has entries after the sample run.

The section's bash block is run as written, with three substitutions that keep the test off
shared resources: the database name (a fresh one, created by the README's own `createdb` and
dropped after), the port (a free one) and the paths (CASCADIAN_HOME, DATA_DIR, REPORTS_DIR in
a temp folder, set in the environment, so the checkout is not touched)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import uuid

import psycopg
import pytest

from pipeline.config import PROJECT_ROOT
from pipeline.steps import SUCCESS
from tests.support.api_helpers import free_port
from tests.support.pg_fixtures import database_url, server_url
from watchlist.migrations import SAMPLE_STRATEGIES

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


def readme_block() -> str:
    text = (PROJECT_ROOT / "README.md").read_text()
    section = text.split("## Watchlists and the API", 1)[1].split("\n## ", 1)[0]
    return re.search(r"```bash\n(.*?)```", section, re.S).group(1)


def test_the_readme_commands_show_a_non_empty_watchlist_for_every_sample_strategy(tmp_path):
    block = readme_block()
    url = re.search(r"export POSTGRES_URL=(\S+)", block).group(1)
    name = url.rsplit("/", 1)[1]
    port = re.search(r"--port (\d+)", block).group(1)
    fresh, new_port = f"readme_{os.getpid()}_{uuid.uuid4().hex[:6]}", str(free_port())
    script = block.replace(name, fresh).replace(port, new_port)
    # the stream never ends by itself: give its curl a few seconds
    script = re.sub(r"curl -sN ", "curl -sN --max-time 5 ", script)
    out = tmp_path / "out"
    out.mkdir()
    env_file = tmp_path / "empty.env"
    env_file.write_text("")
    env = {
        "PATH": os.environ["PATH"],
        "TZ": "UTC",
        "HOME": str(tmp_path),
        "CASCADIAN_ENV_FILE": str(env_file),
        "CASCADIAN_HOME": str(tmp_path / "home"),
        "DATA_DIR": str(tmp_path / "data"),
        "REPORTS_DIR": str(tmp_path / "reports"),
    }
    # every curl's answer in its own file, for the assertions below
    numbered = []
    for i, line in enumerate(script.splitlines()):
        if line.lstrip().startswith("curl "):
            ends = " || [ $? -eq 28 ]" if "--max-time" in line else ""  # 28: the stream's time is up
            line = f"{line.split('  #')[0]} > {out}/curl{i}.txt{ends}"
        numbered.append(line)
    wrapper = "set -e\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n" + "\n".join(
        # wait for the server the README starts in the background
        line
        + f"\nfor _ in $(seq 100); do curl -s -o /dev/null localhost:{new_port}/openapi.json && break; sleep 0.2; done"
        if "runner.py serve" in line
        else line
        for line in numbered
    )
    try:
        result = subprocess.run(
            ["bash", "-c", wrapper], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=600
        )
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        answers = {p.name: p.read_text() for p in sorted(out.iterdir())}
        assert answers, "the README's block has no curl"
        pages = [json.loads(a) for a in answers.values() if a.startswith('{"strategy_id"')]
        assert pages and all(p["entries"] for p in pages), answers  # a non-empty watchlist
        stream = [a for a in answers.values() if "event: snapshot" in a]
        assert stream and '"entries":[{' in stream[0], answers
        with psycopg.connect(database_url(fresh), autocommit=True) as conn:
            sizes = dict(conn.execute("SELECT id, entries FROM strategy_overview").fetchall())
            runs = conn.execute("SELECT mode FROM watchlist_publish_runs").fetchall()
        assert runs == [("signals",)], runs
        assert {s[0] for s in SAMPLE_STRATEGIES} <= set(sizes)
        assert all(sizes[s[0]] > 0 for s in SAMPLE_STRATEGIES), sizes  # every sample strategy
        assert SUCCESS in result.stdout  # the run's own verdict
    finally:
        with psycopg.connect(server_url(), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{fresh}" WITH (FORCE)')
