"""The watchlist stream (critical bug 3): Server-Sent Events over real HTTP, fed by the
database trigger's NOTIFY, resumable with Last-Event-ID."""

from __future__ import annotations

import json
import time

import httpx
import psycopg
import pytest

from pipeline.config import ApiSettings
from tests.support.api_helpers import iter_sse, next_event, running_api
from tests.support.watchlist_world import EXPECTED, context, market_id
from watchlist.publish import publish


@pytest.fixture(scope="module")
def base(watchlist_world):
    with psycopg.connect(watchlist_world.pg_url, autocommit=True) as conn:
        # inactive: the publish never adds to it, so only these tests write its watchlist
        conn.execute(
            "INSERT INTO strategies (id, name, active) VALUES ('stream-test', 'Stream', false), "
            "('stream-other', 'Other', false) ON CONFLICT (id) DO NOTHING"
        )
    with running_api(watchlist_world.settings, ApiSettings(stream_heartbeat_s=0.3)) as url:
        yield url


def _insert(url: str, strategy: str, market: str) -> float:
    """Insert as another writer would (plain SQL); returns the time of the commit."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO strategy_watchlists (strategy_id, market_id, reason, metadata) "
            "VALUES (%s, %s, 'manual', '{\"note\": \"by hand\"}')",
            (strategy, market),
        )
    return time.monotonic()


def test_snapshot_then_each_change_within_a_second_then_resume(base, watchlist_world):
    url = watchlist_world.pg_url
    _insert(url, "stream-test", "900001")
    with httpx.Client(timeout=10) as client:
        with client.stream("GET", f"{base}/api/strategies/stream-test/watchlist/stream") as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            events = iter_sse(response)
            first = next(events)
            assert first == {"retry": "3000"}
            snap = next_event(events)
            assert snap["event"] == "snapshot"
            body = json.loads(snap["data"])
            assert body["strategy_id"] == "stream-test" and body["total"] == 1
            assert [e["market_id"] for e in body["entries"]] == ["900001"]
            assert int(snap["id"]) == body["event_id"]

            _insert(url, "stream-other", "900100")  # another strategy's change is not sent
            committed = _insert(url, "stream-test", "900002")
            event = next_event(events, kinds=("insert",))
            latency = time.monotonic() - committed
            assert latency < 1.0, f"the insert reached the stream after {latency:.2f} s"
            data = json.loads(event["data"])
            assert data["op"] == "insert" and data["entry"]["market_id"] == "900002"
            assert data["entry"]["metadata"] == {"note": "by hand"} and data["entry"]["alerts"] is False
            assert int(event["id"]) == data["event_id"] > int(snap["id"])
            last_seen = event["id"]

            # a heartbeat while nothing happens (a comment line, ignored by EventSource)
            deadline = time.monotonic() + 3
            for item in events:
                if "comment" in item:
                    assert item["comment"].startswith("heartbeat")
                    break
                assert time.monotonic() < deadline, "no heartbeat"

    # changes while disconnected: another insert, an update, a delete; and another strategy's
    _insert(url, "stream-test", "900003")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "UPDATE strategy_watchlists SET status = 'dismissed' "
            "WHERE strategy_id = 'stream-test' AND market_id = '900001'"
        )
        conn.execute(
            "DELETE FROM strategy_watchlists WHERE strategy_id = 'stream-test' AND market_id = '900002'"
        )
        conn.execute("UPDATE strategy_watchlists SET status = status WHERE strategy_id = 'all'")  # no-op

    with (
        httpx.Client(timeout=10) as client,
        client.stream(
            "GET", f"{base}/api/strategies/stream-test/watchlist/stream", headers={"Last-Event-ID": last_seen}
        ) as response,
    ):
        events = iter_sse(response)
        missed = [next_event(events) for _ in range(3)]
    assert [e["event"] for e in missed] == ["insert", "update", "delete"]  # no snapshot on resume
    payloads = [json.loads(e["data"]) for e in missed]
    assert [p["entry"]["market_id"] for p in payloads] == ["900003", "900001", "900002"]
    assert payloads[1]["entry"]["status"] == "dismissed"
    ids = [int(e["id"]) for e in missed]
    assert ids == sorted(ids) and ids[0] > int(last_seen)


def test_the_stream_sees_the_pipeline_add_an_entry(base, watchlist_world):
    url, settings = watchlist_world.pg_url, watchlist_world.settings
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO strategies (id, name, category_filter) "
            "VALUES ('late', 'Late', ARRAY['Sports']) ON CONFLICT (id) DO NOTHING"
        )
        conn.execute("DELETE FROM watchlist_publish_runs")  # look at the same positions again
    try:
        with httpx.Client(timeout=10) as client:
            with client.stream("GET", f"{base}/api/strategies/late/watchlist/stream") as response:
                events = iter_sse(response)
                assert json.loads(next_event(events, kinds=("snapshot",))["data"])["entries"] == []
                result = publish(context(settings, "stream-run"), watchlist_world.config, build_models=False)
                committed = time.monotonic()
                assert result.details["added"]["late"] == 1
                event = next_event(events, kinds=("insert",))
                assert time.monotonic() - committed < 1.0
        data = json.loads(event["data"])
        assert data["entry"]["market_id"] == market_id(12) and data["entry"]["reason"] == "signal_wallet"
        assert data["entry"]["triggering_wallet"] and data["entry"]["category"] == "Sports"
        assert market_id(12) in {market_id(n) for n in EXPECTED}
    finally:
        with psycopg.connect(url, autocommit=True) as conn:  # leave the other tests' world as it was
            conn.execute("UPDATE strategies SET active = false WHERE id = 'late'")


@pytest.mark.parametrize(
    "value",
    [
        b"yesterday",
        b"\xb2",  # latin-1 superscript two: str.isdigit() says yes, int() says no
        "\u0663".encode(),  # an Arabic-Indic digit three, in UTF-8
        b"-1",
        b"1e3",
        b"12 13",
        b"99999999999999999999",  # beyond a bigint event id
    ],
)
def test_malformed_last_event_id_is_422_with_a_clear_message(base, value):
    response = _status_of(
        f"{base}/api/strategies/stream-test/watchlist/stream", headers={"Last-Event-ID": value}
    )
    assert response.status_code == 422, response.text
    assert "Last-Event-ID" in response.json()["detail"]


@pytest.mark.parametrize("value", ["99999999999999999999", "-1", "x"])
def test_malformed_last_event_id_parameter_is_422(base, value):
    response = _status_of(
        f"{base}/api/strategies/stream-test/watchlist/stream", params={"last_event_id": value}
    )
    assert response.status_code == 422, response.text


def _status_of(url: str, **kwargs) -> httpx.Response:
    """The answer to a stream request, its body read only when it is not the (endless) stream."""
    with httpx.Client(timeout=10) as client, client.stream("GET", url, **kwargs) as response:
        if response.status_code != 200:
            response.read()
        return response


def test_an_insert_read_after_its_row_was_deleted_carries_the_row_as_written(base, watchlist_world):
    """docs/api.md: the enriched view has no row left to show, so the event carries the
    row the change wrote, without the enriched fields, like a delete."""
    url = watchlist_world.pg_url
    with psycopg.connect(url, autocommit=True) as conn:
        before = conn.execute("SELECT max(id) FROM watchlist_events").fetchone()[0]
    _insert(url, "stream-test", "900200")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "DELETE FROM strategy_watchlists WHERE strategy_id = 'stream-test' AND market_id = '900200'"
        )
    with (
        httpx.Client(timeout=10) as client,
        client.stream(
            "GET",
            f"{base}/api/strategies/stream-test/watchlist/stream",
            headers={"Last-Event-ID": str(before)},
        ) as response,
    ):
        events = iter_sse(response)
        inserted, deleted = (json.loads(next_event(events)["data"]) for _ in range(2))
    assert (inserted["op"], deleted["op"]) == ("insert", "delete")
    for entry in (inserted["entry"], deleted["entry"]):
        assert entry["market_id"] == "900200" and entry["metadata"] == {"note": "by hand"}
        assert "alerts" not in entry and "category" not in entry


def test_an_id_that_cannot_be_replayed_gets_a_fresh_snapshot(base):
    with (
        httpx.Client(timeout=10) as client,
        client.stream(
            "GET",
            f"{base}/api/strategies/stream-test/watchlist/stream",
            headers={"Last-Event-ID": "999999999"},
        ) as response,
    ):
        event = next_event(iter_sse(response))
    assert event["event"] == "snapshot"  # beyond the newest event: from another database
