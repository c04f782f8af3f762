"""The data-quality checkpoint: Great Expectations suites over frames queried from ClickHouse.

The suites, the validation definitions and the checkpoint `nightly` live in the repository
as a GX file context (health/gx/). Each run:

1. queries one small pandas frame per suite through clickhouse-connect, with the
   aggregation done in SQL (per-day counts and duplicate counts of the recent fills, the
   resolution map grouped by outcome and payout pair, per-mart key counts), never all rows;
2. copies the context into the run folder (`<run>/gx/`), writes the frames there as Parquet
   (`gx/inputs/*.parquet`: the exact inputs of the validation stay with the run) and points
   the context's pandas filesystem datasource at them;
3. runs the checkpoint with the thresholds as suite parameters, which stores the validation
   results and builds the Data Docs inside that copy;
4. writes `<run>/gx_results.json`: a compact summary the healthcheck and the report read,
   and `<run>/gx/data_docs.html`: every expectation and its result on one self-contained
   page (GX's own Data Docs load their styles and result list from CDNs, so offline they
   show an unstyled page with an empty list).

Expectations have a severity: `warning` ones (the 24 h fill freshness, shared lookup market
ids, an empty mart) never fail the step; `critical` ones do, and are named in its `error`.
The SQL route through a chDB SQLAlchemy dialect is deliberately not used (see
shared STACK_NOTES: it crashes at exit and needs patches).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import shutil
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline import history, warehouse
from pipeline.config import PROJECT_ROOT, HealthSettings, Settings
from pipeline.redact import redact, redact_obj
from pipeline.steps import RunContext, StepResult

log = logging.getLogger(__name__)

GX_SOURCE_DIR = PROJECT_ROOT / "health" / "gx"
CHECKPOINT = "nightly"
DATASOURCE = "warehouse_frames"
SUITES = ("fills", "resolutions", "lookups", "marts")
RESULTS_FILE = "gx_results.json"

# Mart -> its key columns (the grain dbt's tests declare in models/marts/_marts.yml).
MART_KEYS = {
    "fct_wallet_positions": ("wallet", "token_id"),
    "fct_resolution_outcomes": ("wallet", "condition_id"),
    "fct_wallet_category_pnl": ("wallet", "category"),
    "dim_markets": ("condition_id",),
    "fct_wallet_daily_pnl": ("wallet", "day"),
    "fct_leaderboard": ("time_window", "category", "wallet"),
}
# Key columns where '' is a value, not a missing key: the leaderboard's "all categories".
BLANK_IS_A_VALUE = {"fct_leaderboard": ("category",)}
# Columns that hold a position: negative (or wrapped below zero in an unsigned column).
POSITION_COLUMNS = {"fct_wallet_positions": ("amount", "open_amount")}
WRAPPED = "9223372036854775808"  # 2^63: an unsigned amount this large went below zero

FILLS_SQL = """
WITH (SELECT max(timestamp) FROM raw.order_filled) AS newest
SELECT toDate(timestamp)                                              AS day,
       count()                                                        AS fills,
       count() - uniqExact(id)                                        AS duplicate_ids,
       countIf(maker_amount_filled = 0 OR taker_amount_filled = 0)    AS non_positive_amounts,
       countIf((maker_asset_id = '0') + (taker_asset_id = '0') != 1)  AS collateral_sides_wrong,
       max(timestamp)                                                 AS newest_fill,
       dateDiff('millisecond', max(timestamp), {as_of:DateTime64(3, 'UTC')}) / 3600000 AS age_hours
FROM raw.order_filled
WHERE timestamp > newest - toIntervalDay({days:UInt32})
GROUP BY day
ORDER BY day
"""

# The map's entries grouped by shape; `resolved` counts the conditions the models resolve
# (dim_markets.is_resolved, the one place that decides: 50-50 too once the models accept it)
# and `accepted` says whether the group's outcome and payouts are ones the models resolve.
RESOLUTIONS_SQL = """
WITH resolved_conditions AS ({resolved_source})
SELECT resolved_outcome,
       payout_yes,
       payout_no,
       concat(substring(condition_id, 1, 2),
              replaceRegexpAll(substring(condition_id, 3), '[0-9a-f]', 'h'))  AS id_shape,
       count()                                                               AS entries,
       concat(ifNull(resolved_outcome, 'null'), ':', ifNull(toString(payout_yes), 'null'), ':',
              ifNull(toString(payout_no), 'null'))                           AS payout_pattern,
       uniqExactIf(condition_id, condition_id IN resolved_conditions)        AS resolved,
       resolved = entries                                                    AS accepted
