"""Goldsky subgraph source: `orderFilledEvents` into `raw.order_filled`, exactly once.

The run, assembled from parts named for their job:

* ingest/goldsky_client.py: the HTTP client (rate limit, retries within a budget, fail fast
  on what retrying cannot fix);
* ingest/fill_pages.py: paging by timestamp and id without losing an event at a boundary;
* ingest/subgraph_writer.py: each batch validated by the contract's rules and published
  through the fill id index, so a re-fetched event is never a second row;
* ingest/ingest_cursor.py: the stored cursor, written only after its batch is stored, so a
  run killed at any moment resumes where it stood;
* ingest/subgraph_lag.py: how far the subgraph lags the chain.

Fetching overlaps writing: one thread pages through the subgraph while the caller's thread
validates and writes batches, so ingest is limited by the server.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from clickhouse_connect.driver.client import Client

from ingest import fill_store, stage_tables
from ingest.fill_contract import plausible_window
from ingest.fill_pages import FILLS_QUERY, Cursor, Page, iter_fill_pages
from ingest.goldsky_client import (
    Cancelled,
    GoldskyError,
    GoldskyUnauthorized,
    GoldskyUnreachable,
    MalformedPage,
    RetryBudget,
    SubgraphClient,
    TokenBucket,
)
from ingest.goldsky_files import reads_local_files
from ingest.ingest_cursor import CursorState, read_cursor, source_key, write_cursor
from ingest.subgraph_lag import META_QUERY, meta, subgraph_lag
from ingest.subgraph_writer import FillWriter
from ingest.tables import ensure_tables
from pipeline import warehouse
from pipeline.config import Settings
from pipeline.steps import RunContext, StepResult

# Names other packages and the benchmark use from here (the healthcheck's subgraph_lag, the
# client and paging for bench/goldsky_ingest.py).
__all__ = [
    "FILLS_QUERY",
    "META_QUERY",
    "Cursor",
    "GoldskyError",
    "GoldskyUnreachable",
    "IngestReport",
    "MalformedPage",
    "SubgraphClient",
    "TokenBucket",
    "ingest_fills",
    "iter_fill_pages",
    "read_cursor",
    "step_ingest_subgraph",
    "subgraph_lag",
]

log = logging.getLogger(__name__)

UTC = dt.UTC
# After this day the public subgraphs are incomplete (v2 exchanges): use the datasets.
V2_CUTOVER = dt.datetime(2026, 4, 28, tzinfo=UTC)
PROGRESS_EVERY_S = 10.0
PROGRESS_EVERY_PAGES = 100
BATCH_MAX_S = 10.0  # a slow server still advances the cursor this often


@dataclass
class IngestReport:
    source: str
    start: str
    end: str = ""
    rows_fetched: int = 0
    rows_new: int = 0
    rows_resent: int = 0  # fetched ids stored already (identical or not)
    rows_conflicting: int = 0  # ... with other content: the first stored row was kept
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
    budget: RetryBudget | None = None,
) -> IngestReport:
    """Fetch every event from the cursor (or `since`, or GOLDSKY_START) up to `until` (or the
    subgraph's head) into raw.order_filled, advancing the cursor after each batch. Retries
    share `budget` (GOLDSKY_RETRY_BUDGET_S by default); an unreachable endpoint stops at once."""
    key = source_key(since, until)
    until_ts = int(until.timestamp()) if until else None
    started = time.monotonic()
    cancel = threading.Event()
    client = SubgraphClient.from_settings(
        settings, cancel=cancel, budget=budget or RetryBudget.from_settings(settings)
    )
    window = plausible_window()
    try:
        with warehouse.connect(settings) as ch:
            ensure_tables(ch)
            stage_tables.drop_orphans(ch, embedded=reads_local_files(ch))
            fill_store.sync(ch)
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
                    ch,
                    client,
                    state,
                    until_ts,
                    until,
                    settings,
                    report,
                    _RunHooks(hook, progress_every_s, cancel, window),
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
    """Warn when the subgraph lags the chain; a failure to read `_meta` is a warning, unless
    the endpoint cannot be reached or refuses us, which no later request would change."""
    try:
        report.lag = meta(client)
    except (GoldskyUnreachable, GoldskyUnauthorized):
        raise
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
        raise Cancelled()

    try:
        for page in iter_fill_pages(client, start, until_ts, page_size):
            put(page)
        put(_DONE)
    except Cancelled:
        return
    except BaseException as exc:  # handed to the writer, which raises it
        try:
            put(exc)
        except Cancelled:
            return


@dataclass(frozen=True)
class _RunHooks:
    """What a run is told besides its data: test hooks, progress cadence, the cancel event and
    the plausible time window of its events."""

    batch: BatchHook | None
    progress_every_s: float
    cancel: threading.Event
    window: tuple[dt.datetime, dt.datetime]


def _run(
    ch: Client,
    client: SubgraphClient,
    state: CursorState,
    until_ts: int | None,
    until: dt.datetime | None,
    settings: Settings,
    report: IngestReport,
    hooks: _RunHooks,
) -> None:
    key, hook, cancel = report.source, hooks.batch, hooks.cancel
    pages_q: queue.Queue[Any] = queue.Queue(maxsize=8)
    fetcher = threading.Thread(
        target=_fetch,
        name="goldsky-fetch",
        daemon=True,
        args=(client, state.cursor, until_ts, settings.goldsky_page_size, pages_q, cancel),
    )
    writer = FillWriter(ch, hooks.window)
    progress = _Progress(state.cursor, until, hooks.progress_every_s, PROGRESS_EVERY_PAGES)
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
        report.rows_resent, report.rows_conflicting = writer.rows_resent, writer.rows_conflicting
        if writer.rows_conflicting:
            report.warnings.append(
                f"subgraph: {writer.rows_conflicting} re-fetched ids with different content; the first "
                f"stored rows were kept (e.g. {', '.join(writer.conflict_examples)})"
            )
        writer.close()


# --- pipeline step ---------------------------------------------------------------------------


def step_ingest_subgraph(
    ctx: RunContext, since: dt.datetime | None = None, until: dt.datetime | None = None
) -> StepResult:
    """The ingest step for GOLDSKY_SOURCE=subgraph (nightly/steps.py dispatches here)."""
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
