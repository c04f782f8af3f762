"""What the ClickHouse marts say about the watchlists: read-only queries.

Definitions (docs/api.md, "Watchlist rules"):
- A wallet's *markets* are the conditions it traded (fct_wallet_category_pnl.n_markets, summed
  over categories); its *resolved markets* those of them that resolved; its *coverage* is
  resolved markets / markets, the share of its trading that the resolutions can judge.
- *Qualified* wallets have at least WATCHLIST_MIN_RESOLVED_MARKETS resolved markets and
  coverage >= WATCHLIST_MIN_COVERAGE. They are ranked by realized PnL (1 = highest; ties by
  address). *Signal wallets* are the qualified wallets ranked <= WATCHLIST_TOP_WALLETS with a
  positive realized PnL.
- A signal wallet *opened* a position in a market when its first fill on one of the market's
  outcome tokens lies in (since, watermark], it still holds tokens of the market, and the
  market is unresolved. `watermark` is the newest fill the marts know (max last_fill_at);
  `since` is the strategy's previous publish's watermark (its first publish: watermark -
  WATCHLIST_LOOKBACK_HOURS).

Which markets are resolved, and the category of a market nobody categorized, are the dbt
project's rules: they are read here (`dim_markets.is_resolved`, `int_resolutions.is_resolved`,
`pipeline.names.UNCATEGORIZED`), never restated.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from clickhouse_connect.driver.client import Client

from pipeline import names
from pipeline.warehouse import table_exists

UNCATEGORIZED = names.UNCATEGORIZED
MARTS = (names.FCT_WALLET_POSITIONS, names.FCT_WALLET_CATEGORY_PNL, names.DIM_MARKETS)
# The dbt model that says which conditions of the resolution map are resolved.
RESOLUTIONS_MODEL = "int_resolutions"
# Views below the marts the fallback ranks markets with when the marts are missing (they
# exist once dbt has built the staging and intermediate layers, even if the marts failed).
FALLBACK_MODELS = ("int_fills_credited", "int_token_conditions", "stg_reference__markets", RESOLUTIONS_MODEL)
A = names.ANALYTICS


class SignalsUnavailable(RuntimeError):
    """The marts cannot say which wallets to follow (the reason is the message)."""


@dataclass(frozen=True)
class MarketInfo:
    condition_id: str
    market_id: str | None
    question: str | None
    category: str
    is_resolved: bool
    resolved_outcome: str | None = None
    end_date: dt.datetime | None = None


@dataclass(frozen=True)
class SignalWallet:
    wallet: str
    rank: int
    realized_pnl: int  # 10^6 base units
    n_markets: int
    n_resolved_markets: int
    coverage: float


@dataclass(frozen=True)
class OpenedPosition:
    wallet: str
    condition_id: str
    market_id: str
    question: str | None
    category: str
    outcome: str  # the outcome (YES/NO) of which it holds more
    opened_at: dt.datetime
    open_amount: int  # tokens still held, 10^6 base units


@dataclass(frozen=True)
class ActiveMarket:
    condition_id: str
    market_id: str
    question: str | None
    category: str | None  # None: unknown here (raw tables only)
    volume: int  # 10^6 base units of collateral
    n_fills: int


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def missing_marts(ch: Client) -> list[str]:
    return [t for t in MARTS if not table_exists(ch, "analytics", t)]


def check_signals_computable(ch: Client) -> None:
    """Raise SignalsUnavailable when the marts or the resolutions are missing."""
    missing = missing_marts(ch)
    if missing:
        raise SignalsUnavailable(
            f"marts missing: analytics.{', analytics.'.join(missing)} (dbt build has not produced them)"
        )
    resolved = int(ch.command("SELECT countIf(is_resolved) FROM analytics.dim_markets"))
    if resolved == 0:
        raise SignalsUnavailable(
            "resolutions missing: no resolved market in analytics.dim_markets, "
            "so no wallet can be ranked by realized PnL"
        )
    if not int(ch.command("SELECT count() FROM analytics.fct_wallet_category_pnl")):
        raise SignalsUnavailable("no wallet in analytics.fct_wallet_category_pnl")


def fills_watermark(ch: Client) -> dt.datetime | None:
    value = ch.command(
        "SELECT max(last_fill_at) FROM analytics.fct_wallet_positions WHERE condition_id IS NOT NULL"
    )
    if value in (None, "", "\\N"):
        return None
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return _utc(value)


def signal_wallets(ch: Client, top: int, min_resolved: int, min_coverage: float) -> list[SignalWallet]:
    result = ch.query(
        """
        SELECT
            wallet,
            row_number() OVER (ORDER BY pnl DESC, wallet)   AS rank,
            pnl, n_markets, n_resolved, coverage
        FROM (
            SELECT
                wallet,
                toInt128(sum(realized_pnl))                 AS pnl,
                toUInt64(sum(n_markets))                    AS n_markets,
                toUInt64(sum(n_resolved_markets))           AS n_resolved,
                if(n_markets > 0, n_resolved / n_markets, 0) AS coverage
            FROM analytics.fct_wallet_category_pnl
            GROUP BY wallet
            HAVING n_resolved >= {min_resolved:UInt64} AND coverage >= {min_coverage:Float64}
        )
        ORDER BY rank
        LIMIT {top:UInt64}
        """,
        parameters={"min_resolved": min_resolved, "min_coverage": min_coverage, "top": top},
    )
    return [
        SignalWallet(
            wallet=w,
            rank=int(r),
            realized_pnl=int(p),
            n_markets=int(n),
            n_resolved_markets=int(nr),
            coverage=round(float(c), 4),
        )
        for w, r, p, n, nr, c in result.result_rows
        if int(p) > 0
    ]


def opened_positions(
    ch: Client, wallets: Iterable[str], since: dt.datetime, until: dt.datetime
) -> list[OpenedPosition]:
    wallets = sorted(set(wallets))
    if not wallets:
        return []
    result = ch.query(
        """
        SELECT
            p.wallet                                        AS wallet,
            assumeNotNull(p.condition_id)                   AS condition_id,
            assumeNotNull(any(m.market_id))                 AS market_id,
            any(m.question)                                 AS question,
            any(m.category)                                 AS category,
            if(sumIf(p.open_amount, p.outcome_index = 1) > sumIf(p.open_amount, p.outcome_index = 0),
               'NO', 'YES')                                 AS outcome,
            min(p.first_fill_at)                            AS opened_at,
            sum(p.open_amount)                              AS open_amount
        FROM analytics.fct_wallet_positions AS p
        INNER JOIN analytics.dim_markets AS m ON p.condition_id = m.condition_id
        WHERE p.wallet IN {wallets:Array(String)}
          AND p.condition_id IS NOT NULL
          AND NOT m.is_resolved
          AND m.market_id IS NOT NULL
        GROUP BY p.wallet, p.condition_id
        HAVING opened_at > {since:DateTime64(3, 'UTC')}
           AND opened_at <= {until:DateTime64(3, 'UTC')}
           AND open_amount > 0
        ORDER BY opened_at, wallet, condition_id
        """,
        parameters={"wallets": wallets, "since": since, "until": until},
    )
    return [
        OpenedPosition(
            wallet=w,
            condition_id=c,
            market_id=str(m),
            question=q,
            category=cat or UNCATEGORIZED,
            outcome=o,
            opened_at=_utc(t),
            open_amount=int(a),
        )
        for w, c, m, q, cat, o, t, a in result.result_rows
    ]


def market_dimension(ch: Client) -> list[MarketInfo]:
    """Every row of analytics.dim_markets (copied to Postgres as market_dim)."""
    result = ch.query(
        "SELECT condition_id, market_id, question, category, is_resolved, resolved_outcome, end_date "
        "FROM analytics.dim_markets"
    )
    return [
        MarketInfo(
            condition_id=c,
            market_id=m,
            question=q,
            category=cat or UNCATEGORIZED,
            is_resolved=bool(r),
            resolved_outcome=o,
            end_date=_utc(e),
        )
        for c, m, q, cat, r, o, e in result.result_rows
    ]


def lookup_markets(ch: Client, condition_ids: Iterable[str], market_ids: Iterable[str]) -> list[MarketInfo]:
    """The markets named by condition or market id, from dim_markets (else raw.markets)."""
    conditions, markets = sorted(set(condition_ids)), sorted(set(market_ids))
    if not conditions and not markets:
        return []
    params = {"c": conditions, "m": markets}
    if table_exists(ch, "analytics", "dim_markets"):
        rows = ch.query(
            "SELECT condition_id, market_id, question, category, is_resolved FROM analytics.dim_markets "
            "WHERE condition_id IN {c:Array(String)} OR market_id IN {m:Array(String)}",
            parameters=params,
        ).result_rows
        return [MarketInfo(c, m, q, cat or UNCATEGORIZED, bool(r)) for c, m, q, cat, r in rows]
    if table_exists(ch, "raw", "markets"):
        rows = ch.query(
            "SELECT condition_id, any(market_id), any(question) FROM raw.markets "
            "WHERE condition_id IN {c:Array(String)} OR market_id IN {m:Array(String)} "
            "GROUP BY condition_id",
            parameters=params,
        ).result_rows
        return [MarketInfo(c, m or None, q, UNCATEGORIZED, False) for c, m, q in rows]
    return []


def most_active_markets(ch: Client, per_category: int) -> tuple[list[ActiveMarket], str | None]:
    """The most traded unresolved markets, up to `per_category` in each category (so any
    category filter finds its own top N), from the marts, else from the models below them
    (which fill is whose, which token is which market's, which market is resolved: never
    restated here); with the reason when there is nothing to rank."""
    if not missing_marts(ch):
        rows = ch.query(
            """
            SELECT p.condition_id                 AS condition_id,
                   any(m.market_id)               AS market_id,
                   any(m.question)                AS question,
                   any(m.category)                AS category,
                   sum(p.volume)                  AS volume,
                   sum(p.n_fills)                 AS fills
            FROM analytics.fct_wallet_positions AS p
            INNER JOIN analytics.dim_markets AS m ON p.condition_id = m.condition_id
            WHERE NOT m.is_resolved AND m.market_id IS NOT NULL
            GROUP BY p.condition_id
            ORDER BY volume DESC, condition_id
            LIMIT {n:UInt64} BY category
            """,
            parameters={"n": per_category},
        ).result_rows
        markets = [
            ActiveMarket(str(c), str(m), q, cat or UNCATEGORIZED, int(vol), int(n))
            for c, m, q, cat, vol, n in rows
        ]
        return markets, None
    if all(table_exists(ch, names.ANALYTICS, m) for m in FALLBACK_MODELS):
        # The marts are missing but dbt built the layers below them (a build that failed at
        # the marts): rank by the last 7 days of credited fills. Categories are unknown here;
        # the caller looks them up.
        rows = ch.query(
            f"""
            WITH (SELECT max(filled_at) FROM {A}.int_fills_credited) AS newest
            SELECT tokens.condition_id, any(markets.market_id), any(markets.question),
                   sum(fills.collateral) AS volume, count() AS n
            FROM {A}.int_fills_credited AS fills
            INNER JOIN {A}.int_token_conditions AS tokens ON fills.token_id = tokens.token_id
            INNER JOIN {A}.stg_reference__markets AS markets ON markets.condition_id = tokens.condition_id
            WHERE fills.filled_at >= newest - INTERVAL 7 DAY
              AND markets.market_id != ''
              AND tokens.condition_id NOT IN (SELECT condition_id FROM {A}.{RESOLUTIONS_MODEL} WHERE is_resolved)
            GROUP BY tokens.condition_id
            ORDER BY volume DESC, tokens.condition_id
            LIMIT {{n:UInt64}}
            """,
            parameters={"n": max(per_category * 20, 200)},
        ).result_rows
        return [ActiveMarket(str(c), str(m), q, None, int(vol), int(n)) for c, m, q, vol, n in rows], None
    missing = [f"{A}.{m}" for m in FALLBACK_MODELS if not table_exists(ch, A, m)]
    return [], f"dbt has not built {', '.join(missing)}: no market activity to rank"