FROM raw.resolutions
GROUP BY resolved_outcome, payout_yes, payout_no, id_shape
ORDER BY entries DESC
"""
RESOLVED_FROM_MODELS = "SELECT condition_id FROM analytics.dim_markets WHERE is_resolved"
NOTHING_BUILT = "SELECT '' AS condition_id WHERE 0"


LOOKUPS_SQL = """
WITH (SELECT countIf(market_id IS NOT NULL) FROM raw.market_id_lookups) AS with_id
SELECT assumeNotNull(market_id) AS market_id,
       count()                  AS conditions,
       conditions / with_id     AS share,
       with_id                  AS rows_with_market_id
FROM raw.market_id_lookups
WHERE market_id IS NOT NULL
GROUP BY market_id
ORDER BY conditions DESC, market_id
LIMIT 20
"""


def _mart_sql(mart: str) -> str:
    keys = MART_KEYS[mart]
    blank_ok = BLANK_IS_A_VALUE.get(mart, ())
    null_keys = " OR ".join(
        f"isNull({k})" if k in blank_ok else f"isNull({k}) OR toString({k}) = ''" for k in keys
    )
    negative = " OR ".join(f"{c} < 0 OR {c} >= {WRAPPED}" for c in POSITION_COLUMNS.get(mart, ()))
    return (
        f"SELECT count() AS rows, countIf({null_keys}) AS null_keys, "
        f"count() - uniqExact({', '.join(keys)}) AS duplicate_keys, "
        f"{f'countIf({negative})' if negative else '0'} AS negative_positions "
        f"FROM analytics.{mart}"
    )


FILL_COLUMNS = [
    "day",
    "fills",
    "duplicate_ids",
    "non_positive_amounts",
    "collateral_sides_wrong",
    "newest_fill",
    "age_hours",
]
RESOLUTION_COLUMNS = [
    "resolved_outcome",
    "payout_yes",
    "payout_no",
    "id_shape",
    "entries",
    "payout_pattern",
    "resolved",
    "accepted",
]
LOOKUP_COLUMNS = ["market_id", "conditions", "share", "rows_with_market_id"]


def query_frames(
    ch, hs: HealthSettings, as_of: dt.datetime
) -> tuple[dict[str, pd.DataFrame], dict[str, str]]:
    """One frame per suite (aggregated in SQL), and the suites skipped with their reason."""

    def exists(db: str, table: str) -> bool:
        return warehouse.table_exists(ch, db, table)

    frames: dict[str, pd.DataFrame] = {}
    skipped: dict[str, str] = {}
    if exists("raw", "order_filled"):
        frames["fills"] = warehouse.query_frame(
            ch, FILLS_SQL, FILL_COLUMNS, {"as_of": as_of, "days": hs.gx_window_days}
        )
    else:  # no table: an empty window, which the fills suite fails
        frames["fills"] = pd.DataFrame(columns=FILL_COLUMNS)
    if exists("raw", "resolutions"):
        source = RESOLVED_FROM_MODELS if exists("analytics", "dim_markets") else NOTHING_BUILT
        frames["resolutions"] = warehouse.query_frame(
            ch, RESOLUTIONS_SQL.format(resolved_source=source), RESOLUTION_COLUMNS
        )
    else:
        frames["resolutions"] = pd.DataFrame(columns=RESOLUTION_COLUMNS)
    if exists("raw", "market_id_lookups"):
        frames["lookups"] = warehouse.query_frame(ch, LOOKUPS_SQL, LOOKUP_COLUMNS)
    else:
        skipped["lookups"] = "raw.market_id_lookups does not exist (no lookup file loaded yet)"
    marts = []
    for mart in MART_KEYS:
        if exists("analytics", mart):
            rows, null_keys, dups, negative = ch.query(_mart_sql(mart)).result_rows[0]
            marts.append(
                {
                    "mart": mart,
                    "exists": True,
                    "rows": int(rows),
                    "null_keys": int(null_keys),
                    "duplicate_keys": int(dups),
                    "negative_positions": int(negative),
                }
            )
        else:
            marts.append(
                {
                    "mart": mart,
                    "exists": False,
                    "rows": None,
                    "null_keys": None,
                    "duplicate_keys": None,
                    "negative_positions": None,
                }
            )
    frames["marts"] = pd.DataFrame(marts).astype(
        {"rows": "Int64", "null_keys": "Int64", "duplicate_keys": "Int64", "negative_positions": "Int64"}
    )
    return {k: plain_frame(v) for k, v in frames.items()}, skipped


def plain_frame(df: pd.DataFrame) -> pd.DataFrame:
    """Parquet- and GX-friendly dtypes: numbers as numbers (nullable integers stay integers)."""
    df = df.copy()
    for col in df.columns:
        values = df[col].dropna()
        if df[col].dtype != object or not len(values):
            continue
        if all(isinstance(v, bool) for v in values):
            df[col] = df[col].astype("boolean")
        elif all(isinstance(v, int) for v in values):
            df[col] = df[col].astype("Int64") if df[col].isna().any() else pd.to_numeric(df[col])
        elif all(isinstance(v, (int, float, Decimal)) for v in values):
            df[col] = pd.to_numeric(df[col].map(lambda v: None if v is None else float(v)))
    return df


def suite_parameters(hs: HealthSettings) -> dict[str, float]:
    return {
        "fills_warn_hours": hs.trades_warn_hours,
        "fills_fail_hours": hs.trades_critical_hours,
        "min_resolved_conditions": hs.min_resolved_conditions,
        "lookups_max_share": hs.lookups_max_share,
    }


def prepare_context_dir(target: Path, frames: dict[str, pd.DataFrame], skipped: dict[str, str]) -> Path:
    """Copy the committed context to `target`, write the frames, aim the datasource at them."""
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(GX_SOURCE_DIR, target, ignore=shutil.ignore_patterns("uncommitted", "__pycache__"))
    inputs = target / "inputs"
    inputs.mkdir(parents=True, exist_ok=True)
    for name, frame in frames.items():
        frame.to_parquet(inputs / f"{name}.parquet", index=False)
    config = target / "great_expectations.yml"
    text = config.read_text()
    marker = "    base_directory: inputs\n"
    if marker not in text:
        raise RuntimeError(f"{config}: expected the line {marker.strip()!r} to rewrite")
    config.write_text(text.replace(marker, f"    base_directory: {json.dumps(str(inputs))}\n", 1))
    if skipped:
        cp_path = target / "checkpoints" / f"{CHECKPOINT}.json"
        cp = json.loads(cp_path.read_text())
        cp["validation_definitions"] = [v for v in cp["validation_definitions"] if v["name"] not in skipped]
        cp_path.write_text(json.dumps(cp, indent=2))
    return target


def _gx():
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx  # ~4 s the first time in a process

    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    return gx


def _jsonable(value: Any) -> Any:
    def default(v: Any) -> Any:
        if hasattr(v, "item"):
            return v.item()
        if isinstance(v, (dt.datetime, dt.date, pd.Timestamp)):
            return v.isoformat()
        return str(v)

    return json.loads(json.dumps(value, default=default))


def _exception_message(info: Any) -> str | None:
    """GX reports an expectation that could not be computed either flat or per metric."""
    if not isinstance(info, dict):
        return None
    if info.get("raised_exception"):
        return info.get("exception_message")
    for value in info.values():
        if isinstance(value, dict) and value.get("raised_exception"):
            return value.get("exception_message")
    return None


def summarize(checkpoint_result, skipped: dict[str, str]) -> list[dict[str, Any]]:
    suites = []
    for vr in checkpoint_result.run_results.values():
        failures = []
        for er in vr.results:
            if er.success:
                continue
            cfg = er.expectation_config
            result = er.result or {}
            observed = result.get("observed_value")
            if observed is None and "partial_unexpected_list" in result:
                observed = {
                    "unexpected_count": result.get("unexpected_count"),
                    "unexpected_values": result.get("partial_unexpected_list", [])[:10],
                }
            error = _exception_message(er.exception_info)
            failures.append(
                {
                    "expectation": cfg.type,
                    "column": cfg.kwargs.get("column"),
                    "severity": str(getattr(cfg.severity, "value", cfg.severity)),
                    "description": cfg.description,
                    "observed": observed,
                    "kwargs": {k: v for k, v in cfg.kwargs.items() if k not in ("column", "batch_id")},
                    **({"error": error} if error else {}),
                }
            )
        critical = [f for f in failures if f["severity"] == "critical"]
        stats = vr.statistics
        suites.append(
            {
                "suite": vr.suite_name,
                "status": "failed" if critical else "warning" if failures else "passed",
                "success": bool(vr.success),
                "evaluated": int(stats.get("evaluated_expectations", 0)),
                "successful": int(stats.get("successful_expectations", 0)),
                "failures": failures,
            }
        )
    suites.sort(key=lambda s: SUITES.index(s["suite"]) if s["suite"] in SUITES else 99)
    suites += [
        {
            "suite": name,
            "status": "skipped",
            "reason": reason,
            "success": True,
            "evaluated": 0,
            "successful": 0,
            "failures": [],
        }
        for name, reason in skipped.items()
    ]
    return _jsonable(suites)


def run_quality(
    settings: Settings, folder: Path, *, as_of: dt.datetime, run_id: str, health: HealthSettings | None = None
) -> dict[str, Any]:
    """Query, validate, store: returns (and writes) the summary `<folder>/gx_results.json`."""
    hs = health or settings.health
    started = time.monotonic()
    with warehouse.connect(settings) as ch:
        frames, skipped = query_frames(ch, hs, as_of)
    folder.mkdir(parents=True, exist_ok=True)
    context_dir = prepare_context_dir(folder / "gx", frames, skipped)
    gx = _gx()
    context = gx.get_context(mode="file", project_root_dir=str(folder), cloud_mode=False)
    checkpoint = context.checkpoints.get(CHECKPOINT)
    params = suite_parameters(hs)
    result = checkpoint.run(
        expectation_parameters=params,
        run_id=gx.core.run_identifier.RunIdentifier(run_name=run_id, run_time=dt.datetime.now(dt.UTC)),
    )
    suites = summarize(result, skipped)
    statuses = [s["status"] for s in suites]
    status = "failed" if "failed" in statuses else "warning" if "warning" in statuses else "success"
    gx_site = context_dir / "uncommitted" / "data_docs" / "local_site" / "index.html"
    docs = write_offline_docs(
        context_dir / OFFLINE_DOCS, run_id, status, expectation_results(result, skipped), params
    )
    summary = {
        "run_id": run_id,
        "generated_at": dt.datetime.now(dt.UTC).isoformat(),
        "as_of": as_of.isoformat(),
        "status": status,
        "success": status != "failed",
        "failed_critical": sum(f["severity"] == "critical" for s in suites for f in s["failures"]),
        "failed_warning": sum(f["severity"] == "warning" for s in suites for f in s["failures"]),
        "expectation_parameters": params,
        "suites": suites,
        "frames": {
            name: {"rows": len(df), "file": f"gx/inputs/{name}.parquet"} for name, df in frames.items()
        },
        "data_docs": str(docs.relative_to(folder)),
        # GX's own site: its styles and result list come from CDNs, so it needs the internet
        "data_docs_gx": str(gx_site.relative_to(folder)) if gx_site.exists() else None,
        "seconds": round(time.monotonic() - started, 3),
    }
    (folder / RESULTS_FILE).write_text(json.dumps(redact_obj(summary), indent=2))
    return summary


# --- Data Docs that work offline --------------------------------------------------------------

OFFLINE_DOCS = "data_docs.html"

_DOCS_STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px;color:#1f2328}
h1{font-size:22px}h2{font-size:17px;margin-top:28px}
table{border-collapse:collapse;width:100%;margin:8px 0 16px}
th,td{border:1px solid #d0d7de;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f6f8fa}code{font:12px ui-monospace,monospace;white-space:pre-wrap;word-break:break-all}
.b{color:#fff;border-radius:4px;padding:1px 7px;font-weight:600;font-size:12px}
.passed,.success{background:#1a7f37}.warning{background:#9a6700}.failed{background:#cf222e}
.skipped{background:#57606a}nav a{margin-right:12px}
"""


