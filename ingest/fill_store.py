"""How fills reach `raw.order_filled`: each fill id once, whatever else a delivery changes.

A load writes its rows into a staging table shaped like `raw.order_filled` and then
publishes it here. Publishing consults `raw.order_filled_ids`, a narrow index of every stored
fill id: the MD5 of the normalised id as a UInt128 (the table's sort key) and a hash of the
stored values. The raw table is never read to find stored ids: at ~2 billion fills it is far
too large to scan each night, and its sort key (maker, token, id) cannot find an id alone.
The index is read through its primary key, only the granules that can hold the staged ids.

**The conflict rule: the first stored row wins.** A staged id that the index holds is never
stored again: an identical re-send is counted (`rows_resent`), one with different content is
counted too (`rows_conflicting`, with example ids) and warned about. First-stored-wins keeps
`raw.order_filled` append-only, which the incremental models rely on: they fold the fills
loaded since their last build, so replacing a stored fill (newest-delivery-wins) would change
history they have already folded, under another (maker, token) key when the maker or token
changed, and every such correction would need a re-fold. A corrected fill is an operator's
decision (see docs/data-contract.md), not something a re-delivery does silently.

**Crash safety.** The rows go to `raw.order_filled` first, then their ids to the index, then
a watermark (`ops.order_filled_ids_sync`: every raw row inserted before it is indexed). A
load killed between the writes leaves raw rows the index lacks; the next load first indexes
the raw rows inserted since the watermark (the `inserted_at` minmax index skips older parts),
so their ids are not stored twice. A warehouse from before the index is indexed in full once.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass, field

from clickhouse_connect.driver.client import Client

from ingest import stage_tables
from ingest.fill_contract import NORMALIZED_ID, RAW_COLUMN_LIST
from pipeline import names

log = logging.getLogger(__name__)

INDEX = names.ORDER_FILLED_IDS
SYNC = "ops.order_filled_ids_sync"
# The index key of a row of raw.order_filled (or of a stage shaped like it). MD5: stable
# across engine versions (the index outlives them) and faster here than sipHash128.
ID_HASH = f"reinterpretAsUInt128(MD5({NORMALIZED_ID}))"
# What a fill says besides its id; block_number and contract_version are bookkeeping (the
# subgraph sends no block number), so a fill from both sources is the same content.
CONTENT_HASH = (
    "cityHash64(toUnixTimestamp64Milli(timestamp), transaction_hash, order_hash, maker, taker, "
    "maker_asset_id, taker_asset_id, maker_amount_filled, taker_amount_filled, fee)"
)
# Every insert here carries distinct ids (deduplicated by the loader), so the table's own
# insert-time collapsing of equal sort keys (ReplacingMergeTree) would only cost time.
INSERT_SETTINGS = "max_partitions_per_insert_block = 0, optimize_on_insert = 0"
EXAMPLES = 5


def stored_ids_sql(relation: str) -> str:
    """The index rows (id_hash, content_hash) of the ids in `relation` (a table or subquery
    with an `id_hash` column): a primary-key read of the index."""
    return (
        f"SELECT id_hash, any(content_hash) AS content_hash FROM {INDEX} "
        f"WHERE id_hash IN (SELECT id_hash FROM {relation}) GROUP BY id_hash"
    )


@dataclass
class Publication:
    """What publishing a stage did: the route, rows new to the table, and the ids that were
    stored already (identical or with other content)."""

    route: str  # attached | filtered
    rows_new: int = 0
    rows_resent: int = 0
    rows_conflicting: int = 0
    conflict_examples: list[str] = field(default_factory=list)


def create_raw_stage(client: Client, kind: str = "order_filled") -> str:
    """An empty table with raw.order_filled's columns, partitioning and sort order, so its
    parts can be attached to raw.order_filled as they are. Plain MergeTree: it keeps every
    row written (no collapsing on insert or merge), so its count is the delivery's. Named for
    its owner (ingest/stage_tables.py) so a killed load's leftover is dropped later."""
    part_key, sort_key, primary_key = client.query(
        "SELECT partition_key, sorting_key, primary_key FROM system.tables "
        "WHERE database = 'raw' AND name = 'order_filled'"
    ).result_rows[0]
    stage = stage_tables.stage_name(kind)
    partition = f" PARTITION BY {part_key}" if part_key else ""
    client.command(
        f"CREATE TABLE {stage} AS raw.order_filled ENGINE = MergeTree{partition} "
        f"ORDER BY ({sort_key}) PRIMARY KEY ({primary_key})"
    )
    return stage


