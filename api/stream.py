"""The watchlist stream: Postgres LISTEN fanned out to Server-Sent Events clients.

One dedicated async connection per API process LISTENs on `watchlist_changes` (the channel
the strategy_watchlists trigger notifies, whoever writes) and wakes the clients of the
strategy a notification names. A woken client reads `watchlist_events` after the last id it
sent, so the notification is only a doorbell: nothing is lost if one is missed (a client
also re-reads at every heartbeat, and all clients re-read after the listener reconnects),
and events reach each client once, in id order.

Wire format (docs/api.md): a `retry:` line, then unless resuming an `event: snapshot`
whose `id:` is the newest event id, then one `event: insert|update|delete` per change with
`id:` its event id, and `: heartbeat` comment lines while nothing happens.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import psycopg
from psycopg_pool import PoolTimeout

from pipeline.redact import redact_obj

log = logging.getLogger(__name__)

CHANNEL = "watchlist_changes"
EVENT_BATCH = 500
RETRY_MS = 3000


class ChangeHub:
    """The process's LISTEN connection and the clients waiting on it."""

    def __init__(self, url: str, reconnect_wait_s: float = 1.0):
        self._url = url
        self._reconnect_wait_s = reconnect_wait_s
        self._subscribers: dict[str, set[asyncio.Event]] = {}
        self._task: asyncio.Task | None = None
        self.listening = asyncio.Event()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="watchlist-listener")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None

    def subscribe(self, strategy_id: str) -> asyncio.Event:
        event = asyncio.Event()
        self._subscribers.setdefault(strategy_id, set()).add(event)
        return event

    def unsubscribe(self, strategy_id: str, event: asyncio.Event) -> None:
        subs = self._subscribers.get(strategy_id)
        if subs is not None:
            subs.discard(event)
            if not subs:
                self._subscribers.pop(strategy_id, None)

    @property
    def clients(self) -> int:
        return sum(len(s) for s in self._subscribers.values())

    def _wake(self, strategy_id: str | None) -> None:
        groups = (
            self._subscribers.values() if strategy_id is None else [self._subscribers.get(strategy_id, ())]
        )
        for subs in groups:
            for event in subs:
                event.set()

    async def _run(self) -> None:
        wait = self._reconnect_wait_s
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(
                    self._url, autocommit=True, connect_timeout=5, application_name="cascadian-api-listen"
                )
                try:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self.listening.set()
                    wait = self._reconnect_wait_s
                    self._wake(None)  # changes made while not listening: everyone re-reads
                    async for note in conn.notifies():
                        try:
                            strategy_id = json.loads(note.payload).get("strategy_id")
                        except (ValueError, AttributeError):
                            strategy_id = None
                        self._wake(strategy_id)
                finally:
                    self.listening.clear()
                    await conn.close()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Postgres went away: retry with backoff
                log.warning(
                    "watchlist listener disconnected; retrying",
                    extra={"ctx": {"error": str(exc).strip()[:300], "retry_s": wait}},
                )
            await asyncio.sleep(wait)
            wait = min(wait * 2, 30.0)


def sse(event: str | None, data: Any, event_id: int | None = None) -> str:
    lines = []
    if event_id is not None:
        lines.append(f"id: {event_id}")
    if event:
        lines.append(f"event: {event}")
    text = json.dumps(redact_obj(data), default=_json_default, separators=(",", ":"))
    lines += [f"data: {line}" for line in text.splitlines() or [""]]
    return "\n".join(lines) + "\n\n"


def _json_default(value: Any) -> Any:
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    return str(value)


ENTRY_SQL = "SELECT to_jsonb(w) FROM watchlist_enriched AS w"


def entry_json(row: dict[str, Any]) -> dict[str, Any]:
    """One watchlist entry as the API serves it (REST pages, the snapshot and events)."""
    keys = (
        "id",
        "strategy_id",
        "market_id",
        "condition_id",
        "question",
        "category",
        "added_at",
        "updated_at",
        "reason",
        "status",
        "market_resolved",
        "alerts",
        "triggering_wallet",
        "wallet_rank",
        "wallet_coverage",
        "metadata",
    )
    return {k: row.get(k) for k in keys if k in row}


