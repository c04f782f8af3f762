"""Goldsky subgraph source: `orderFilledEvents` into `raw.order_filled`, exactly once.

Why it is built this way (DOMAIN.md §1):

* **No event lost at a page boundary.** `first` is capped at 1000 and `skip` at 5000, so
  pages follow a cursor on `timestamp`. A page ordered by timestamp says nothing about the
  order of events that share a second, so from a full page only the seconds *before* its
  last second are taken as complete; the next page starts at that last second again. When
  one second alone fills a page (thousands of fills in one block), that second is read in
  `id` order with `{timestamp: T, id_gt: <last id>}` until it is exhausted. The last id is
  the one the *server* put last, never a Python comparison, so the server's collation
  decides the order consistently. (Always switching to `id_gt` after every page would
  double the requests: one extra per page for the tail second.)
* **Exactly once, resumable.** The cursor `(timestamp, after_id)` lives in
  `ops.ingest_cursor` and is written only after the batch it covers is in
  `raw.order_filled`. A run killed between the two re-fetches that batch, and the shared
  insert of new ids (ingest/goldsky_files.py) skips what is already stored.
* **A polite, stubborn client.** A token-bucket limit (GOLDSKY_RATE_LIMIT, well under the
  100 requests/s per IP), and tenacity retries with exponential backoff and jitter on 429s
  and Goldsky's "surpassed your query allowance" text (honouring Retry-After), 5xx,
  timeouts, dropped connections and transient GraphQL errors. Anything else (a GraphQL
  error about the query, a 4xx, a page with missing or bad fields) stops the run with the
  message, and nothing from that page is written.
* **Fetching overlaps writing.** One thread pages through the subgraph while the caller's
  thread validates and writes batches, so ingest is limited by the server.
"""

from __future__ import annotations

import bisect
import dataclasses
import datetime as dt
import email.utils
import hashlib
import json
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import tenacity
from clickhouse_connect.driver.client import Client

from ingest import goldsky_files
from ingest.tables import ensure_tables
from pipeline import warehouse
from pipeline.config import Settings
from pipeline.redact import redact_url

log = logging.getLogger(__name__)

UTC = dt.UTC
SOURCE = "subgraph"
# After this day the public subgraphs are incomplete (v2 exchanges): use the datasets.
V2_CUTOVER = dt.datetime(2026, 4, 28, tzinfo=UTC)
ALLOWANCE_TEXT = "surpassed your query allowance"
RETRY_AFTER_CAP_S = 600.0
PROGRESS_EVERY_S = 10.0
PROGRESS_EVERY_PAGES = 100
BATCH_MAX_S = 10.0  # a slow server still advances the cursor this often

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

META_QUERY = "query Meta { _meta { block { number timestamp } hasIndexingErrors } }"

# Subgraph field -> staging column (ingest/goldsky_files.py STAGE_COLUMNS).
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
STAGE_INSERT_COLUMNS = ["row_number", *FIELD_COLUMNS.values(), "contract_version"]

# GraphQL error texts that say "try again later" rather than "your query is wrong".
TRANSIENT_GRAPHQL = (
    ALLOWANCE_TEXT,
    "timeout",
    "timed out",
    "too many requests",
    "rate limit",
    "bad indexers",
    "indexer",
    "unavailable",
    "overloaded",
    "try again",
    "temporarily",
    "connection",
    "internal error",
    "service",
    "deadline",
)


# --- errors ---------------------------------------------------------------------------------


class GoldskyError(RuntimeError):
    """The subgraph answered something we must not retry (or retries ran out)."""


class MalformedPage(GoldskyError):
    """A page that is not what we asked for; nothing from it is written."""


class _Transient(Exception):
    """A failure worth retrying; `retry_after` is the server's own advice, in seconds."""

    def __init__(self, message: str, retry_after: float | None = None, malformed: bool = False):
        super().__init__(message)
        self.retry_after = retry_after
        self.malformed = malformed


class _Cancelled(Exception):
    """The consumer stopped; the fetcher thread ends quietly."""


# --- rate limit -----------------------------------------------------------------------------