def expectation_results(checkpoint_result, skipped: dict[str, str]) -> dict[str, Any]:
    """Every expectation of every suite with its outcome (passed ones included), for the
    offline Data Docs."""
    suites: dict[str, Any] = {}
    for vr in checkpoint_result.run_results.values():
        rows = []
        for er in vr.results:
            cfg = er.expectation_config
            result = er.result or {}
            observed = result.get("observed_value")
            if observed is None and "unexpected_count" in result:
                observed = {
                    "unexpected_count": result.get("unexpected_count"),
                    "unexpected_values": result.get("partial_unexpected_list", [])[:10],
                }
            severity = str(getattr(cfg.severity, "value", cfg.severity))
            rows.append(
                {
                    "expectation": cfg.type,
                    "column": cfg.kwargs.get("column"),
                    "severity": severity,
                    "description": cfg.description,
                    "status": "passed" if er.success else "failed" if severity == "critical" else "warning",
                    "observed": observed,
                    "error": _exception_message(er.exception_info),
                    "kwargs": {k: v for k, v in cfg.kwargs.items() if k not in ("column", "batch_id")},
                }
            )
        suites[vr.suite_name] = {"rows": rows}
    for name, reason in skipped.items():
        suites[name] = {"rows": [], "skipped": reason}
    ordered = sorted(suites, key=lambda n: SUITES.index(n) if n in SUITES else 99)
    return _jsonable({name: suites[name] for name in ordered})