def _watermark(client: Client) -> dt.datetime | None:
    rows = client.query(f"SELECT max(synced_to), count() FROM {SYNC}").result_rows
    return rows[0][0] if rows and rows[0][1] else None


def mark_synced(client: Client, rows: int = 0) -> None:
    """Every raw row inserted up to now is in the index."""
    client.command(f"INSERT INTO {SYNC} (synced_to, rows, at) SELECT now64(3), {int(rows)}, now64(3)")


def sync(client: Client) -> int:
    """Index the raw rows the index may lack (inserted since the watermark, or all of them
    the first time); returns the ids added. Cheap when nothing is missing: the raw table's
    `inserted_at` minmax index skips every part written before the watermark."""
    started = time.monotonic()
    since = _watermark(client)
    before = int(client.command(f"SELECT count() FROM {INDEX}"))
    if since is None:
        if before == 0:  # a warehouse from before the index: index every stored fill once
            total = int(client.command("SELECT count() FROM raw.order_filled"))
            if total:
                log.warning(
                    "indexing the stored fill ids once (a warehouse from before the id index)",
                    extra={"ctx": {"rows": total}},
                )
            client.command(
                f"INSERT INTO {INDEX} (id_hash, content_hash) SELECT {ID_HASH}, {CONTENT_HASH} "
                f"FROM raw.order_filled SETTINGS {INSERT_SETTINGS}"
            )
            where = None
        else:
            where = "1"
    else:
        where = "inserted_at >= {since:DateTime64(3, 'UTC')}"
    if where is not None:
        fresh = f"(SELECT {ID_HASH} AS id_hash, {CONTENT_HASH} AS content_hash FROM raw.order_filled WHERE {where})"
        client.command(
            f"INSERT INTO {INDEX} (id_hash, content_hash) SELECT id_hash, any(content_hash) FROM {fresh} "
            f"WHERE id_hash NOT IN (SELECT id_hash FROM ({stored_ids_sql(fresh)})) GROUP BY id_hash "
            f"SETTINGS {INSERT_SETTINGS}",
            parameters={"since": since} if since is not None else None,
        )
    added = int(client.command(f"SELECT count() FROM {INDEX}")) - before
    mark_synced(client, added)
    if added:
        log.warning(
            "indexed fill ids stored without the index (a killed load or a direct insert)",
            extra={"ctx": {"ids": added, "seconds": round(time.monotonic() - started, 3)}},
        )
    return added


def _keys(client: Client, stage: str) -> str:
    """The staged rows' index keys, hashed once: (id_hash, content_hash) per row."""
    keys = stage_tables.stage_name("order_filled_keys")
    client.command(f"CREATE TABLE {keys} (id_hash UInt128, content_hash UInt64) ENGINE = Memory")
    client.command(f"INSERT INTO {keys} SELECT {ID_HASH}, {CONTENT_HASH} FROM {stage}")
    return keys


def _find_stored(client: Client, keys: str, hits: str | None = None) -> str:
    """A small table of the index rows of the staged ids that are stored already."""
    if hits is None:
        hits = stage_tables.stage_name("order_filled_hits")
        client.command(f"CREATE TABLE {hits} (id_hash UInt128, content_hash UInt64) ENGINE = Memory")
    else:
        client.command(f"TRUNCATE TABLE {hits}")
    client.command(f"INSERT INTO {hits} {stored_ids_sql(keys)}")
    return hits


