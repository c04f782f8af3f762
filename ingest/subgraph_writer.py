"""Writing subgraph pages into `raw.order_filled`: the file loader's rules, each fill id once.

A batch of pages is staged as strings, judged by the contract's SQL rules
(ingest/fill_contract.py) and, only when every event passes, converted into a staging table
shaped like `raw.order_filled` and published through the id index (ingest/fill_store.py):
an event fetched again (a re-run, a replayed window, an overlapping dataset file) is never
stored twice. All or nothing per batch: a bad value anywhere rejects the batch, naming the
page and event.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from clickhouse_connect.driver.client import Client

from ingest import fill_store, stage_tables
from ingest.fill_contract import (
    NORMALIZED_ID,
    RAW_COLUMN_LIST,
    RAW_EXPRESSIONS,
    create_string_stage,
    find_problems,
)
from ingest.fill_pages import FIELD_COLUMNS, FIELDS, Page
from ingest.goldsky_client import MalformedPage

STAGE_INSERT_COLUMNS = ["row_number", *FIELD_COLUMNS.values(), "contract_version"]


class FillWriter:
    """Stages pages, validates them with the file loader's SQL rules, publishes new ids."""

    def __init__(self, ch: Client, window: tuple[dt.datetime, dt.datetime]):
        self.ch = ch
        self.window = window
        self.stage = create_string_stage(ch, stage_tables.stage_name("subgraph"), memory=True)
        self.write_s = 0.0
        self.rows_resent = 0
        self.rows_conflicting = 0
        self.conflict_examples: list[str] = []

    def close(self) -> None:
        self.ch.command(f"DROP TABLE IF EXISTS {self.stage}")

    def write(self, pages: list[Page]) -> tuple[int, int]:
        """Write the pages' events; returns (rows fetched, rows new)."""
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
            problems, bad = find_problems(self.ch, self.stage, limit=5, window=self.window)
            if problems:
                first = int(problems[0].split(":")[0].split()[1])
                page = [p for start, p in spans if start <= first][-1]
                raise MalformedPage(
                    f"page {page.number} (cursor {page.requested}): {bad} bad events, e.g. "
                    + "; ".join(_page_relative(p, spans) for p in problems)
                    + "; nothing from this batch was written"
                )
            new = self._publish()
        finally:
            self.ch.command(f"TRUNCATE TABLE {self.stage}")
            self.write_s += time.perf_counter() - started
        return n, new

    def _publish(self) -> int:
        raw_stage = fill_store.create_raw_stage(self.ch, "subgraph_batch")
        try:
            self.ch.command(
                f"INSERT INTO {raw_stage} ({RAW_COLUMN_LIST}) SELECT {RAW_EXPRESSIONS} FROM {self.stage} "
                f"ORDER BY row_number LIMIT 1 BY {NORMALIZED_ID} "
                "SETTINGS max_partitions_per_insert_block = 0"
            )
            published = fill_store.publish(self.ch, raw_stage, label="subgraph batch")
        finally:
            self.ch.command(f"DROP TABLE IF EXISTS {raw_stage}")
        self.rows_resent += published.rows_resent
        self.rows_conflicting += published.rows_conflicting
        room = fill_store.EXAMPLES - len(self.conflict_examples)
        self.conflict_examples += published.conflict_examples[: max(0, room)]
        return published.rows_new


def _page_relative(problem: str, spans: list[tuple[int, Page]]) -> str:
    head, _, why = problem.partition(": ")
    n = int(head.split()[1])
    start, page = [(s, p) for s, p in spans if s <= n][-1]
    return f"event {n - start} (id {page.columns[0][n - start][:24]}…) {why}"