def write_offline_docs(
    path: Path, run_id: str, status: str, suites: dict[str, Any], params: dict[str, float]
) -> Path:
    """One self-contained HTML page of the validation: inline styles, no scripts, nothing
    fetched from elsewhere, so it opens the same with or without a network."""
    from html import escape

    def badge(state: str) -> str:
        return f'<span class="b {escape(state)}">{escape(state.upper())}</span>'

    def cell(value: Any) -> str:
        if value is None or value == "" or value == {}:
            return ""
        text = value if isinstance(value, str) else json.dumps(value, default=str)
        return f"<code>{escape(text)}</code>"

    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>Data quality: run {escape(run_id)}</title><style>{_DOCS_STYLE}</style></head><body>",
        f"<h1>Data quality checkpoint {badge(status)}</h1>",
        f"<p>Run <code>{escape(run_id)}</code>; suite parameters {cell(params)}. "
        "Written by the pipeline from Great Expectations' results; readable offline.</p>",
        "<nav>" + "".join(f'<a href="#{escape(n)}">{escape(n)}</a>' for n in suites) + "</nav>",
    ]
    for name, suite in suites.items():
        rows = suite["rows"]
        passed = sum(r["status"] == "passed" for r in rows)
        state = "skipped" if "skipped" in suite else worst_state(r["status"] for r in rows)
        parts.append(f'<h2 id="{escape(name)}">Suite {escape(name)} {badge(state)}</h2>')
        if "skipped" in suite:
            parts.append(f"<p>Skipped: {escape(suite['skipped'])}</p>")
            continue
        parts.append(f"<p>{passed} of {len(rows)} expectations passed.</p>")
        parts.append(
            "<table><tr><th>status</th><th>expectation</th><th>column</th><th>severity</th>"
            "<th>what</th><th>observed</th><th>arguments</th></tr>"
        )
        for r in rows:
            observed = r["observed"] if r["observed"] is not None else r.get("error")
            parts.append(
                f"<tr><td>{badge(r['status'])}</td><td><code>{escape(r['expectation'])}</code></td>"
                f"<td>{escape(r['column'] or '')}</td><td>{escape(r['severity'])}</td>"
                f"<td>{escape(r['description'] or '')}</td><td>{cell(observed)}</td><td>{cell(r['kwargs'])}</td></tr>"
            )
        parts.append("</table>")
    parts.append("</body></html>\n")
    path.write_text(redact("".join(parts)), encoding="utf-8")
    return path


