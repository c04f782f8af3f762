"""Where a resumable source (the Goldsky subgraph) stands: `ops.ingest_cursor`.

The cursor `(timestamp, last id)` is written only after the batch it covers is in
`raw.order_filled`; a run killed between the two re-fetches that batch, and the store of
fills (ingest/fill_store.py) skips what is already stored. One row per advance; the row with
the highest `seq` of a source is its cursor.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from clickhouse_connect.driver.client import Client

from ingest.fill_pages import Cursor

UTC = dt.UTC
SOURCE = "subgraph"


@dataclass
class CursorState:
    cursor: Cursor
    seq: int
    rows_total: int


def read_cursor(ch: Client, source: str) -> CursorState | None:
    rows = ch.query(
        "SELECT seq, toUnixTimestamp(cursor_ts), after_id, rows_total FROM ops.ingest_cursor "
        "WHERE source = {s:String} ORDER BY seq DESC LIMIT 1",
        parameters={"s": source},
    ).result_rows
    if not rows:
        return None
    seq, ts, after_id, total = rows[0]
    return CursorState(Cursor(int(ts), after_id), int(seq), int(total))


def write_cursor(ch: Client, source: str, state: CursorState) -> None:
    ch.insert(
        "ops.ingest_cursor",
        [
            [
                source,
                state.seq,
                state.cursor.time,
                state.cursor.after_id,
                state.rows_total,
                dt.datetime.now(UTC),
            ]
        ],
        column_names=["source", "seq", "cursor_ts", "after_id", "rows_total", "updated_at"],
    )


def source_key(since: dt.datetime | None, until: dt.datetime | None) -> str:
    """The nightly cursor is 'subgraph'; a backfill bounded by --since has its own, so it is
    resumable too and leaves the nightly position alone."""
    if since is None:
        return SOURCE
    return f"{SOURCE}:{since.isoformat()}..{until.isoformat() if until else ''}"
