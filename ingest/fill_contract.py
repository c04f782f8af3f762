"""The fill contract: what a row of `polymarket.order_filled` must hold, and how it is stored.

Files (ingest/goldsky_files.py) and subgraph pages (ingest/subgraph_writer.py) are staged as
strings and judged by the same SQL rules, then converted by the same expressions, so a fill is
accepted and stored the same from either source. The rules are SQL so that the engine checks
every row of a file in the one pass that writes it.

Plausibility is part of the contract, stated here once (docs/data-contract.md):

* a timestamp lies between the exchange's launch (EXCHANGE_LAUNCH) and FUTURE_SLACK after the
  load started: Polymarket's CTF Exchange was deployed at Polygon block 33,605,403 in late
  September 2022, so an earlier fill is a unit error (a year read as seconds, `2026`, would
  be 1970), and a later one is too (99999999999 seconds is the year 5138; a microsecond value
  read as milliseconds the year 57,900). Either would make freshness checks lie for ever.
* an id is not blank after trimming; ids are stored trimmed and lower-case (they are hex), so
  the same fill spelled another way is the same id.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from clickhouse_connect.driver.client import Client

# The first day on which a fill can exist: the CTF Exchange (0x4bfb41d5...) was deployed at
# Polygon block 33,605,403 (late September 2022); the bound keeps a few weeks' margin.
EXCHANGE_LAUNCH = dt.datetime(2022, 9, 1, tzinfo=dt.UTC)
# How far after the start of a load a timestamp may lie (clock skew between Goldsky's
# indexer and this machine); anything later is not a fill that has happened.
FUTURE_SLACK = dt.timedelta(hours=1)
# Digit strings above this are milliseconds, below it seconds (10^11 s is the year 5138).
MILLIS_FROM = 100_000_000_000

# Columns of the 1.1.0 dataset that the pipeline needs; others (vid, chain_id, _gs_*) are
# tolerated and ignored.
REQUIRED_COLUMNS = (
    "id",
    "timestamp",
    "transaction_hash",
    "order_hash",
    "maker",
    "taker",
    "maker_asset_id",
    "taker_asset_id",
    "maker_amount_filled",
    "taker_amount_filled",
)
OPTIONAL_COLUMNS = ("fee", "block_number")
# The 2.0.0 dataset (v2 exchanges) names the maker order's side (0 BUY, 1 SELL) and the
# outcome token instead of the two asset ids; `builder` and `metadata` are not kept.
V2_COLUMNS = ("side", "token_id")
REQUIRED_COLUMNS_V2 = (
    tuple(c for c in REQUIRED_COLUMNS if c not in ("maker_asset_id", "taker_asset_id")) + V2_COLUMNS
)
STAGE_COLUMNS = REQUIRED_COLUMNS + OPTIONAL_COLUMNS + V2_COLUMNS
REQUIRED_BY_VERSION = {"v1": REQUIRED_COLUMNS, "v2": REQUIRED_COLUMNS_V2}
MAX_REPORTED_ERRORS = 20


def plausible_window(now: dt.datetime | None = None) -> tuple[dt.datetime, dt.datetime]:
    """The timestamps a fill may have when loaded at `now` (default: the wall clock)."""
    now = now or dt.datetime.now(dt.UTC)
    return EXCHANGE_LAUNCH, now.astimezone(dt.UTC) + FUTURE_SLACK


def _ms(moment: dt.datetime) -> int:
    return int(moment.timestamp() * 1000)


# The id as stored: trimmed of white space and lower-case.
NORMALIZED_ID = "lower(trim(BOTH ' \\t\\r\\n' FROM id))"
# v2 side -> 0 (BUY) / 1 (SELL) / -1 (anything else). The dataset's UInt8 arrives as '0'/'1'.
SIDE_EXPR = "multiIf(upper(trim(side)) IN ('0', 'BUY'), 0, upper(trim(side)) IN ('1', 'SELL'), 1, -1)"
# The timestamp as unix milliseconds (NULL when it is neither a number nor a date): digit
# strings above MILLIS_FROM are milliseconds, others seconds; at most 18 digits, so the
# arithmetic cannot overflow (longer numbers are no time at all).
TS_MS_EXPR = (
    "if(match(timestamp, '^[0-9]{1,18}$'), "
    f"if(toUInt64(timestamp) > {MILLIS_FROM}, toInt64(timestamp), toInt64(timestamp) * 1000), "
    "if(match(timestamp, '^[0-9]+$'), NULL, "
    "toUnixTimestamp64Milli(parseDateTime64BestEffortOrNull(timestamp, 3, 'UTC'))))"
)
TS_EXPR = f"fromUnixTimestamp64Milli({TS_MS_EXPR}, 'UTC')"


def row_problem(window: tuple[dt.datetime, dt.datetime], version: str | None = None) -> str:
    """One expression that names the first broken rule of a row of strings, '' when clean.

    `version` None reads each row's `contract_version` (a stage may mix versions); a file
    has one version, and a v1 file has no side/token_id columns for the v2 rules to read."""
    lo, hi = window
    guard = "contract_version = 'v2' AND " if version is None else ""
    v2_rules = (
        "".join(f"{guard}`{c}` IS NULL, 'field {c} is missing', " for c in V2_COLUMNS)
        + f"{guard}{SIDE_EXPR} = -1, "
        "concat('side ', side, ' is not 0 (BUY) or 1 (SELL)'), "
        f"{guard}NOT match(token_id, '^[0-9]{{1,78}}$'), "
        "concat('token_id ', token_id, ' is not a decimal token id'), "
    )
    rules = (
        "".join(f"`{c}` IS NULL, 'field {c} is missing', " for c in REQUIRED_COLUMNS)
        + f"{NORMALIZED_ID} = '', 'field id is blank', "
        + f"{TS_MS_EXPR} IS NULL, concat('timestamp ', timestamp, ' is not a unix time or ISO date'), "
        + f"{TS_MS_EXPR} < {_ms(lo)}, concat('timestamp ', timestamp, ' lies before {lo:%Y-%m-%d}, "
        "when the exchange launched (unix seconds or milliseconds expected)'), "
        + f"{TS_MS_EXPR} > {_ms(hi)}, concat('timestamp ', timestamp, ' lies after "
        f"{hi.isoformat(timespec='seconds')}, more than {_slack_text()} after the load began "
        "(unix seconds or milliseconds expected)'), "
        + "".join(
            f"NOT match({c}, '^0[xX][0-9a-fA-F]{{40}}$'), concat('{c} ', {c}, ' is not an address'), "
            for c in ("maker", "taker")
        )
        + "".join(
            f"NOT match({c}, '^[0-9]{{1,78}}$'), concat('{c} ', {c}, ' is not a decimal token id'), "
            for c in ("maker_asset_id", "taker_asset_id")
        )
        + "(maker_asset_id = '0') + (taker_asset_id = '0') != 1, "
        "concat('asset pair (', maker_asset_id, ', ', taker_asset_id, ') needs exactly one \"0\"'), "
        + "".join(
            f"toUInt64OrNull({c}) IS NULL, concat('{c} ', {c}, ' is not an unsigned 64-bit integer'), "
            for c in ("maker_amount_filled", "taker_amount_filled")
        )
        + "".join(
            f"{c} IS NOT NULL AND toUInt64OrNull({c}) IS NULL, "
            f"concat('{c} ', {c}, ' is not an unsigned 64-bit integer'), "
            for c in OPTIONAL_COLUMNS
        )
    )
    # v2 rows first: their asset pair is derived from side/token_id, so name those fields
    return "multiIf(" + ("" if version == "v1" else v2_rules) + rules + "'')"


def _slack_text() -> str:
    hours = FUTURE_SLACK.total_seconds() / 3600
    return f"{hours:g} hour{'s' if hours != 1 else ''}"


# raw.order_filled's columns and the conversion of a clean row of strings to them. Files and
# subgraph pages both go through this list, so a fill is stored the same from either.
_RAW_SELECT = (
    ("id", NORMALIZED_ID),
    ("timestamp", TS_EXPR),
    ("transaction_hash", "lower(transaction_hash)"),
    ("order_hash", "lower(order_hash)"),
    ("maker", "lower(maker)"),
    ("taker", "lower(taker)"),
    ("maker_asset_id", "maker_asset_id"),
    ("taker_asset_id", "taker_asset_id"),
    ("maker_amount_filled", "toUInt64(maker_amount_filled)"),
    ("taker_amount_filled", "toUInt64(taker_amount_filled)"),
    ("fee", "toUInt64(ifNull(fee, '0'))"),
    ("block_number", "toUInt64(ifNull(block_number, '0'))"),
    ("contract_version", "contract_version"),
)
RAW_COLUMNS = tuple(name for name, _ in _RAW_SELECT)
RAW_COLUMN_LIST = ", ".join(f"`{c}`" for c in RAW_COLUMNS)
# Positional (no aliases): an alias named like a source column would replace that column
# in the query's other expressions.
RAW_EXPRESSIONS = ", ".join(expr for _, expr in _RAW_SELECT)


def problems_sql(relation: str, problem: str, limit: int) -> str:
    """The first `limit` broken rows of `relation` (row_number, problem, bad rows in all)."""
    return (
        f"SELECT row_number, problem, count() OVER () AS bad FROM "
        f"(SELECT row_number, {problem} AS problem FROM {relation}) "
        f"WHERE problem != '' ORDER BY row_number LIMIT {int(limit)}"
    )


def problem_list(rows: list[tuple[Any, Any, Any]]) -> tuple[list[str], int]:
    """'row N: why' for each broken row, and how many broken rows there are in all."""
    if not rows:
        return [], 0
    return [f"row {r[0]}: {r[1]}" for r in rows], int(rows[0][2])


# --- a staging table of strings (the subgraph's pages) --------------------------------------


def create_string_stage(client: Client, name: str, memory: bool = False) -> str:
    """An empty staging table of nullable strings named `name` (replacing what a killed run
    of the same name left behind); `memory` suits small batches (no parts to write)."""
    client.command(f"DROP TABLE IF EXISTS {name}")
    cols = ", ".join(f"`{c}` Nullable(String)" for c in STAGE_COLUMNS)
    engine = "Memory" if memory else "MergeTree ORDER BY row_number"
    client.command(
        f"CREATE TABLE {name} (row_number UInt64, {cols}, "
        f"contract_version LowCardinality(String) DEFAULT 'v1') ENGINE = {engine}"
    )
    return name


def find_problems(
    client: Client,
    stage: str,
    limit: int = MAX_REPORTED_ERRORS,
    window: tuple[dt.datetime, dt.datetime] | None = None,
) -> tuple[list[str], int]:
    """The first `limit` broken rows of a staging table of strings as 'row N: why', and how
    many there are in all."""
    problem = row_problem(window or plausible_window())
    return problem_list(client.query(problems_sql(stage, problem, limit)).result_rows)
