"""A local stand-in for Goldsky's subgraph GraphQL endpoints, with switchable faults.

A real HTTP server (stdlib `ThreadingHTTPServer` on 127.0.0.1) that answers the queries
`ingest/subgraph.py` and `ingest/refresh.py` send: `orderFilledEvents`, `marketDatas`,
`conditions` and `_meta`, reading `first`, `orderBy` and `where` from the GraphQL
variables. Events sharing a timestamp come back in an order unrelated to their ids (the
real server promises nothing there), unknown filters are GraphQL errors like the real
ones, and `first` above 1000 is refused.

Faults are queued (`schedule`) or drawn at random (`chaos`) per request: 429 with or
without Retry-After, Goldsky's allowance text in a 200, 500/502/503, a stall past the
client's timeout, a connection dropped mid-body, truncated JSON, transient and fatal
GraphQL errors (graph-node's `store error` among the transient ones), or a page with a
broken event.
"""

from __future__ import annotations

import bisect
import contextlib
import hashlib
import json
import random
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ALLOWANCE = "Sorry, you've surpassed your query allowance. Please try again - limits reset every 10 seconds."
EXCHANGE = "0x4bfb41d5b3570defd03c39a9a4d8de6bd8b8982e"
# Faults a client must ride out; "graphql_fatal" and "bad_event" must stop it instead.
TRANSIENT_FAULTS = (
    "429",
    "429_retry_after_0",
    "allowance_200",
    "500",
    "502",
    "503",
    "timeout",
    "drop",
    "bad_json",
    "graphql_transient",
)


def _h(*parts: Any) -> str:
    return hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()


def make_event(n: int, ts: int, seed: int = 0) -> dict[str, str]:
    """One orderFilledEvent in the subgraph's shape (camelCase, amounts as strings)."""
    tx, order = "0x" + _h(seed, "tx", n), "0x" + _h(seed, "order", n)
    token = str(int(_h(seed, "token", n % 50), 16))[:77]
    buy = int(_h(seed, "side", n), 16) % 2 == 0
    qty, coll = 1_000_000 + n % 7919 * 1000, 500_000 + n % 3571 * 100
    return {
        "id": f"{tx}_{order}",
        "transactionHash": tx,
        "timestamp": str(ts),
        "orderHash": order,
        "maker": "0x" + _h(seed, "maker", n % 997)[:40],
        "taker": EXCHANGE,
        "makerAssetId": "0" if buy else token,
        "takerAssetId": token if buy else "0",
        "makerAmountFilled": str(coll if buy else qty),
        "takerAmountFilled": str(qty if buy else coll),
        "fee": str(n % 3),
    }


def make_events(
    n: int, start_ts: int, seed: int = 0, crowded: dict[int, int] | None = None, spread_s: int = 86_400
) -> list[dict[str, str]]:
    """`n` events over `spread_s` seconds from `start_ts`, plus `crowded[offset] = k` events
    sharing the second `start_ts + offset`."""
    rng = random.Random(seed)
    events = [make_event(i, start_ts + rng.randrange(spread_s), seed) for i in range(n)]
    i = n
    for offset, count in (crowded or {}).items():
        events += [make_event(i + k, start_ts + offset, seed) for k in range(count)]
        i += count
    return events


@dataclass
class Fault:
    kind: str
    retry_after: str | None = None


@dataclass
class Served:
    at: float
    root: str
    variables: dict[str, Any]
    fault: str | None
    rows: int = 0
    ids: list[str] = field(default_factory=list)  # the events answered (before any damage)
    authorization: str | None = None