class TokenBucket:
    """At most `rate` requests per second on average, bursts up to `burst`. `rate <= 0`
    disables the limit (benchmarks against the local fake server only)."""

    def __init__(self, rate: float, burst: float | None = None, clock: Callable[[], float] = time.monotonic):
        self.rate = rate
        self.capacity = max(1.0, burst if burst is not None else min(rate, 10.0))
        self.tokens = self.capacity
        self.clock = clock
        self.updated = clock()
        self.lock = threading.Lock()

    def acquire(self, sleep: Callable[[float], Any] = time.sleep) -> float:
        """Take one token, sleeping until it is due; returns the seconds waited. A token
        taken ahead of time is a debt (tokens < 0) that later callers wait out in turn."""
        if self.rate <= 0:
            return 0.0
        with self.lock:
            now = self.clock()
            self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
            self.updated = now
            self.tokens -= 1.0
            wait = -self.tokens / self.rate if self.tokens < 0 else 0.0
        if wait > 0:
            sleep(wait)
        return wait


# --- HTTP + GraphQL client ------------------------------------------------------------------


@dataclass
class ClientStats:
    requests: int = 0
    retries: int = 0
    http_s: float = 0.0  # waiting for answers (server time + transfer)
    decode_s: float = 0.0  # JSON decoding
    throttle_s: float = 0.0  # waiting for the rate limiter
    backoff_s: float = 0.0  # sleeping between retries


def _retry_after(headers: httpx.Headers) -> float | None:
    """Retry-After as seconds: a number, or an HTTP date."""
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - dt.datetime.now(UTC)).total_seconds())


def _snippet(body: bytes, limit: int = 200) -> str:
    return body[:limit].decode("utf-8", "replace").replace("\n", " ")


