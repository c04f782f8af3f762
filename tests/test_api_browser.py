"""A real browser consumes the stream (issue 16): headless Chromium (Debian's package) loads a
page from one origin that opens an EventSource on the API at another origin, with and without
API_TOKEN, and receives a row that psql inserts into the watchlist table.

How: the page is served by a small HTTP server of the test (its own port, so its own
origin); its script reports what the browser sees (the snapshot, each event, errors) by
POSTing to that same page server, where the test reads it. Chromium is started headless on
the page's URL with a fresh profile and killed at the end; nothing is downloaded."""

from __future__ import annotations

import contextlib
import http.server
import json
import queue
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from pipeline.config import ApiSettings
from tests.support.api_helpers import free_port, running_api

CHROMIUM = next(
    (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None
)
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        CHROMIUM is None,
        reason="Chromium is not installed (Debian: apt-get install -y chromium); the browser test needs it",
    ),
]

STRATEGY = "browser-test"
TOKEN = "browser-api-t0ken"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]

PAGE = """<!doctype html><meta charset="utf-8"><title>watchlist</title>
<script>
const API = %(api)s, TOKEN = %(token)s, STRATEGY = %(strategy)s;
const report = (kind, data) =>
  fetch("/report", {method: "POST", body: JSON.stringify({kind, data, origin: location.origin})});
async function main() {
  let url = `${API}/api/strategies/${STRATEGY}/watchlist/stream`;
  if (TOKEN) {  // an EventSource cannot send Authorization: ask for a stream token first
    const answer = await fetch(`${API}/api/stream-tokens`, {
      method: "POST",
      headers: {"Authorization": `Bearer ${TOKEN}`, "Content-Type": "application/json"},
      body: JSON.stringify({strategy_id: STRATEGY}),
    });
    const body = await answer.json();
    await report("token", {status: answer.status, expires_at: body.expires_at});
    url = API + body.stream_url;
  }
  const source = new EventSource(url);
  source.addEventListener("snapshot", (e) => report("snapshot", {id: e.lastEventId, ...JSON.parse(e.data)}));
  source.addEventListener("insert", (e) => report("insert", {id: e.lastEventId, ...JSON.parse(e.data)}));
  source.onerror = () => report("error", {readyState: source.readyState});
}
main().catch((e) => report("exception", String(e)));
</script>"""


@contextlib.contextmanager
def page_server(port: int, api_base: str, token: str | None) -> Iterator[tuple[str, queue.Queue]]:
    """Serves the page at / on `port` and collects the page's reports (POST /report)."""
    reports: queue.Queue = queue.Queue()
    page = PAGE % {"api": json.dumps(api_base), "token": json.dumps(token), "strategy": json.dumps(STRATEGY)}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = page.encode() if self.path == "/" else b""
            self.send_response(200 if body else 404)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            reports.put(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", reports
    finally:
        server.shutdown()


@contextlib.contextmanager
def chromium(url: str, profile: Path) -> Iterator[subprocess.Popen]:
    log = (profile.parent / "chromium.log").open("wb")
    proc = subprocess.Popen(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", url], stdout=log, stderr=subprocess.STDOUT
    )
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait(10)
        log.close()


def wait_for(reports: queue.Queue, kind: str, seconds: float = 30.0) -> dict:
    """The next report of `kind`; fails on an error or exception report, or after `seconds`."""
    deadline = time.monotonic() + seconds
    seen = []
    while time.monotonic() < deadline:
        try:
            report = reports.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            break
        seen.append(report)
        if report["kind"] == kind:
            return report
        if report["kind"] in ("error", "exception"):
            raise AssertionError(f"the page reported {report} before any {kind!r} (seen: {seen})")
    raise AssertionError(f"no {kind!r} from the page within {seconds} s (seen: {seen})")


def psql_insert(url: str, market_id: str) -> None:
    """Insert a watchlist row as an operator would, with psql (psycopg where psql is absent)."""
    sql = (
        "INSERT INTO strategy_watchlists (strategy_id, market_id, reason, metadata) "
        f"VALUES ('{STRATEGY}', '{market_id}', 'manual', '{{\"by\": \"psql\"}}')"
    )
    if shutil.which("psql"):
        subprocess.run(["psql", url, "-v", "ON_ERROR_STOP=1", "-qc", sql], check=True, timeout=30)
    else:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(sql)


@pytest.fixture(scope="module")
def strategy(watchlist_world):
    with psycopg.connect(watchlist_world.pg_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO strategies (id, name, active) VALUES (%s, 'Browser', false) ON CONFLICT (id) DO NOTHING",
            (STRATEGY,),
        )
    return STRATEGY


def consume_in_chromium(
    world, tmp_path: Path, api: ApiSettings, page_port: int, token: str | None, market: str
):
    with (
        running_api(world.settings, api) as api_base,
        page_server(page_port, api_base, token) as (page, reports),
    ):
        with chromium(page + "/", tmp_path / "profile"):
            if token:
                assert wait_for(reports, "token")["data"]["status"] == 200
            snapshot = wait_for(reports, "snapshot")
            assert snapshot["origin"] == page != api_base  # the page's origin is not the API's
            assert snapshot["data"]["strategy_id"] == STRATEGY
            psql_insert(world.pg_url, market)
            return wait_for(reports, "insert")


@pytest.mark.parametrize("with_token", [False, True], ids=["open", "api-token"])
def test_a_page_on_another_origin_receives_a_row_inserted_by_psql(
    watchlist_world, strategy, tmp_path, with_token
):
    market = "97000" + ("1" if with_token else "0")
    page_port = free_port()
    api = ApiSettings(
        # any origin for the open API; the page's exact origin, as a deployment lists it, with a token
        cors_origins=(f"http://127.0.0.1:{page_port}",) if with_token else ("*",),
        token=TOKEN if with_token else None,
        stream_heartbeat_s=1,
    )
    event = consume_in_chromium(
        watchlist_world, tmp_path, api, page_port, TOKEN if with_token else None, market
    )
    data = event["data"]
    assert data["op"] == "insert" and data["entry"]["market_id"] == market
    assert data["entry"]["metadata"] == {"by": "psql"} and int(data["id"]) == data["event_id"]


def test_without_cors_the_browser_refuses_the_stream(watchlist_world, strategy, tmp_path):
    """The failure the issue measured, kept as a control: no listed origin, no stream."""
    api_base_settings = ApiSettings()
    with (
        running_api(watchlist_world.settings, api_base_settings) as api_base,
        page_server(free_port(), api_base, None) as (page, reports),
    ):
        with chromium(page + "/", tmp_path / "profile"):
            report = reports.get(timeout=30)
    assert report["kind"] == "error" and report["data"]["readyState"] == 2  # EventSource.CLOSED