async def snapshot(pool, strategy_id: str, limit: int) -> tuple[int, dict[str, Any]]:
    """The newest `limit` entries and the newest event id, read in one consistent snapshot."""
    async with pool.connection() as conn, conn.transaction():
        await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        cur = await conn.execute("SELECT coalesce(max(id), 0) FROM watchlist_events")
        last_id = int((await cur.fetchone())[0])
        cur = await conn.execute(
            ENTRY_SQL + " WHERE w.strategy_id = %s ORDER BY w.added_at DESC, w.id DESC LIMIT %s",
            (strategy_id, limit),
        )
        entries = [entry_json(r[0]) for r in await cur.fetchall()]
        cur = await conn.execute(
            "SELECT count(*) FROM strategy_watchlists WHERE strategy_id = %s", (strategy_id,)
        )
        total = int((await cur.fetchone())[0])
    return last_id, {"strategy_id": strategy_id, "event_id": last_id, "total": total, "entries": entries}


async def events_after(pool, strategy_id: str, after_id: int) -> list[tuple[int, str, dict[str, Any]]]:
    async with pool.connection() as conn:
        cur = await conn.execute(
            """
            SELECT e.id, e.op, e.occurred_at, e.entry, to_jsonb(w) AS current
            FROM watchlist_events AS e
            LEFT JOIN watchlist_enriched AS w
                   ON e.op <> 'delete' AND w.id = e.watchlist_id AND w.strategy_id = e.strategy_id
            WHERE e.strategy_id = %s AND e.id > %s
            ORDER BY e.id
            LIMIT %s
            """,
            (strategy_id, after_id, EVENT_BATCH),
        )
        rows = await cur.fetchall()
    out = []
    for event_id, op, occurred_at, raw, current in rows:
        out.append(
            (
                int(event_id),
                op,
                {
                    "event_id": int(event_id),
                    "op": op,
                    "strategy_id": strategy_id,
                    "occurred_at": occurred_at.isoformat(),
                    # the entry as it is now (enriched); for a delete, the row as it was
                    "entry": entry_json(current if current is not None else raw),
                },
            )
        )
    return out


async def can_resume(pool, last_event_id: int) -> bool:
    """Whether every event after `last_event_id` is still in watchlist_events: not when older
    events were pruned past it, nor when it is beyond the newest (another database's id)."""
    async with pool.connection() as conn:
        cur = await conn.execute("SELECT min(id), max(id) FROM watchlist_events")
        low, high = await cur.fetchone()
    if low is None:
        return last_event_id == 0
    return low - 1 <= last_event_id <= high


async def watchlist_stream(
    hub: ChangeHub, pool, strategy_id: str, last_event_id: int | None, snapshot_limit: int, heartbeat_s: float
) -> AsyncIterator[str]:
    wake = hub.subscribe(strategy_id)  # before the snapshot: no change can slip between
    try:
        yield f"retry: {RETRY_MS}\n\n"
        if last_event_id is not None and not await can_resume(pool, last_event_id):
            last_event_id = None  # events after it were pruned, or it is from elsewhere
        if last_event_id is None:
            last_id, body = await snapshot(pool, strategy_id, snapshot_limit)
            yield sse("snapshot", body, last_id)
        else:
            last_id = last_event_id
        while True:
            wake.clear()
            try:
                events = await events_after(pool, strategy_id, last_id)
            except (psycopg.OperationalError, PoolTimeout) as exc:
                # the database went away: end the stream; the client reconnects after
                # `retry` ms with Last-Event-ID and misses nothing
                log.warning(
                    "watchlist stream ended: database unavailable",
                    extra={"ctx": {"strategy_id": strategy_id, "error": str(exc)[:300]}},
                )
                return
            for event_id, op, body in events:
                yield sse(op, body, event_id)
                last_id = event_id
            if len(events) == EVENT_BATCH:
                continue
            try:
                await asyncio.wait_for(wake.wait(), timeout=heartbeat_s)
            except TimeoutError:
                yield f": heartbeat {dt.datetime.now(dt.UTC).isoformat(timespec='seconds')}\n\n"
    finally:
        hub.unsubscribe(strategy_id, wake)
