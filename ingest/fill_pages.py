"""Paging through the orderbook subgraph's `orderFilledEvents` without losing an event.

`first` is capped at 1000 and `skip` at 5000, so pages follow a cursor on `timestamp`. A page
ordered by timestamp says nothing about the order of events that share a second, so from a
full page only the seconds *before* its last second are taken as complete; the next page
starts at that last second again. When one second alone fills a page (thousands of fills in
one block), that second is read in `id` order with `{timestamp: T, id_gt: <last id>}` until it
is exhausted. The last id is the one the *server* put last, never a Python comparison, so the
server's collation decides the order consistently. (Always switching to `id_gt` after every
page would double the requests: one extra per page for the tail second.)

Python checks what pagination relies on (a list of objects, ids, unix-second timestamps) and
the value types; the contract's rules (addresses, amounts, the asset pair, missing fields) are
the SQL of ingest/fill_contract.py, run on the staged batch by ingest/subgraph_writer.py.
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ingest.goldsky_client import MalformedPage, SubgraphClient

UTC = dt.UTC

FILLS_QUERY = """
query Fills($first: Int!, $orderBy: OrderFilledEvent_orderBy!, $where: OrderFilledEvent_filter!) {
  orderFilledEvents(first: $first, orderBy: $orderBy, orderDirection: asc, where: $where) {
    id
    transactionHash
    timestamp
    orderHash
    maker
    taker
    makerAssetId
    takerAssetId
    makerAmountFilled
    takerAmountFilled
    fee
  }
}
""".strip()


# Subgraph field -> staging column (ingest/fill_contract.py STAGE_COLUMNS).
FIELD_COLUMNS = {
    "id": "id",
    "timestamp": "timestamp",
    "transactionHash": "transaction_hash",
    "orderHash": "order_hash",
    "maker": "maker",
    "taker": "taker",
    "makerAssetId": "maker_asset_id",
    "takerAssetId": "taker_asset_id",
    "makerAmountFilled": "maker_amount_filled",
    "takerAmountFilled": "taker_amount_filled",
    "fee": "fee",
}


@dataclass(frozen=True)
class Cursor:
    """Every event before `ts` (unix seconds) is stored, and those at `ts` whose id comes
    at or before `after_id` in the server's id order ('' = none of them)."""

    ts: int
    after_id: str = ""

    @property
    def time(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.ts, UTC)

    def __str__(self) -> str:
        return self.time.isoformat() + (f" after {self.after_id[:20]}…" if self.after_id else "")


@dataclass
class Page:
    columns: list[list[Any]]  # one list per FIELDS entry: the page's events column by column
    cursor: Cursor  # where the cursor stands once these events are stored
    number: int
    requested: Cursor  # the cursor the page was asked for (for error messages)

    def __len__(self) -> int:
        return len(self.columns[0]) if self.columns else 0


FIELDS = tuple(FIELD_COLUMNS)
_STRINGS = {str}


def _columns(data: dict[str, Any], page_no: int, asked: Cursor) -> tuple[list[list[Any]], list[int]]:
    """The page's events column by column (FIELDS order) and their timestamps as integers.
    Python checks what pagination relies on (a list of objects, ids, unix-second timestamps)
    and the value types, a column at a time (C-speed loops); the contract's rules
    (addresses, amounts, the asset pair, missing fields) are the file loader's SQL, run on
    the staged batch."""
    events = data.get("orderFilledEvents")
    where = f"page {page_no} (cursor {asked})"
    if not isinstance(events, list) or not set(map(type, events)) <= {dict}:
        raise MalformedPage(f"{where}: `orderFilledEvents` is not a list of objects")
    columns = [[e.get(f) for e in events] for f in FIELDS]
    for name, column in zip(FIELDS, columns):
        if not set(map(type, column)) <= _STRINGS:  # rare: numbers, nulls or worse
            column[:] = [_field(v, name, i, events[i], where) for i, v in enumerate(column)]
    ids, stamps = columns[0], columns[1]
    if not all(ids) or not all(stamps) or not all(map(str.isdigit, stamps)):
        i = next(i for i, (a, t) in enumerate(zip(ids, stamps)) if not (a and t and t.isdigit()))
        raise MalformedPage(
            f"{where}: event {i} (id {ids[i]!r:.70}): id must be set and "
            f"timestamp unix seconds, got {stamps[i]!r:.30}"
        )
    return columns, list(map(int, stamps))


def _field(value: Any, name: str, i: int, event: dict, where: str) -> str | None:
    if value is None or type(value) is str:
        return value  # a missing field is reported by the SQL rules with the event's id
    if type(value) is int:
        return str(value)  # a BigInt sent as a JSON number
    raise MalformedPage(
        f"{where}: event {i} (id {event.get('id')!r:.70}): field {name} is not a string: {value!r:.40}"
    )


def iter_fill_pages(
    client: SubgraphClient, start: Cursor, until_ts: int | None = None, page_size: int = 1000
) -> Iterator[Page]:
    """Pages of events after `start` (and before `until_ts`), each with the cursor that holds
    once it is stored. Ends when the subgraph has nothing more in the range."""
    cursor, number = start, 0
    within = bool(start.after_id)  # reading one second in id order
    while until_ts is None or cursor.ts < until_ts:
        number += 1
        if within:
            where: dict[str, Any] = {"timestamp": str(cursor.ts)}
            if cursor.after_id:
                where["id_gt"] = cursor.after_id
            order_by = "id"
        else:
            where = {"timestamp_gte": str(cursor.ts)}
            if until_ts is not None:
                where["timestamp_lt"] = str(until_ts)
            order_by = "timestamp"
        data = client.query(FILLS_QUERY, {"first": page_size, "orderBy": order_by, "where": where})
        columns, stamps = _columns(data, number, cursor)
        label = f"page {number} (cursor {cursor})"
        if within:
            if stamps and (min(stamps) != cursor.ts or max(stamps) != cursor.ts):
                raise MalformedPage(f"{label}: asked for timestamp {cursor.ts}, got others")
            if len(stamps) >= page_size:
                nxt = Cursor(cursor.ts, columns[0][-1])
            else:  # this second is exhausted
                nxt, within = Cursor(cursor.ts + 1), False
            yield Page(columns, nxt, number, cursor)
            cursor = nxt
            continue
        if not stamps:
            return
        if stamps != sorted(stamps):
            raise MalformedPage(f"{label}: events are not in timestamp order")
        if stamps[0] < cursor.ts or (until_ts is not None and stamps[-1] >= until_ts):
            raise MalformedPage(
                f"{label}: timestamps {stamps[0]}..{stamps[-1]} are outside the requested range"
            )
        if len(stamps) < page_size:  # everything in range up to now
            nxt = Cursor(stamps[-1] + 1)
            yield Page(columns, nxt, number, cursor)
            return
        last = stamps[-1]
        if stamps[0] == last:  # one second fills the page: read it by id, from the start
            within = True
            nxt = Cursor(last)
            if nxt != cursor:
                yield Page([], nxt, number, cursor)
            cursor = nxt
            continue
        # The last second may go on in the next page: keep only the complete seconds, a
        # prefix since the page is in timestamp order.
        keep = bisect.bisect_left(stamps, last)
        nxt = Cursor(last)
        yield Page([c[:keep] for c in columns], nxt, number, cursor)
        cursor = nxt
