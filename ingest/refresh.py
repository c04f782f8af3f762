"""Reference data from Goldsky: the token map and the market resolutions.

* `refresh_token_map`: the orderbook subgraph's `marketDatas` (outcome token id ->
  condition, outcome index) into `raw.token_map`, so fills map to conditions even for
  tokens that markets.jsonl does not list (int_token_conditions uses it as a fallback).
* `refresh_resolutions`: the pnl-subgraph's `conditions` (payout numerators) rebuilt into
  `DATA_DIR/expanded_resolution_map.json` in the platform's format, written atomically so a
  reader never sees half a file; the nightly `load_reference` step then loads it.

Both page through the entity by `id_gt` (the subgraphs cap `first` at 1000 and `skip` at
5000) through the same rate-limited, retrying client as the fills (ingest/subgraph.py).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clickhouse_connect.driver.client import Client

from ingest import stage_tables
from ingest.goldsky_client import GoldskyError, MalformedPage, RetryBudget, SubgraphClient
from ingest.reference_contract import RESOLUTION_PAYOUTS, outcome_of_payouts
from ingest.tables import TOKEN_MAP, ensure_tables
from pipeline import warehouse
from pipeline.config import Settings
from pipeline.names import MARKETS, RESOLUTION_MAP
from pipeline.steps import RunContext, SkipStep, StepResult

log = logging.getLogger(__name__)

UTC = dt.UTC
# The subgraph's ids may come in any case; they are stored lower-case.
SUBGRAPH_CONDITION_ID = re.compile(r"^0x[0-9a-fA-F]{64}$")
TOKEN_ID = re.compile(r"^[0-9]{1,78}$")

TOKENS_QUERY = """
query Tokens($first: Int!, $where: MarketData_filter!) {
  marketDatas(first: $first, orderBy: id, orderDirection: asc, where: $where) {
    id
    condition
    outcomeIndex
  }
}
""".strip()

CONDITIONS_QUERY = """
query Conditions($first: Int!, $where: Condition_filter!) {
  conditions(first: $first, orderBy: id, orderDirection: asc, where: $where) {
    id
    payoutNumerators
    payoutDenominator
  }
}
""".strip()


def iter_entities(
    client: SubgraphClient, query: str, root: str, page_size: int = 1000
) -> Iterator[list[dict]]:
    """Every entity of `root`, a page at a time, following the server's id order."""
    last: str | None = None
    page = 0
    while True:
        page += 1
        data = client.query(query, {"first": page_size, "where": {"id_gt": last} if last else {}})
        rows = data.get(root)
        if not isinstance(rows, list) or not all(
            isinstance(r, dict) and isinstance(r.get("id"), str) for r in rows
        ):
            raise MalformedPage(f"{client.label}: {root} page {page}: expected a list of objects with ids")
        if rows:
            yield rows
        if len(rows) < page_size:
            return
        last = rows[-1]["id"]


# --- token map -------------------------------------------------------------------------------


def token_rows(rows: list[dict], fetched_at: dt.datetime) -> list[list[Any]]:
    out = []
    for r in rows:
        token, cond, index = r.get("id"), r.get("condition"), r.get("outcomeIndex")
        if not isinstance(token, str) or not TOKEN_ID.match(token):
            raise MalformedPage(f"marketDatas: id {token!r} is not a decimal token id")
        if not isinstance(cond, str) or not SUBGRAPH_CONDITION_ID.match(cond):
            raise MalformedPage(f"marketDatas {token[:20]}: condition {cond!r} is not 0x + 64 hex")
        if index is not None and not (str(index).isdigit() and int(index) < 256):
            raise MalformedPage(f"marketDatas {token[:20]}: outcomeIndex {index!r} is not a small integer")
        out.append(
            [token, cond.lower(), int(index) if index is not None else None, "orderbook-subgraph", fetched_at]
        )
    return out


def refresh_token_map(
    settings: Settings, ch: Client, client: SubgraphClient | None = None, budget: RetryBudget | None = None
) -> int:
    """Replace raw.token_map with the subgraph's marketDatas; returns the tokens stored. The
    table is swapped only once every page has arrived, so a failed fetch keeps the old map."""
    own = client is None
    client = client or SubgraphClient.from_settings(
        settings, budget=budget or RetryBudget.from_settings(settings)
    )
    fetched_at = dt.datetime.now(UTC)
    stage = stage_tables.stage_name("token_map")
    ch.command(TOKEN_MAP.replace("raw.token_map", stage, 1))
    total = 0
    try:
        for rows in iter_entities(client, TOKENS_QUERY, "marketDatas", settings.goldsky_page_size):
            batch = token_rows(rows, fetched_at)
            ch.insert(
                stage,
                batch,
                column_names=["token_id", "condition_id", "outcome_index", "source", "fetched_at"],
            )
            total += len(batch)
        ch.command(f"EXCHANGE TABLES {stage} AND raw.token_map")
    finally:
        ch.command(f"DROP TABLE IF EXISTS {stage}")
        if own:
            client.close()
    return total


# --- resolutions ------------------------------------------------------------------------------


def _int(value: Any, what: str, cid: str) -> int:
    if isinstance(value, bool) or not str(value).lstrip("-").isdigit():
        raise MalformedPage(f"conditions {cid}: {what} {value!r} is not an integer")
    return int(value)