def _resends(client: Client, stage: str, keys: str, hits: str) -> tuple[int, int, list[str]]:
    """Staged rows whose id is stored: in all, with other content, and example ids."""
    resent, conflicting = client.query(
        f"SELECT count(), countIf(k.content_hash != h.content_hash) "
        f"FROM {keys} AS k INNER JOIN {hits} AS h ON k.id_hash = h.id_hash"
    ).result_rows[0]
    examples: list[str] = []
    if conflicting:
        examples = [
            r[0]
            for r in client.query(
                f"SELECT s.id FROM {stage} AS s INNER JOIN {hits} AS h ON {ID_HASH} = h.id_hash "
                f"WHERE {CONTENT_HASH} != h.content_hash ORDER BY s.id LIMIT {EXAMPLES}"
            ).result_rows
        ]
    return int(resent), int(conflicting), examples


def _attach(client: Client, stage: str) -> None:
    """Move the written parts into raw.order_filled (hard links, no rewrite)."""
    database, table = stage.split(".", 1)
    partitions = client.query(
        "SELECT DISTINCT partition_id FROM system.parts "
        "WHERE database = {d:String} AND table = {t:String} AND active",
        parameters={"d": database, "t": table},
    ).result_rows
    for (partition,) in partitions:
        client.command(
            f"ALTER TABLE raw.order_filled ATTACH PARTITION ID {{p:String}} FROM {stage}",
            parameters={"p": partition},
        )


def _insert_new(client: Client, stage: str, hits: str) -> None:
    client.command(
        f"INSERT INTO raw.order_filled ({RAW_COLUMN_LIST}) SELECT {RAW_COLUMN_LIST} FROM {stage} "
        f"WHERE {ID_HASH} NOT IN (SELECT id_hash FROM {hits}) SETTINGS {INSERT_SETTINGS}"
    )


def _index(client: Client, keys: str, hits: str | None) -> None:
    where = f"WHERE id_hash NOT IN (SELECT id_hash FROM {hits}) " if hits else ""
    client.command(
        f"INSERT INTO {INDEX} (id_hash, content_hash) SELECT id_hash, content_hash FROM {keys} "
        f"{where}SETTINGS {INSERT_SETTINGS}"
    )


def publish(client: Client, stage: str, attach: bool = True, label: str = "") -> Publication:
    """Put the staged rows (distinct ids) whose id is not stored into raw.order_filled and
    the index. Nothing reaches the table before this point. With no stored id among them,
    the stage's parts are attached as they are; a server that refuses the attach (e.g.
    another storage policy) gets the insert instead, right even after some partitions were
    attached (their rows are indexed first)."""
    before = int(client.command("SELECT count() FROM raw.order_filled"))
    keys = _keys(client, stage)
    hits = None
    try:
        hits = _find_stored(client, keys)
        resent, conflicting, examples = 0, 0, []
        if client.command(f"SELECT count() FROM {hits}"):
            resent, conflicting, examples = _resends(client, stage, keys, hits)
        route = "filtered"
        if resent == 0 and attach:
            try:
                _attach(client, stage)
                route = "attached"
            except Exception as exc:
                log.warning(
                    "attach refused, inserting instead",
                    extra={"ctx": {"file": label, "error": str(exc).splitlines()[0][:300]}},
                )
                sync(client)  # what was attached before the refusal counts as stored now
                _find_stored(client, keys, hits)
        if route == "filtered":
            _insert_new(client, stage, hits)
        _index(client, keys, hits if route == "filtered" else None)
        mark_synced(client)
    finally:
        for table in (keys, hits):
            if table:
                client.command(f"DROP TABLE IF EXISTS {table}")
    rows_new = int(client.command("SELECT count() FROM raw.order_filled")) - before
    return Publication(route, rows_new, resent, conflicting, examples)


def repeated_conflicts(client: Client, stage: str) -> tuple[int, list[str]]:
    """Ids a delivery itself repeats with different content (before its first-of-each-id
    pass): how many, and examples."""
    count, examples = client.query(
        f"SELECT count(), groupArray({EXAMPLES})(id) FROM "
        f"(SELECT id FROM {stage} GROUP BY id HAVING uniqExact({CONTENT_HASH}) > 1)"
    ).result_rows[0]
    return int(count), list(examples)