def worst_state(states) -> str:
    states = set(states)
    return next((s for s in ("failed", "warning") if s in states), "passed")


def _describe_failure(suite: str, f: dict[str, Any]) -> str:
    observed = f.get("observed")
    shown = json.dumps(observed, default=str) if observed is not None else f.get("error", "?")
    column = f" on {f['column']}" if f.get("column") else ""
    return f"{suite}: {f['expectation']}{column} ({f.get('description') or ''}; observed {shown})"


def step_quality_checkpoint(ctx: RunContext) -> StepResult:
    """Pipeline step (after dbt): run the GX checkpoint, store results and Data Docs with the run.

    Fails when a fail-level (critical) expectation fails; warn-level failures are warnings.
    """
    folder = history.run_folder(ctx.settings, ctx.run_id, ctx.started_at.isoformat())
    summary = run_quality(ctx.settings, folder, as_of=ctx.started_at, run_id=ctx.run_id)
    evaluated = sum(s["evaluated"] for s in summary["suites"])
    passed = sum(s["successful"] for s in summary["suites"])
    result = StepResult(
        rows_in=sum(f["rows"] for f in summary["frames"].values()),
        message=f"{passed}/{evaluated} expectations passed"
        + (f", {summary['failed_warning']} warning(s)" if summary["failed_warning"] else "")
        + (f", {summary['failed_critical']} failed" if summary["failed_critical"] else "")
        + "".join(f"; {s['suite']} skipped" for s in summary["suites"] if s["status"] == "skipped"),
        details={
            "results": str(folder / RESULTS_FILE),
            "data_docs": summary["data_docs"],
            "suites": {s["suite"]: s["status"] for s in summary["suites"]},
            "seconds_gx": summary["seconds"],
        },
    )
    for s in summary["suites"]:
        for f in s["failures"]:
            if f["severity"] != "critical":
                result.warnings.append("quality warning: " + _describe_failure(s["suite"], f))
    critical = [
        _describe_failure(s["suite"], f)
        for s in summary["suites"]
        for f in s["failures"]
        if f["severity"] == "critical"
    ]
    if critical:
        result.status = "failed"
        result.error = "; ".join(critical)
    return result