def resolution_entry(cond: dict, market_ids: dict[str, str], fetched_at: str) -> dict[str, Any]:
    """One map entry. YES, NO or 50-50 for a binary payout of [1, 0], [0, 1] or [1, 1] (at any
    common scale, RESOLUTION_PAYOUTS); every other payout (unresolved, an uneven split, more
    outcomes) has a null outcome and payouts."""
    cid = cond.get("id")
    if not isinstance(cid, str) or not SUBGRAPH_CONDITION_ID.match(cid):
        raise MalformedPage(f"conditions: id {cid!r} is not 0x + 64 hex")
    cid = cid.lower()
    nums = cond.get("payoutNumerators") or []
    if not isinstance(nums, list):
        raise MalformedPage(f"conditions {cid}: payoutNumerators {nums!r} is not a list")
    numerators = [_int(n, "payout numerator", cid) for n in nums]
    denominator = _int(cond.get("payoutDenominator") or 0, "payoutDenominator", cid)
    outcome = outcome_of_payouts(numerators, denominator)
    payouts: tuple[int | None, int | None] = RESOLUTION_PAYOUTS[outcome] if outcome else (None, None)
    return {
        "condition_id": cid,
        "market_id": market_ids.get(cid, "unknown"),
        "resolved_outcome": outcome,
        "payout_yes": payouts[0],
        "payout_no": payouts[1],
        "resolved_at": fetched_at if outcome else None,  # like the original: when it was fetched
    }


def market_ids(data_dir: Path) -> dict[str, str]:
    """condition id -> market id from markets.jsonl, when there is one (bad lines skipped:
    the reference load reports them)."""
    path = data_dir / MARKETS
    out: dict[str, str] = {}
    if not path.exists():
        return out
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            try:
                m = json.loads(line)
            except json.JSONDecodeError:
                continue
            if (
                isinstance(m, dict)
                and isinstance(m.get("condition_id"), str)
                and m.get("market_id") is not None
            ):
                out.setdefault(m["condition_id"].lower(), str(m["market_id"]))
    return out


def write_atomically(path: Path, text: str) -> None:
    """Write to a temporary file beside `path`, then rename over it: readers see the old
    file or the new one, never a part."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@dataclass
class ResolutionRefresh:
    path: Path
    total: int
    resolved: int
    last_updated: str


def refresh_resolutions(
    settings: Settings,
    client: SubgraphClient | None = None,
    now: dt.datetime | None = None,
    budget: RetryBudget | None = None,
) -> ResolutionRefresh:
    """Rebuild DATA_DIR/expanded_resolution_map.json from the pnl-subgraph's conditions."""
    now = now or dt.datetime.now(UTC)
    stamp = now.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    own = client is None
    client = client or SubgraphClient.from_settings(
        settings, settings.goldsky_pnl_subgraph_url, budget=budget or RetryBudget.from_settings(settings)
    )
    markets = market_ids(settings.data_dir)
    try:
        entries = [
            resolution_entry(c, markets, stamp)
            for rows in iter_entities(client, CONDITIONS_QUERY, "conditions", settings.goldsky_page_size)
            for c in rows
        ]
    finally:
        if own:
            client.close()
    path = settings.data_dir / RESOLUTION_MAP
    if not entries and path.exists():
        raise GoldskyError(f"{client.label} returned no conditions: keeping the existing {path.name}")
    resolved = sum(e["resolved_outcome"] is not None for e in entries)
    doc = {
        "total_conditions": len(entries),
        "resolved_conditions": resolved,
        "last_updated": stamp,
        "resolutions": entries,
    }
    write_atomically(path, json.dumps(doc, indent=2) + "\n")
    return ResolutionRefresh(path, len(entries), resolved, stamp)


# --- pipeline step ----------------------------------------------------------------------------


def step_refresh_resolutions(ctx: RunContext) -> StepResult:
    """Nightly: token map into raw.token_map, resolution map into DATA_DIR (loaded by the
    load_reference step that follows). Only for GOLDSKY_SOURCE=subgraph."""
    settings = ctx.settings
    if settings.goldsky_source != "subgraph":
        raise SkipStep(
            f"GOLDSKY_SOURCE={settings.goldsky_source}: resolutions come from the "
            "files in DATA_DIR (set GOLDSKY_SOURCE=subgraph to refresh them from Goldsky)"
        )
    details: dict[str, Any] = {}
    errors: list[str] = []
    budget = RetryBudget.from_settings(settings)  # one for the step: both endpoints share it
    try:
        with warehouse.connect(settings) as ch:
            ensure_tables(ch)
            details["tokens"] = refresh_token_map(settings, ch, budget=budget)
    except GoldskyError as exc:
        errors.append(f"token map: {exc}")
    try:
        res = refresh_resolutions(settings, now=ctx.started_at, budget=budget)
        details.update(
            resolution_map=str(res.path),
            conditions=res.total,
            resolved=res.resolved,
            last_updated=res.last_updated,
        )
    except GoldskyError as exc:
        errors.append(f"resolutions: {exc}")
    fetched = (
        f"{details.get('tokens', 'no')} tokens, {details.get('conditions', 'no')} "
        f"conditions ({details.get('resolved', 0)} resolved)"
    )
    result = StepResult(
        rows_in=details.get("conditions"),
        rows_out=details.get("resolved"),
        details=details,
        # a failure says why first: "no tokens" after an unreachable endpoint is no news
        message=("; ".join(errors) + (f" (refreshed: {fetched})" if details else "")) if errors else fetched,
    )
    if errors:
        result.status, result.error = "failed", "; ".join(errors)
        result.warnings += errors
    return result