class FakeGoldsky:
    """The data set, the fault plan and the server. Use as a context manager."""

    def __init__(
        self,
        events: list[dict[str, str]] | None = None,
        market_datas: list[dict[str, Any]] | None = None,
        conditions: list[dict[str, Any]] | None = None,
        head_ts: int | None = None,
        timeout_stall_s: float = 1.0,
        delay_s: float = 0.0,
    ):
        self.market_datas = sorted(market_datas or [], key=lambda r: r["id"])
        self.conditions = sorted(conditions or [], key=lambda r: r["id"])
        self.set_events(events or [])
        self.head_ts = head_ts
        self.timeout_stall_s = timeout_stall_s
        self.delay_s = delay_s  # added to every answer: a slower server
        self.faults: deque[Fault] = deque()
        self.chaos_rate = 0.0
        self.chaos_kinds: tuple[str, ...] = ()
        self.chaos_rng = random.Random(0)
        self.max_consecutive = 2
        self._consecutive = 0
        self.log: list[Served] = []
        self.lock = threading.Lock()
        self.served_ids: set[str] = set()
        self.on_request: Any = None  # callable(n_requests) for tests that act mid-run
        self.server: ThreadingHTTPServer | None = None

    # data ------------------------------------------------------------------------------
    def set_events(self, events: list[dict[str, str]]) -> None:
        # Scan order: by timestamp, ties in an order unrelated to the id.
        self.scan = sorted(events, key=lambda e: (int(e["timestamp"]), _h("tie", e["id"])))
        self.scan_ts = [int(e["timestamp"]) for e in self.scan]
        self.by_second: dict[int, list[dict[str, str]]] = {}
        for e in sorted(events, key=lambda e: e["id"]):
            self.by_second.setdefault(int(e["timestamp"]), []).append(e)
        self.by_second_ids = {t: [e["id"] for e in es] for t, es in self.by_second.items()}

    @property
    def ids(self) -> set[str]:
        return {e["id"] for e in self.scan}

    # faults ------------------------------------------------------------------------------
    def schedule(self, *faults: Fault | str) -> None:
        """Answer the next requests with these faults, one each, in order."""
        self.faults.extend(f if isinstance(f, Fault) else Fault(f) for f in faults)

    def chaos(
        self, rate: float, kinds: tuple[str, ...] = TRANSIENT_FAULTS, seed: int = 1, max_consecutive: int = 2
    ) -> None:
        """Give a random `rate` of requests a random fault, never more than
        `max_consecutive` in a row (so a client with enough attempts always gets through)."""
        self.chaos_rate, self.chaos_kinds = rate, kinds
        self.chaos_rng, self.max_consecutive = random.Random(seed), max_consecutive

    def _next_fault(self) -> Fault | None:
        with self.lock:
            if self.faults:
                return self.faults.popleft()
            if (
                self.chaos_rate
                and self._consecutive < self.max_consecutive
                and self.chaos_rng.random() < self.chaos_rate
            ):
                self._consecutive += 1
                kind = self.chaos_rng.choice(self.chaos_kinds)
                return Fault(kind, "0" if kind == "429_retry_after_0" else None)
            self._consecutive = 0
            return None

    # GraphQL -------------------------------------------------------------------------------
    def answer(self, request: dict[str, Any]) -> dict[str, Any]:
        query = request.get("query", "")
        variables = request.get("variables") or {}
        if "_meta" in query:
            head = self.head_ts if self.head_ts is not None else (self.scan_ts[-1] if self.scan_ts else 0)
            return {
                "data": {
                    "_meta": {"block": {"number": 80_000_000, "timestamp": head}, "hasIndexingErrors": False}
                }
            }
        first = int(variables.get("first", 100))
        if first > 1000:
            return {
                "errors": [{"message": f"The `first` argument must be between 0 and 1000, but is {first}"}]
            }
        where = variables.get("where") or {}
        if "orderFilledEvents" in query:
            return self._fills(first, variables.get("orderBy"), where)
        for root, rows in (("marketDatas", self.market_datas), ("conditions", self.conditions)):
            if root in query:
                unknown = set(where) - {"id_gt"}
                if unknown:
                    return {"errors": [{"message": f"Type `{root}` filter has no field `{unknown.pop()}`"}]}
                ids = [r["id"] for r in rows]
                start = bisect.bisect_right(ids, where["id_gt"]) if "id_gt" in where else 0
                return {"data": {root: rows[start : start + first]}}
        return {"errors": [{"message": f"Type `Query` has no field in {query[:60]!r}"}]}

    def _fills(self, first: int, order_by: str | None, where: dict[str, Any]) -> dict[str, Any]:
        allowed = {"timestamp", "timestamp_gt", "timestamp_gte", "timestamp_lt", "timestamp_lte", "id_gt"}
        unknown = set(where) - allowed
        if unknown:
            return {"errors": [{"message": f"Type `OrderFilledEvent_filter` has no field `{unknown.pop()}`"}]}
        if "timestamp" in where:  # one second, by id
            if order_by != "id":
                return {"errors": [{"message": "this fake only serves one second ordered by id"}]}
            second = int(where["timestamp"])
            ids = self.by_second_ids.get(second, [])
            start = bisect.bisect_right(ids, where["id_gt"]) if "id_gt" in where else 0
            return {"data": {"orderFilledEvents": self.by_second.get(second, [])[start : start + first]}}
        if order_by != "timestamp" or "id_gt" in where:
            return {"errors": [{"message": "this fake serves ranges ordered by timestamp only"}]}
        lo = 0
        if "timestamp_gte" in where:
            lo = bisect.bisect_left(self.scan_ts, int(where["timestamp_gte"]))
        if "timestamp_gt" in where:
            lo = max(lo, bisect.bisect_right(self.scan_ts, int(where["timestamp_gt"])))
        hi = len(self.scan)
        if "timestamp_lt" in where:
            hi = bisect.bisect_left(self.scan_ts, int(where["timestamp_lt"]))
        if "timestamp_lte" in where:
            hi = min(hi, bisect.bisect_right(self.scan_ts, int(where["timestamp_lte"])))
        return {"data": {"orderFilledEvents": self.scan[lo : min(hi, lo + first)]}}

    # server --------------------------------------------------------------------------------
    def __enter__(self) -> FakeGoldsky:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", 0))
                request = json.loads(self.rfile.read(length) or b"{}")
                fake._handle(self, request)

        self.server = _QuietServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True, name="fake-goldsky"
        ).start()
        return self

    def __exit__(self, *exc: Any) -> None:
        assert self.server is not None
        self.server.shutdown()
        self.server.server_close()

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/subgraphs/orderbook/gn"

    @property
    def pnl_url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/subgraphs/pnl/gn"

    @property
    def requests(self) -> int:
        return len(self.log)

    def _handle(self, h: BaseHTTPRequestHandler, request: dict[str, Any]) -> None:
        query = request.get("query", "")
        root = next(
            (r for r in ("_meta", "orderFilledEvents", "marketDatas", "conditions") if r in query), "?"
        )
        fault = self._next_fault()
        served = Served(
            time.monotonic(),
            root,
            request.get("variables") or {},
            fault.kind if fault else None,
            authorization=h.headers.get("authorization"),
        )
        with self.lock:
            self.log.append(served)
            n = len(self.log)
        if self.on_request:
            self.on_request(n)
        if self.delay_s:
            time.sleep(self.delay_s)
        kind = fault.kind if fault else None
        if kind in ("429", "429_retry_after_0"):
            headers = {"retry-after": fault.retry_after} if fault and fault.retry_after else {}
            return _send(h, 429, ALLOWANCE.encode(), headers, "text/plain")
        if kind == "allowance_200":
            return _send(h, 200, ALLOWANCE.encode(), {}, "text/plain")
        if kind and kind.isdigit():  # 5xx, or a 4xx the client must not retry
            return _send(h, int(kind), f"<html>{kind} Server Error</html>".encode(), {}, "text/html")
        if kind == "timeout":
            time.sleep(self.timeout_stall_s)
            return _send(h, 200, b'{"data": {}}', {}, quiet=True)
        if kind == "graphql_transient":
            return _send(
                h, 200, json.dumps({"errors": [{"message": "bad indexers: BadResponse(timeout)"}]}).encode()
            )
        if kind == "store_error":  # graph-node's database briefly unavailable
            return _send(
                h,
                200,
                json.dumps(
                    {"errors": [{"message": "store error: could not get a database connection"}]}
                ).encode(),
            )
        if kind == "graphql_fatal":
            return _send(
                h,
                200,
                json.dumps(
                    {"errors": [{"message": "Type `Query` has no field `orderFilledEventz`"}]}
                ).encode(),
            )
        answer = self.answer(request)
        if root == "orderFilledEvents" and "data" in answer:
            served.ids = [r["id"] for r in answer["data"][root]]
        if kind == "bad_event" and answer.get("data", {}).get(root):
            rows = [dict(r) for r in answer["data"][root]]
            rows[len(rows) // 2]["maker"] = "not-an-address"
            answer = {"data": {root: rows}}
        if kind == "missing_field" and answer.get("data", {}).get(root):
            rows = [dict(r) for r in answer["data"][root]]
            rows[0].pop(next(k for k in rows[0] if k != "id"))
            answer = {"data": {root: rows}}
        body = json.dumps(answer).encode()
        if kind == "bad_json":
            return _send(h, 200, body[: max(1, len(body) // 2)])
        if kind == "drop":
            h.send_response(200)
            h.send_header("content-type", "application/json")
            h.send_header("content-length", str(len(body)))
            h.end_headers()
            h.wfile.write(body[: len(body) // 2])
            h.wfile.flush()
            h.close_connection = True
            with contextlib.suppress(OSError):
                h.connection.shutdown(socket.SHUT_RDWR)
            return
        if root == "orderFilledEvents" and "data" in answer:
            rows = answer["data"][root]
            served.rows = len(rows)
            with self.lock:
                self.served_ids.update(r["id"] for r in rows)
        _send(h, 200, body)


class _QuietServer(ThreadingHTTPServer):
    """Clients that give up (timeouts) or die (killed runs) are part of the tests."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


def _send(
    h: BaseHTTPRequestHandler,
    status: int,
    body: bytes,
    headers: dict[str, str] | None = None,
    content_type: str = "application/json",
    quiet: bool = False,
) -> None:
    try:
        h.send_response(status)
        h.send_header("content-type", content_type)
        h.send_header("content-length", str(len(body)))
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(body)
        h.wfile.flush()
    except (BrokenPipeError, ConnectionResetError):
        if not quiet:
            raise
        h.close_connection = True


def market_datas(n_conditions: int, seed: int = 0) -> list[dict[str, Any]]:
    """Two outcome tokens per condition, as the orderbook subgraph's `marketDatas`."""
    rows = []
    for c in range(n_conditions):
        cond = "0x" + _h(seed, "condition", c)
        for outcome in (0, 1):
            rows.append(
                {
                    "id": str(int(_h(seed, "mtoken", c, outcome), 16))[:77],
                    "condition": cond,
                    "outcomeIndex": str(outcome),
                }
            )
    return rows


def conditions(n: int, seed: int = 0) -> list[dict[str, Any]]:
    """pnl-subgraph `conditions`: a third YES, a third NO, the rest unresolved or odd."""
    payouts = [(["1", "0"], "1"), (["0", "1"], "1"), ([], "0"), (["1", "1"], "2")]
    return [
        {
            "id": "0x" + _h(seed, "condition", c),
            "payoutNumerators": payouts[c % 4][0],
            "payoutDenominator": payouts[c % 4][1],
        }
        for c in range(n)
    ]
