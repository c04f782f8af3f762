"""DDL for the tables ingest writes: `raw` data and the `ops` bookkeeping ingest needs.

Kept in one module so the raw contract (docs/data-contract.md) has a single source.
"""
from __future__ import annotations

from clickhouse_connect.driver.client import Client

from pipeline.warehouse import ensure_databases

ORDER_FILLED = """
CREATE TABLE IF NOT EXISTS raw.order_filled
(
    id                  String,
    timestamp           DateTime64(3, 'UTC'),
    transaction_hash    String,
    order_hash          String,
    maker               String,
    taker               String,
    maker_asset_id      String,
    taker_asset_id      String,
    maker_amount_filled UInt64,
    taker_amount_filled UInt64,
    fee                 UInt64,
    block_number        UInt64,
    contract_version    LowCardinality(String)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(timestamp)
ORDER BY id
"""

RESOLUTIONS = """
CREATE TABLE IF NOT EXISTS raw.resolutions
(
    condition_id     String,
    market_id        Nullable(String),
    resolved_outcome Nullable(String),
    payout_yes       Nullable(Int64),
    payout_no        Nullable(Int64),
    resolved_at      Nullable(DateTime64(3, 'UTC')),
    error            Nullable(String),
    entry_index      UInt32
)
ENGINE = MergeTree
ORDER BY condition_id
"""

MARKETS = """
CREATE TABLE IF NOT EXISTS raw.markets
(
    condition_id String,
    market_id    String,
    question     String,
    category     String,
    tags         Array(String),
    token_ids    Array(String),
    event_id     Nullable(String),
    end_date     Nullable(DateTime64(3, 'UTC')),
    line_number  UInt32
)
ENGINE = MergeTree
ORDER BY condition_id
"""

CATEGORY_MAP = """
CREATE TABLE IF NOT EXISTS raw.category_map
(
    canonical String,
    kind      LowCardinality(String),
    key       String,
    priority  UInt16
)
ENGINE = MergeTree
ORDER BY (kind, key)
"""

LOADED_FILES = """
CREATE TABLE IF NOT EXISTS ops.loaded_files
(
    sha256       String,
    file_name    String,
    path         String,
    size_bytes   UInt64,
    rows         UInt64,
    rows_new     UInt64,
    min_ts       Nullable(DateTime64(3, 'UTC')),
    max_ts       Nullable(DateTime64(3, 'UTC')),
    loaded_at    DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(loaded_at)
ORDER BY sha256
"""

REFERENCE_LOADS = """
CREATE TABLE IF NOT EXISTS ops.reference_loads
(
    file_name      String,
    sha256         String,
    size_bytes     UInt64,
    entries        UInt64,
    resolved       Nullable(UInt64),
    claimed        Nullable(UInt64),
    last_updated   Nullable(DateTime64(3, 'UTC')),
    loaded_at      DateTime64(3, 'UTC')
)
ENGINE = MergeTree
ORDER BY (file_name, loaded_at)
"""

RAW_TABLES = {
    "order_filled": ORDER_FILLED,
    "resolutions": RESOLUTIONS,
    "markets": MARKETS,
    "category_map": CATEGORY_MAP,
}


def ensure_tables(client: Client) -> None:
    """Create databases and every table ingest writes; safe to call on every run."""
    ensure_databases(client)
    for ddl in (*RAW_TABLES.values(), LOADED_FILES, REFERENCE_LOADS):
        client.command(ddl)
