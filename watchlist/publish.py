"""The pipeline step that fills the strategies' watchlists in the app database.

    step_watchlist_publish(ctx) -> StepResult

1. Configuration is validated (pipeline/config.py, `WatchlistSettings`): a bad DEFAULT_MARKET_ID,
   DEFAULT_CONDITION_IDS or WATCHLIST_* value fails the step naming the variable and value.
2. Postgres: the migrations are applied (and, on sample data, the sample strategies seeded);
   the active strategies and the last publish's fills watermark are read. Postgres down is a
   failed step with a clear error.
3. ClickHouse (the client is closed before any further Postgres work): the signal wallets,
   the positions they opened since the last publish in unresolved markets, the market
   metadata. When signals cannot be computed (marts or resolutions missing), the configured
   defaults are used, else the most active unresolved markets (up to WATCHLIST_FALLBACK_SIZE
   per strategy; from the marts, else from the dbt views below them), with a warning giving
   the reason.
4. Postgres, in one transaction: market_dim refreshed from dim_markets; for each active
   strategy (its category filter and thresholds respected) the markets inserted with reason
   and metadata, never twice (ON CONFLICT DO NOTHING on (strategy_id, market_id)); entries of
   markets that resolved marked `resolved`; the publish recorded with its watermark. The
   table's trigger notifies the stream of every change at commit.
5. dbt_app (dbt-postgres) rebuilds and tests the views the API reads.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import psycopg

from pipeline import warehouse
from pipeline.config import WatchlistSettings
from pipeline.steps import FAILED, RunContext, SkipStep, StepResult
from watchlist import db, signals
from watchlist.migrations import apply_migrations, seed_sample_strategies

log = logging.getLogger(__name__)

MODE_SIGNALS, MODE_DEFAULTS, MODE_MOST_ACTIVE, MODE_NONE = "signals", "defaults", "most_active", "none"
REASONS = {MODE_SIGNALS: "signal_wallet", MODE_DEFAULTS: "default", MODE_MOST_ACTIVE: "most_active"}


@dataclass(frozen=True)
class Strategy:
    id: str
    name: str
    category_filter: tuple[str, ...] | None
    max_wallet_rank: int | None
    min_resolved_markets: int | None
    min_coverage: float | None

    def accepts_category(self, category: str | None) -> bool:
        if not self.category_filter:
            return True
        return (category or signals.UNCATEGORIZED) in self.category_filter


@dataclass(frozen=True)
class Candidate:
    """A market proposed for watchlists, with the metadata an entry records."""

    condition_id: str | None
    market_id: str
    category: str | None
    metadata: dict[str, Any]
    wallet: signals.SignalWallet | None = None
    opened_at: dt.datetime | None = None


@dataclass
class Plan:
    mode: str
    candidates: list[Candidate] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    fills_since: dt.datetime | None = None  # the earliest of since_by_strategy
    fills_watermark: dt.datetime | None = None
    since_by_strategy: dict[str, dt.datetime] = field(default_factory=dict)
    signal_wallets: int = 0
    markets: list[signals.MarketInfo] | None = None  # None: keep market_dim as it is


def _usd(base_units: int) -> str:
    """In the form of every USD string the API serves (entries' metadata are served as written)."""
    return warehouse.decimal_text(base_units, scale=6)


# --- Postgres, before ClickHouse ------------------------------------------------------------


def _prepare_postgres(url: str, seed_sample: bool) -> tuple[list[Strategy], dict[str, dt.datetime], dict]:
    with db.connect(url, autocommit=True) as conn:
        report = apply_migrations(conn)
        seeded = seed_sample_strategies(conn) if seed_sample else 0
        rows = conn.execute(
            "SELECT id, name, category_filter, max_wallet_rank, min_resolved_markets, min_coverage "
            "FROM strategies WHERE active ORDER BY id"
        ).fetchall()
        # each strategy's last watermark: the newest publish that had it active (details.added)
        last = dict(
            conn.execute(
                "SELECT strategy.id, max(r.fills_watermark) FROM watchlist_publish_runs AS r, "
                "jsonb_object_keys(r.details -> 'added') AS strategy(id) "
                "WHERE r.fills_watermark IS NOT NULL GROUP BY strategy.id"
            ).fetchall()
        )
    strategies = [
        Strategy(
            sid,
            name,
            tuple(cats) if cats else None,
            rank,
            min_res,
            float(min_cov) if min_cov is not None else None,
        )
        for sid, name, cats, rank, min_res, min_cov in rows
    ]
    info = {"migrations_applied": report.applied, "sample_strategies_added": seeded}
    return strategies, last, info


# --- ClickHouse -------------------------------------------------------------------------------


def _signal_plan(
    ch, cfg: WatchlistSettings, strategies: list[Strategy], last: dict[str, dt.datetime], run_id: str
) -> Plan:
    """Positions opened since each strategy's last publish (a strategy's first publish: since
    the look-back before the newest fill)."""
    signals.check_signals_computable(ch)
    watermark = signals.fills_watermark(ch)
    if watermark is None:
        raise signals.SignalsUnavailable("no fills in analytics.fct_wallet_positions")
    first = watermark - dt.timedelta(hours=cfg.lookback_hours)
    since_by_strategy = {s.id: last.get(s.id) or first for s in strategies}
    since = min(since_by_strategy.values(), default=first)
    wallets = signals.signal_wallets(ch, cfg.top_wallets, cfg.min_resolved_markets, cfg.min_coverage)
    by_wallet = {w.wallet: w for w in wallets}
    opened = signals.opened_positions(ch, by_wallet, since, watermark) if watermark > since else []
    plan = Plan(
        MODE_SIGNALS,
        fills_since=since,
        fills_watermark=watermark,
        signal_wallets=len(wallets),
        since_by_strategy=since_by_strategy,
    )
    for p in opened:
        w = by_wallet[p.wallet]
        plan.candidates.append(
            Candidate(
                condition_id=p.condition_id,
                market_id=p.market_id,
                category=p.category,
                wallet=w,
                opened_at=p.opened_at,
                metadata={
                    "wallet": w.wallet,
                    "wallet_rank": w.rank,
                    "wallet_coverage": w.coverage,
                    "wallet_resolved_markets": w.n_resolved_markets,
                    "wallet_markets": w.n_markets,
                    "wallet_realized_pnl_usd": _usd(w.realized_pnl),
                    "category": p.category,
                    "question": p.question,
                    "outcome": p.outcome,
                    "opened_at": p.opened_at.isoformat(),
                    "open_amount": p.open_amount,
                    "run_id": run_id,
                },
            )
        )
    return plan


def _fallback_plan(ch, cfg: WatchlistSettings, reason: str, run_id: str) -> Plan:
    """Signals cannot be computed: the configured defaults, else the most active markets."""
    if cfg.has_defaults:
        plan = Plan(
            MODE_DEFAULTS,
            warnings=[
                f"watchlist signals unavailable ({reason}): using DEFAULT_MARKET_ID / DEFAULT_CONDITION_IDS"
            ],
        )
        known = (
            signals.lookup_markets(
                ch, cfg.default_condition_ids, [cfg.default_market_id] if cfg.default_market_id else []
            )
            if ch
            else []
        )
        plan.candidates = _default_candidates(cfg, known, reason, run_id)
        return plan
    active, why_none = signals.most_active_markets(ch, cfg.fallback_size) if ch else ([], None)
    plan = Plan(MODE_MOST_ACTIVE if active else MODE_NONE)
    plan.warnings.append(
        f"watchlist signals unavailable ({reason}): using the {cfg.fallback_size} most active "
        "unresolved markets per strategy"
        if active
        else f"watchlist signals unavailable ({reason}), no DEFAULT_MARKET_ID / DEFAULT_CONDITION_IDS "
        "configured and no market activity to fall back on: nothing added"
    )
    if why_none:
        plan.warnings.append(f"most active markets: {why_none}")
    plan.candidates = [
        Candidate(
            condition_id=m.condition_id,
            market_id=m.market_id,
            category=m.category,
            metadata={
                "category": m.category,
                "question": m.question,
                "volume_usd": _usd(m.volume),
                "fills": m.n_fills,
                "fallback_reason": reason,
                "run_id": run_id,
            },
        )
        for m in active
    ]
    return plan


def _default_candidates(
    cfg: WatchlistSettings, known: list[signals.MarketInfo], reason: str, run_id: str
) -> list[Candidate]:
    by_condition = {m.condition_id: m for m in known}
    by_market = {m.market_id: m for m in known if m.market_id}
    out: list[Candidate] = []
    wanted: list[tuple[str | None, str | None]] = [(c, None) for c in cfg.default_condition_ids]
    if cfg.default_market_id:
        wanted.append((None, cfg.default_market_id))
    for condition_id, market_id in wanted:
        info = by_condition.get(condition_id) if condition_id else by_market.get(market_id)
        out.append(
            Candidate(
                condition_id=condition_id or (info.condition_id if info else None),
                market_id=market_id or (info.market_id if info and info.market_id else ""),
                category=info.category if info and info.category != signals.UNCATEGORIZED else None,
                metadata={
                    "category": info.category if info else None,
                    "question": info.question if info else None,
                    "fallback_reason": reason,
                    "run_id": run_id,
                    "configured_by": "DEFAULT_CONDITION_IDS" if condition_id else "DEFAULT_MARKET_ID",
                },
            )
        )
    return out


BUSY_RETRIES, BUSY_WAIT_S = 10, 1.0


def _open_warehouse(settings):
    """The ClickHouse client; an API request holds the embedded engine only for a moment, so
    a busy engine is retried for a few seconds before the step gives up."""
    for attempt in range(BUSY_RETRIES):
        try:
            return warehouse.open_client(settings)
        except warehouse.WarehouseBusy:
            if attempt == BUSY_RETRIES - 1:
                raise
            time.sleep(BUSY_WAIT_S)


def _read_warehouse(
    ctx: RunContext, cfg: WatchlistSettings, strategies: list[Strategy], last: dict[str, dt.datetime]
) -> Plan:
    try:
        with contextlib.closing(_open_warehouse(ctx.settings)) as ch:
            try:
                plan = _signal_plan(ch, cfg, strategies, last, ctx.run_id)
            except signals.SignalsUnavailable as exc:
                plan = _fallback_plan(ch, cfg, str(exc), ctx.run_id)
            if not signals.missing_marts(ch):
                plan.markets = signals.market_dimension(ch)
            return plan
    except warehouse.WarehouseBusy:
        raise
    except warehouse.WarehouseUnavailable as exc:
        return _fallback_plan(None, cfg, f"ClickHouse unavailable: {exc}", ctx.run_id)


# --- Postgres, after ClickHouse -------------------------------------------------------------


def _refresh_market_dim(conn: psycopg.Connection, markets: list[signals.MarketInfo]) -> dict[str, int]:
    conn.execute("CREATE TEMP TABLE market_dim_new (LIKE market_dim INCLUDING DEFAULTS) ON COMMIT DROP")
    with conn.cursor().copy(
        "COPY market_dim_new (condition_id, market_id, question, category, "
        "is_resolved, resolved_outcome, end_date) FROM STDIN"
    ) as copy:
        for m in markets:
            copy.write_row(
                (
                    m.condition_id,
                    m.market_id,
                    m.question,
                    m.category,
                    m.is_resolved,
                    m.resolved_outcome,
                    m.end_date,
                )
            )
    upserted = conn.execute(
        """
        INSERT INTO market_dim AS d (condition_id, market_id, question, category, is_resolved,
                                     resolved_outcome, end_date, refreshed_at)
        SELECT condition_id, market_id, question, category, is_resolved, resolved_outcome, end_date, now()
        FROM market_dim_new
        ON CONFLICT (condition_id) DO UPDATE SET
            market_id = EXCLUDED.market_id, question = EXCLUDED.question,
            category = EXCLUDED.category, is_resolved = EXCLUDED.is_resolved,
            resolved_outcome = EXCLUDED.resolved_outcome, end_date = EXCLUDED.end_date,
            refreshed_at = EXCLUDED.refreshed_at
        WHERE (d.market_id, d.question, d.category, d.is_resolved, d.resolved_outcome, d.end_date)
              IS DISTINCT FROM
              (EXCLUDED.market_id, EXCLUDED.question, EXCLUDED.category, EXCLUDED.is_resolved,
               EXCLUDED.resolved_outcome, EXCLUDED.end_date)
        """
    ).rowcount
    deleted = conn.execute(
        "DELETE FROM market_dim d WHERE NOT EXISTS "
        "(SELECT 1 FROM market_dim_new n WHERE n.condition_id = d.condition_id)"
    ).rowcount
    return {"rows": len(markets), "changed": upserted, "removed": deleted}


def _complete_from_market_dim(conn: psycopg.Connection, candidates: list[Candidate]) -> list[Candidate]:
    """Fill a candidate's missing condition id, market id or category from market_dim."""
    out = []
    for c in candidates:
        if c.condition_id and c.market_id and c.category:
            out.append(c)
            continue
        row = None
        if c.condition_id:
            row = conn.execute(
                "SELECT condition_id, market_id, category, question FROM market_dim WHERE condition_id = %s",
                (c.condition_id,),
            ).fetchone()
        elif c.market_id:
            row = conn.execute(
                "SELECT condition_id, market_id, category, question FROM market_dim "
                "WHERE market_id = %s ORDER BY condition_id LIMIT 1",
                (c.market_id,),
            ).fetchone()
        if row:
            meta = dict(c.metadata)
            meta["category"] = meta.get("category") or row[2]
            meta["question"] = meta.get("question") or row[3]
            c = Candidate(
                c.condition_id or row[0],
                c.market_id or (row[1] or ""),
                c.category or row[2],
                meta,
                c.wallet,
                c.opened_at,
            )
        out.append(c)
    return out


def _choose(plan: Plan, strategy: Strategy, cfg: WatchlistSettings) -> list[Candidate]:
    """The candidates one strategy takes: its categories, its thresholds, one per market."""
    chosen: dict[str, Candidate] = {}
    since = plan.since_by_strategy.get(strategy.id)
    for c in plan.candidates:
        if not c.market_id or not strategy.accepts_category(c.category):
            continue
        if since is not None and c.opened_at is not None and c.opened_at <= since:
            continue  # opened before this strategy's last publish: it saw it then
        w = c.wallet
        if w is not None:
            if strategy.max_wallet_rank is not None and w.rank > strategy.max_wallet_rank:
                continue
            if (
                strategy.min_resolved_markets is not None
                and w.n_resolved_markets < strategy.min_resolved_markets
            ):
                continue
            if strategy.min_coverage is not None and w.coverage < strategy.min_coverage:
                continue
        best = chosen.get(c.market_id)
        # the best-ranked wallet triggers a market several signal wallets opened
        if best is None or (
            w is not None
            and best.wallet is not None
            and (w.rank, c.opened_at) < (best.wallet.rank, best.opened_at)
        ):
            chosen[c.market_id] = c
    if plan.mode == MODE_MOST_ACTIVE:
        return list(chosen.values())[: cfg.fallback_size]
    return list(chosen.values())


def _write(
    url: str, ctx: RunContext, cfg: WatchlistSettings, plan: Plan, strategies: list[Strategy]
) -> dict[str, Any]:
    out: dict[str, Any] = {"added": {}, "skipped_existing": 0}
    with db.connect(url) as conn:
        with conn.transaction():
            if plan.markets is not None:
                out["market_dim"] = _refresh_market_dim(conn, plan.markets)
            candidates = _complete_from_market_dim(conn, plan.candidates)
            unusable = [c for c in candidates if not c.market_id]
            for c in unusable:
                plan.warnings.append(
                    f"{c.metadata.get('configured_by', 'market')} {c.condition_id or ''}: no market id "
                    "is known for it (not in dim_markets or market_dim): not added"
                )
            plan.candidates = [c for c in candidates if c.market_id]
            if plan.mode == MODE_DEFAULTS:
                plan.candidates = _drop_resolved(conn, plan)
            for s in strategies:
                added = 0
                for c in _choose(plan, s, cfg):
                    cur = conn.execute(
                        "INSERT INTO strategy_watchlists (strategy_id, market_id, condition_id, reason, metadata) "
                        "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (strategy_id, market_id) DO NOTHING",
                        (s.id, c.market_id, c.condition_id, REASONS[plan.mode], json.dumps(c.metadata)),
                    )
                    if cur.rowcount:
                        added += 1
                    else:
                        out["skipped_existing"] += 1
                out["added"][s.id] = added
            out["marked_resolved"] = conn.execute(
                "UPDATE strategy_watchlists w SET status = 'resolved' FROM market_dim m "
                "WHERE w.status = 'active' AND m.condition_id = w.condition_id AND m.is_resolved"
            ).rowcount
            total = sum(out["added"].values())
            conn.execute(
                "INSERT INTO watchlist_publish_runs (run_id, mode, fills_since, fills_watermark, "
                "entries_added, details) VALUES (%s, %s, %s, %s, %s, %s)",
                (
                    ctx.run_id,
                    plan.mode,
                    plan.fills_since,
                    plan.fills_watermark,
                    total,
                    json.dumps(
                        {
                            "added": out["added"],
                            "warnings": plan.warnings,
                            "signal_wallets": plan.signal_wallets,
                            "candidates": len(plan.candidates),
                        }
                    ),
                ),
            )
    return out


def _drop_resolved(conn: psycopg.Connection, plan: Plan) -> list[Candidate]:
    keep = []
    for c in plan.candidates:
        row = (
            conn.execute(
                "SELECT is_resolved FROM market_dim WHERE condition_id = %s", (c.condition_id,)
            ).fetchone()
            if c.condition_id
            else None
        )
        if row and row[0]:
            plan.warnings.append(f"default market {c.market_id} ({c.condition_id}) is resolved: not added")
        else:
            keep.append(c)
    return keep


# --- the step -------------------------------------------------------------------------------


def publish(ctx: RunContext, cfg: WatchlistSettings | None = None, build_models: bool = True) -> StepResult:
    url = ctx.settings.postgres_url
    if not url:
        raise SkipStep("POSTGRES_URL not set")
    cfg = cfg or ctx.settings.watchlist
    strategies, last, pg_info = _prepare_postgres(url, ctx.settings.goldsky_source == "sample")
    plan = _read_warehouse(ctx, cfg, strategies, last)  # the ClickHouse client is closed here
    written = _write(url, ctx, cfg, plan, strategies)
    for w in plan.warnings:
        log.warning(w)
    total = sum(written["added"].values())
    details: dict[str, Any] = {
        "mode": plan.mode,
        "strategies": len(strategies),
        "signal_wallets": plan.signal_wallets,
        "fills_since": plan.fills_since.isoformat() if plan.fills_since else None,
        "fills_watermark": plan.fills_watermark.isoformat() if plan.fills_watermark else None,
        **pg_info,
        **written,
    }
    result = StepResult(
        rows_in=len(plan.candidates),
        rows_out=total,
        details=details,
        warnings=list(plan.warnings),
        message=f"{plan.mode}: {total} entries added to {len(strategies)} strategies",
    )
    if build_models:
        from watchlist.app_models import build_app_models

        outcome = build_app_models(ctx.settings, url)
        details["dbt_app"] = outcome.counts()
        if not outcome.success:
            result.status = FAILED
            failed = [f"{f['name']}: {f['message']}" for f in outcome.failures]
            result.error = "dbt_app build failed: " + ("; ".join(failed) or outcome.error or "unknown error")
    return result


def step_watchlist_publish(ctx: RunContext) -> StepResult:
    """Pipeline step: fill the active strategies' watchlists (module docstring)."""
    return publish(ctx)