class SubgraphClient:
    """POSTs GraphQL to one subgraph with rate limiting and retries; returns `data`."""

    def __init__(
        self,
        url: str,
        *,
        api_key: str | None = None,
        timeout_s: float = 30.0,
        rate_limit: float = 20.0,
        max_attempts: int = 10,
        wait_s: float = 1.0,
        max_wait_s: float = 60.0,
        bucket: TokenBucket | None = None,
        cancel: threading.Event | None = None,
    ):
        self.url = url
        self.label = redact_url(url)
        headers = {"content-type": "application/json", "accept": "application/json"}
        if api_key:
            headers["authorization"] = f"Bearer {api_key}"
        self._http = httpx.Client(timeout=httpx.Timeout(timeout_s), headers=headers)
        self.bucket = bucket or TokenBucket(rate_limit)
        self.max_attempts = max_attempts
        self.cancel = cancel or threading.Event()
        self.stats = ClientStats()
        self._backoff = tenacity.wait_exponential_jitter(multiplier=wait_s, max=max_wait_s, jitter=wait_s)

    @classmethod
    def from_settings(cls, settings: Settings, url: str | None = None, **kw: Any) -> SubgraphClient:
        return cls(
            url or settings.goldsky_subgraph_url,
            api_key=settings.goldsky_api_key,
            timeout_s=settings.goldsky_timeout_s,
            rate_limit=settings.goldsky_rate_limit,
            max_attempts=settings.goldsky_max_attempts,
            wait_s=settings.goldsky_retry_wait_s,
            max_wait_s=settings.goldsky_retry_max_wait_s,
            **kw,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> SubgraphClient:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # tenacity hooks ------------------------------------------------------------------------
    def _sleep(self, seconds: float) -> None:
        self.stats.backoff_s += seconds
        if self.cancel.wait(seconds):
            raise _Cancelled()

    def _wait(self, state: tenacity.RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, _Transient) and exc.retry_after is not None:
            return min(exc.retry_after, RETRY_AFTER_CAP_S)
        return self._backoff(state)

    def _before_sleep(self, state: tenacity.RetryCallState) -> None:
        self.stats.retries += 1
        exc = state.outcome.exception() if state.outcome else None
        log.warning(
            "goldsky request failed, retrying",
            extra={
                "ctx": {
                    "endpoint": self.label,
                    "attempt": state.attempt_number,
                    "error": str(exc),
                    "wait_s": round(state.upcoming_sleep, 3),
                }
            },
        )

    def query(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """The `data` object of a successful answer. Raises GoldskyError (MalformedPage for
        an answer that never parsed) when the failure is not transient or retries ran out."""
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(_Transient),
            stop=tenacity.stop_after_attempt(self.max_attempts),
            wait=self._wait,
            sleep=self._sleep,
            before_sleep=self._before_sleep,
        )
        try:
            return retrying(self._once, query, variables or {})
        except tenacity.RetryError as exc:
            last = exc.last_attempt.exception()
            kind = MalformedPage if isinstance(last, _Transient) and last.malformed else GoldskyError
            raise kind(f"{self.label}: gave up after {self.max_attempts} attempts: {last}") from None

    def _once(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        if self.cancel.is_set():
            raise _Cancelled()
        self.stats.throttle_s += self.bucket.acquire(self._throttle_sleep)
        self.stats.requests += 1
        started = time.perf_counter()
        try:
            response = self._http.post(self.url, json={"query": query, "variables": variables})
        except httpx.TimeoutException as exc:
            raise _Transient(f"timeout ({type(exc).__name__})") from None
        except httpx.TransportError as exc:  # refused, reset, dropped mid-body
            raise _Transient(f"connection failed: {type(exc).__name__}: {exc}") from None
        finally:
            self.stats.http_s += time.perf_counter() - started
        body = response.content
        if response.status_code == 429 or ALLOWANCE_TEXT.encode() in body[:2000].lower():
            raise _Transient(
                f"rate limited (HTTP {response.status_code}): {_snippet(body, 120)}",
                retry_after=_retry_after(response.headers),
            )
        if response.status_code >= 500:
            raise _Transient(
                f"HTTP {response.status_code}: {_snippet(body, 120)}",
                retry_after=_retry_after(response.headers),
            )
        if response.status_code >= 400:
            hint = " (check GOLDSKY_API_KEY)" if response.status_code in (401, 403) else ""
            raise GoldskyError(f"{self.label}: HTTP {response.status_code}{hint}: {_snippet(body)}")
        started = time.perf_counter()
        try:
            doc = json.loads(body)
        except ValueError as exc:
            raise _Transient(
                f"malformed JSON answer ({exc}): {_snippet(body, 80)!r}", malformed=True
            ) from None
        finally:
            self.stats.decode_s += time.perf_counter() - started
        if not isinstance(doc, dict):
            raise MalformedPage(f"{self.label}: answer is not a JSON object: {_snippet(body, 80)!r}")
        errors = doc.get("errors")
        if errors:
            messages = "; ".join(
                str(e.get("message", e)) if isinstance(e, dict) else str(e)
                for e in (errors if isinstance(errors, list) else [errors])
            )
            if any(t in messages.lower() for t in TRANSIENT_GRAPHQL):
                raise _Transient(f"GraphQL error: {messages}")
            raise GoldskyError(f"{self.label}: GraphQL error: {messages}")
        data = doc.get("data")
        if not isinstance(data, dict):
            raise MalformedPage(f"{self.label}: answer has no `data` object: {_snippet(body, 80)!r}")
        return data

    def _throttle_sleep(self, seconds: float) -> None:
        if self.cancel.wait(seconds):
            raise _Cancelled()


# --- lag --------------------------------------------------------------------------------------


def meta(client: SubgraphClient, now: dt.datetime | None = None) -> dict[str, Any]:
    """How far the subgraph's indexed head is behind the wall clock."""
    data = client.query(META_QUERY)
    m = data.get("_meta")
    block = m.get("block") if isinstance(m, dict) else None
    if not isinstance(block, dict):
        raise MalformedPage(f"{client.label}: `_meta.block` missing from {data!r:.200}")
    now = now or dt.datetime.now(UTC)
    ts = block.get("timestamp")
    block_time = dt.datetime.fromtimestamp(int(ts), UTC) if ts is not None else None
    return {
        "endpoint": client.label,
        "block_number": int(block["number"]) if block.get("number") is not None else None,
        "block_time": block_time.isoformat() if block_time else None,
        "lag_minutes": round((now - block_time).total_seconds() / 60, 1) if block_time else None,
        "has_indexing_errors": bool(m.get("hasIndexingErrors")),
    }


def subgraph_lag(settings: Settings, url: str | None = None) -> dict[str, Any]:
    """For the healthcheck: the subgraph's head block, lag in minutes and whether that is
    within GOLDSKY_MAX_LAG_MINUTES. Never raises: a failure is reported in `error`."""
    try:
        with SubgraphClient.from_settings(settings, url) as client:
            client.max_attempts = min(client.max_attempts, 3)
            report = meta(client)
    except Exception as exc:  # the healthcheck shows it; it must not crash
        return {
            "endpoint": redact_url(url or settings.goldsky_subgraph_url),
            "ok": False,
            "error": f"{type(exc).__name__}: {exc}",
            "max_lag_minutes": settings.goldsky_max_lag_minutes,
        }
    lag = report["lag_minutes"]
    report["max_lag_minutes"] = settings.goldsky_max_lag_minutes
    report["ok"] = (
        lag is not None and lag <= settings.goldsky_max_lag_minutes and not report["has_indexing_errors"]
    )
    return report


# --- pagination ---------------------------------------------------------------------------


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


# --- cursor store --------------------------------------------------------------------------


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


# --- writing ---------------------------------------------------------------------------------


class FillWriter:
    """Stages pages, validates them with the file loader's SQL rules, inserts new ids."""

    def __init__(self, ch: Client, source: str):
        self.ch = ch
        digest = hashlib.sha256(source.encode()).hexdigest()[:12]
        self.stage = goldsky_files.create_stage(ch, f"raw._stage_subgraph_{digest}", memory=True)
        self.write_s = 0.0

    def close(self) -> None:
        self.ch.command(f"DROP TABLE IF EXISTS {self.stage}")

    def write(self, pages: list[Page]) -> tuple[int, int]:
        """Write the pages' events; returns (rows fetched, rows new). All or nothing: a bad
        value anywhere rejects the batch, naming the page and event."""
        started = time.perf_counter()
        columns: list[list[Any]] = [[] for _ in FIELDS]
        spans = []
        for page in pages:
            if len(page):
                spans.append((len(columns[0]) + 1, page))
                for into, column in zip(columns, page.columns):
                    into.extend(column)
        n = len(columns[0])
        if not n:
            return 0, 0
        try:
            self.ch.insert(
                self.stage,
                [list(range(1, n + 1)), *columns, ["v1"] * n],
                column_names=STAGE_INSERT_COLUMNS,
                column_oriented=True,
            )
            problems, bad = goldsky_files.find_problems(self.ch, self.stage, limit=5)
            if problems:
                first = int(problems[0].split(":")[0].split()[1])
                page = [p for start, p in spans if start <= first][-1]
                raise MalformedPage(
                    f"page {page.number} (cursor {page.requested}): {bad} bad events, e.g. "
                    + "; ".join(_page_relative(p, spans) for p in problems)
                    + "; nothing from this batch was written"
                )
            new = goldsky_files.insert_new_rows(self.ch, self.stage)
        finally:
            self.ch.command(f"TRUNCATE TABLE {self.stage}")
            self.write_s += time.perf_counter() - started
        return n, new


def _page_relative(problem: str, spans: list[tuple[int, Page]]) -> str:
    head, _, why = problem.partition(": ")
    n = int(head.split()[1])
    start, page = [(s, p) for s, p in spans if s <= n][-1]
    return f"event {n - start} (id {page.columns[0][n - start][:24]}…) {why}"


# --- the run ---------------------------------------------------------------------------------


@dataclass
class IngestReport:
    source: str
    start: str
    end: str = ""
    rows_fetched: int = 0
    rows_new: int = 0
    pages: int = 0
    batches: int = 0
    requests: int = 0
    retries: int = 0
    seconds: float = 0.0
    rows_per_s: float = 0.0
    http_s: float = 0.0
    decode_s: float = 0.0
    throttle_s: float = 0.0
    backoff_s: float = 0.0
    write_s: float = 0.0
    lag: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class _Progress:
    """Rows, rate, cursor date and time left, logged every few seconds or pages."""

    def __init__(self, start: Cursor, target: dt.datetime | None, every_s: float, every_pages: int):
        self.started = time.monotonic()
        self.start_ts = start.ts
        self.target = target
        self.every_s, self.every_pages = every_s, every_pages
        self.last_at, self.last_pages = self.started, 0

    def maybe_log(self, report: IngestReport, cursor: Cursor, force: bool = False) -> None:
        now = time.monotonic()
        if (
            not force
            and now - self.last_at < self.every_s
            and report.pages - self.last_pages < self.every_pages
        ):
            return
        self.last_at, self.last_pages = now, report.pages
        elapsed = max(now - self.started, 1e-9)
        target = self.target or dt.datetime.now(UTC)
        covered = cursor.ts - self.start_ts
        left = max(0.0, target.timestamp() - cursor.ts)
        eta = left * elapsed / covered if covered > 0 else None
        log.info(
            "subgraph ingest progress",
            extra={
                "ctx": {
                    "rows": report.rows_fetched,
                    "rows_new": report.rows_new,
                    "rows_per_s": round(report.rows_fetched / elapsed),
                    "pages": report.pages,
                    "cursor": cursor.time.isoformat(),
                    "target": target.isoformat(timespec="seconds"),
                    "eta_s": round(eta) if eta is not None else None,
                    "eta": str(dt.timedelta(seconds=round(eta))) if eta is not None else "unknown",
                    "retries": report.retries,
                }
            },
        )


BatchHook = Callable[[str, int], None]  # (event, batch number): "inserted" | "committed"


def ingest_fills(
    settings: Settings,
    *,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    hook: BatchHook | None = None,
    progress_every_s: float = PROGRESS_EVERY_S,
    check_lag: bool = True,
) -> IngestReport:
    """Fetch every event from the cursor (or `since`, or GOLDSKY_START) up to `until` (or the
    subgraph's head) into raw.order_filled, advancing the cursor after each batch."""
    key = source_key(since, until)
    until_ts = int(until.timestamp()) if until else None
    started = time.monotonic()
    cancel = threading.Event()
    client = SubgraphClient.from_settings(settings, cancel=cancel)
    try:
        with warehouse.connect(settings) as ch:
            ensure_tables(ch)
            state = read_cursor(ch, key) or CursorState(
                Cursor(int((since or settings.goldsky_start).timestamp())), 0, 0
            )
            report = IngestReport(source=key, start=str(state.cursor))
            if until is None or until > V2_CUTOVER:
                report.warnings.append(
                    "subgraph data after 2026-04-28 is incomplete (v2 exchanges): use Goldsky's "
                    "v2 datasets (GOLDSKY_SOURCE=dataset) for that period; see docs/goldsky.md"
                )
            if check_lag:
                _check_lag(client, settings, report)
            for warning in report.warnings:
                log.warning(warning, extra={"ctx": {"endpoint": client.label}})
            log.info(
                "subgraph ingest started",
                extra={
                    "ctx": {
                        "source": key,
                        "endpoint": client.label,
                        "cursor": str(state.cursor),
                        "until": until.isoformat() if until else "head",
                    }
                },
            )
            try:
                _run(
                    ch, client, state, key, until_ts, until, settings, report, hook, progress_every_s, cancel
                )
            except BaseException as exc:
                log.error(
                    "subgraph ingest stopped",
                    extra={
                        "ctx": {
                            "error": f"{type(exc).__name__}: {exc}",
                            "cursor": str(state.cursor),
                            "rows": report.rows_fetched,
                            "rows_new": report.rows_new,
                        }
                    },
                )
                raise
            report.end = str(state.cursor)
    finally:
        cancel.set()
        client.close()
    stats = client.stats
    report.requests, report.retries = stats.requests, stats.retries
    report.http_s, report.decode_s = round(stats.http_s, 3), round(stats.decode_s, 3)
    report.throttle_s, report.backoff_s = round(stats.throttle_s, 3), round(stats.backoff_s, 3)
    report.seconds = round(time.monotonic() - started, 3)
    report.rows_per_s = round(report.rows_fetched / report.seconds) if report.seconds else 0.0
    log.info(
        "subgraph ingest finished",
        extra={"ctx": {k: v for k, v in report.as_dict().items() if k not in ("lag", "warnings")}},
    )
    return report


def _check_lag(client: SubgraphClient, settings: Settings, report: IngestReport) -> None:
    try:
        report.lag = meta(client)
    except GoldskyError as exc:
        report.warnings.append(f"could not read the subgraph's _meta: {exc}")
        return
    lag = report.lag.get("lag_minutes")
    if lag is not None and lag > settings.goldsky_max_lag_minutes:
        report.warnings.append(
            f"the subgraph is {lag:.0f} minutes behind the chain (head block "
            f"{report.lag.get('block_number')} at {report.lag.get('block_time')}; limit "
            f"GOLDSKY_MAX_LAG_MINUTES={settings.goldsky_max_lag_minutes:g})"
        )
    if report.lag.get("has_indexing_errors"):
        report.warnings.append("the subgraph reports indexing errors (_meta.hasIndexingErrors)")


_DONE = object()


def _fetch(
    client: SubgraphClient,
    start: Cursor,
    until_ts: int | None,
    page_size: int,
    out: queue.Queue[Any],
    cancel: threading.Event,
) -> None:
    """The fetcher thread: pages into `out`, then _DONE or the exception that stopped it."""

    def put(item: Any) -> None:
        while not cancel.is_set():
            try:
                out.put(item, timeout=0.1)
                return
            except queue.Full:
                continue
        raise _Cancelled()

    try:
        for page in iter_fill_pages(client, start, until_ts, page_size):
            put(page)
        put(_DONE)
    except _Cancelled:
        return
    except BaseException as exc:  # handed to the writer, which raises it
        try:
            put(exc)
        except _Cancelled:
            return


def _run(
    ch: Client,
    client: SubgraphClient,
    state: CursorState,
    key: str,
    until_ts: int | None,
    until: dt.datetime | None,
    settings: Settings,
    report: IngestReport,
    hook: BatchHook | None,
    progress_every_s: float,
    cancel: threading.Event,
) -> None:
    pages_q: queue.Queue[Any] = queue.Queue(maxsize=8)
    fetcher = threading.Thread(
        target=_fetch,
        name="goldsky-fetch",
        daemon=True,
        args=(client, state.cursor, until_ts, settings.goldsky_page_size, pages_q, cancel),
    )
    writer = FillWriter(ch, key)
    progress = _Progress(state.cursor, until, progress_every_s, PROGRESS_EVERY_PAGES)
    batch: list[Page] = []
    batch_rows, batch_started = 0, time.monotonic()

    def flush() -> None:
        nonlocal batch, batch_rows, batch_started
        if not batch:
            return
        fetched, new = writer.write(batch)
        report.batches += 1
        if hook:
            hook("inserted", report.batches)
        state.seq += 1
        state.rows_total += new
        state.cursor = batch[-1].cursor
        write_cursor(ch, key, state)
        if hook:
            hook("committed", report.batches)
        report.rows_fetched += fetched
        report.rows_new += new
        log.debug(
            "batch committed",
            extra={
                "ctx": {
                    "batch": report.batches,
                    "rows": fetched,
                    "rows_new": new,
                    "cursor": str(state.cursor),
                }
            },
        )
        batch, batch_rows, batch_started = [], 0, time.monotonic()
        progress.maybe_log(report, state.cursor)

    fetcher.start()
    try:
        while True:
            item = pages_q.get()
            if item is _DONE:
                break
            if isinstance(item, BaseException):
                flush()  # what came before the failure is good: keep it
                raise item
            batch.append(item)
            batch_rows += len(item)
            report.pages += 1
            if batch_rows >= settings.goldsky_batch_rows or time.monotonic() - batch_started > BATCH_MAX_S:
                flush()
        flush()
        progress.maybe_log(report, state.cursor, force=True)
    finally:
        cancel.set()
        fetcher.join(timeout=5)
        report.write_s = round(writer.write_s, 3)
        writer.close()


# --- pipeline step ---------------------------------------------------------------------------


def step_ingest_subgraph(ctx: Any, since: dt.datetime | None = None, until: dt.datetime | None = None) -> Any:
    """The ingest step for GOLDSKY_SOURCE=subgraph (nightly/steps.py dispatches here)."""
    from pipeline.steps import StepResult

    report = ingest_fills(ctx.settings, since=since, until=until)
    with warehouse.connect(ctx.settings) as ch:
        total = warehouse.count_rows(ch, "raw.order_filled")
    details = report.as_dict()
    details["raw_rows"] = total
    return StepResult(
        rows_in=report.rows_fetched,
        rows_out=report.rows_new,
        details=details,
        warnings=list(report.warnings),
        message=f"{report.rows_new} new of {report.rows_fetched} fetched in {report.pages} pages "
        f"({report.rows_per_s:.0f} rows/s), cursor {report.end}",
    )
