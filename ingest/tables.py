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
    contract_version    LowCardinality(String),
    -- The credited wallet's token, so the per-(maker, token) fold reads in sort order.
    token_id            String MATERIALIZED if(maker_asset_id = '0', taker_asset_id, maker_asset_id),
    -- When the row was loaded: the incremental models' watermark. Each load writes its
    -- own parts, so the minmax index lets "loaded since the last run" skip all older parts.
    inserted_at         DateTime64(3, 'UTC') MATERIALIZED now64(3),
    INDEX inserted_at_minmax inserted_at TYPE minmax GRANULARITY 1
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(timestamp)
-- Deduplicates on id like `ORDER BY id` would (an id fixes its maker and token), while the
-- (maker, token) prefix lets the fold aggregate in order instead of hashing.
ORDER BY (maker, token_id, id)
"""

# One row per stored fill id (ingest/fill_store.py): how a load tells which of its ids are
# stored already without reading raw.order_filled (whose sort key cannot find an id alone).
# 24 bytes a fill (~48 GB at 2 billion), read through the primary key: small granules and
# compressed blocks of about one granule, so a night's few million random ids read the
# granules that can hold them rather than the whole index.
ORDER_FILLED_IDS = """
CREATE TABLE IF NOT EXISTS raw.order_filled_ids
(
    id_hash      UInt128,  -- MD5 of the id, trimmed and lower-case (as stored)
    content_hash UInt64    -- cityHash64 of the stored values: a re-send with other content
)
ENGINE = ReplacingMergeTree
ORDER BY id_hash
SETTINGS index_granularity = 256, min_compress_block_size = 4096, max_compress_block_size = 16384
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

MARKET_ID_LOOKUPS = """
CREATE TABLE IF NOT EXISTS raw.market_id_lookups
(
    condition_id String,
    market_id    Nullable(String),
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

# Every raw.order_filled row inserted before `synced_to` is in raw.order_filled_ids.
ORDER_FILLED_IDS_SYNC = """
CREATE TABLE IF NOT EXISTS ops.order_filled_ids_sync
(
    synced_to DateTime64(3, 'UTC'),
    rows      UInt64,
    at        DateTime64(3, 'UTC')
)
ENGINE = MergeTree
ORDER BY synced_to
"""

# Every rejection of a dataset file (one row per file per attempt): the file keeps being
# retried and reported each night until it is fixed or removed.
REJECTED_FILES = """
CREATE TABLE IF NOT EXISTS ops.rejected_files
(
    sha256       String,
    file_name    String,
    path         String,
    size_bytes   UInt64,
    reason       String,
    bad_rows     UInt64,
    rejected_at  DateTime64(3, 'UTC')
)
ENGINE = MergeTree
ORDER BY (file_name, rejected_at)
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
    loaded_at      DateTime64(3, 'UTC'),
    status         LowCardinality(String) DEFAULT 'loaded',
    warnings       UInt32 DEFAULT 0,
    errors         UInt32 DEFAULT 0,
    problems       String DEFAULT '',
    validator      String DEFAULT ''
)
ENGINE = MergeTree
ORDER BY (file_name, loaded_at)
"""

# Columns added to ops.reference_loads after it first shipped: `status` is 'loaded' or
# 'rejected' (a rejected file is recorded but loads nothing), `problems` the first findings,
# `validator` the rules' fingerprint (validation.rules_fingerprint) the verdict was reached by.
REFERENCE_LOADS_MIGRATIONS = (
    "ALTER TABLE ops.reference_loads ADD COLUMN IF NOT EXISTS status LowCardinality(String) DEFAULT 'loaded'",
    "ALTER TABLE ops.reference_loads ADD COLUMN IF NOT EXISTS warnings UInt32 DEFAULT 0",
    "ALTER TABLE ops.reference_loads ADD COLUMN IF NOT EXISTS errors UInt32 DEFAULT 0",
    "ALTER TABLE ops.reference_loads ADD COLUMN IF NOT EXISTS problems String DEFAULT ''",
    "ALTER TABLE ops.reference_loads ADD COLUMN IF NOT EXISTS validator String DEFAULT ''",
)

TOKEN_MAP = """
CREATE TABLE IF NOT EXISTS raw.token_map
(
    token_id      String,
    condition_id  String,
    outcome_index Nullable(UInt8),
    source        LowCardinality(String),
    fetched_at    DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(fetched_at)
ORDER BY token_id
"""

# Where a resumable source (the Goldsky subgraph) stands: every event before `cursor_ts`,
# and those at `cursor_ts` whose id is <= `after_id` (in the server's order), are stored.
# One row per advance; the row with the highest `seq` of a source is the cursor.
INGEST_CURSOR = """
CREATE TABLE IF NOT EXISTS ops.ingest_cursor
(
    source     String,
    seq        UInt64,
    cursor_ts  DateTime64(3, 'UTC'),
    after_id   String,
    rows_total UInt64,
    updated_at DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(seq)
ORDER BY source
"""

RAW_TABLES = {
    "order_filled": ORDER_FILLED,
    "order_filled_ids": ORDER_FILLED_IDS,
    "resolutions": RESOLUTIONS,
    "markets": MARKETS,
    "category_map": CATEGORY_MAP,
    "market_id_lookups": MARKET_ID_LOOKUPS,
    "token_map": TOKEN_MAP,
}


def ensure_tables(client: Client) -> None:
    """Create databases and every table ingest writes; safe to call on every run."""
    ensure_databases(client)
    for ddl in (
        *RAW_TABLES.values(),
        LOADED_FILES,
        REFERENCE_LOADS,
        INGEST_CURSOR,
        ORDER_FILLED_IDS_SYNC,
        REJECTED_FILES,
    ):
        client.command(ddl)
    for ddl in REFERENCE_LOADS_MIGRATIONS:
        client.command(ddl)
