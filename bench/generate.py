"""Deterministic Polymarket fills at scale, as Goldsky `polymarket.order_filled` 1.1.0 files.

    python -m bench.generate --rows 1000000 --out DIR [--delta-day] [--seed N]

writes

    DIR/fills/order_filled-0001.parquet ...      the history, ~1M rows per file, time order
    DIR/data/markets.jsonl                       reference files, as DATA_DIR holds them
    DIR/data/expanded_resolution_map.json
    DIR/data/category_definitions.json
    DIR/delta/fills/order_filled-delta-0001.parquet   (--delta-day) +1 day of fills, with
                                                 late fills whose timestamps lie in the history
    DIR/delta/expanded_resolution_map.delta.json (--delta-day) the map a night later: the
                                                 same entries plus newly resolved conditions
    DIR/manifest.json                            parameters and true counts

Shape (issue 8): the exchange emits one event per order filled, one per maker order of a
match plus the taker's own (maker = taker, taker = the exchange), so every event has
exactly one "0" asset and amounts > 0. About rows/6 wallets (1.6 M at 10 M rows): a Zipf
ranking of the top 1 % (market makers, bots) takes 60 % of maker orders and 30 % of taker
orders on any token; the rest come from each token's own holders (one holder slot per
wallet, shared out by token popularity), so a position sees several fills, as real ones do.
Market popularity is lognormal (sigma 2) over about rows/200 conditions (two tokens each);
matches pile into the same second (every event of a match shares it, and bursts pin
several matches to one second); wallets sell tokens they never bought (oversells); whale
matches move 10^12 to 10^13 base units at 0.93-0.98, so price x quantity exceeds 2^63.
Addresses are occasionally mixed-case, amounts are decimal strings like Goldsky's (or
UInt64 with --amounts uint64). About 70 % of the traded conditions resolve, with at least
3,000 resolved entries in the map; a few traded tokens belong to no listed market.

Everything is vectorised numpy/pyarrow and depends only on (seed, rows): the same
arguments give byte-identical files. Events are built one file (~1M rows) at a time, so
memory stays near one file's worth of strings whatever the size.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ingest import sample_data as sd

GENERATOR_VERSION = 2
DEFAULT_SEED = 20260426
HISTORY_DAYS = 100
# The last day of history; the delta is the day after. Both lie before the 2026-04-28 move
# to the v2 exchanges, so the files are the v1 dataset (1.1.0).
HISTORY_END = dt.date(2026, 4, 26)
FILE_ROWS = 1_000_000
DELTA_DIVISOR = 100  # delta rows = rows / 100: one average history day
LATE_SHARE = 0.03  # delta fills whose timestamp lies in the last LATE_DAYS of history
LATE_DAYS = 10
MIN_RESOLVED = 3000
TRADED_RESOLVED_SHARE = 0.70
NEWLY_RESOLVED_SHARE = 0.05  # of the still unresolved listed traded conditions, in the delta map
UNLISTED_SHARE = 0.005  # traded conditions that no markets.jsonl line lists
MIXED_CASE_WALLETS = 0.10  # wallets rendered checksum-cased in half of their events
N_WHALES = 20
WHALE_SHARE = 1 / 20_000  # of matches
MIN_WHALES = 5
ZIPF_S = 1.3
MAKER_ZIPF_P = 0.60  # maker orders from the Zipf ranking (market makers), else a holder
TAKER_ZIPF_P = 0.30  # takers from the Zipf ranking (active traders), else a holder
HOLDER_SLOTS = 1.0  # holder slots per wallet: each token is traded by its own holders
PRO_SHARE = 0.01  # the Zipf ranking: the top 1 % of wallets (market makers, bots)
MAKER_COUNT_P = (0.45, 0.35, 0.20)  # 1, 2 or 3 maker orders per match
TAKER_BUY_P = 0.55
BURST_SHARE = 0.04  # matches pinned to a shared burst second
BURST_SIZE = 8
FEE_P = 0.10

EXCHANGE = sd.EXCHANGE
CHAIN_ID = 137
_BLOCK_EPOCH = int(dt.datetime(2025, 10, 1, tzinfo=dt.UTC).timestamp())
_BLOCK_AT_EPOCH = 77_000_000

_STREAM_UNIVERSE, _STREAM_MATCHES, _STREAM_EVENTS, _STREAM_REFERENCE = 11, 12, 13, 14
_SEG_HISTORY, _SEG_DELTA = 0, 1

_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
# byte -> its two hex characters as one little-endian uint16: one gather per byte
_HEX16 = _HEX[np.arange(256) >> 4].astype(np.uint16) | (_HEX[np.arange(256) & 15].astype(np.uint16) << 8)
# Columns worth a Parquet dictionary (few distinct values); ids and hashes are not.
_DICTIONARY_COLUMNS = [
    "maker",
    "taker",
    "maker_asset_id",
    "taker_asset_id",
    "fee",
    "chain_id",
    "_gs_chain",
    "_gs_op",
]
_UINT64_MAX = 2**64 - 1


def _rng(seed: int, rows: int, *keys: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, rows, *keys]))


def _hex(raw: np.ndarray) -> np.ndarray:
    """(n, k) bytes -> (n, 2k) lower-case hex characters."""
    return np.ascontiguousarray(_HEX16[raw]).view(np.uint8)


def _random_hex(rng: np.random.Generator, n: int, nbytes: int) -> np.ndarray:
    raw = np.frombuffer(rng.bytes(n * nbytes), dtype=np.uint8).reshape(n, nbytes)
    return _hex(raw)


def _prefixed(body: np.ndarray) -> np.ndarray:
    out = np.empty((body.shape[0], body.shape[1] + 2), dtype=np.uint8)
    out[:, 0] = ord("0")
    out[:, 1] = ord("x")
    out[:, 2:] = body
    return out


def _strings(mat: np.ndarray) -> pa.Array:
    """A fixed-width (n, w) byte matrix as an Arrow string array, without Python strings."""
    mat = np.ascontiguousarray(mat)
    n, w = mat.shape
    offsets = np.arange(0, (n + 1) * w, w, dtype=np.int64 if n * w >= 2**31 else np.int32)
    kind = pa.large_string() if offsets.dtype == np.int64 else pa.string()
    return pa.Array.from_buffers(kind, n, [None, pa.py_buffer(offsets), pa.py_buffer(mat.reshape(-1))])


def _iso(ts: int) -> str:
    return dt.datetime.fromtimestamp(int(ts), dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


# ---------------------------------------------------------------------------------------
# universe: wallets, conditions, tokens, prices, resolutions; depends on (seed, rows)
# ---------------------------------------------------------------------------------------


@dataclass
class Universe:
    seed: int
    rows: int
    history_start: int  # unix seconds, 00:00 UTC of the first history day
    delta_start: int  # 00:00 UTC of the delta day
    n_wallets: int
    wallet_hex: np.ndarray  # (n_wallets, 42) '0x' + 40 lower-case hex
    mixed: np.ndarray  # wallets sometimes rendered mixed-case
    zipf_cdf: np.ndarray  # over Zipf ranks
    zipf_perm: np.ndarray  # rank -> wallet
    holder_offset: np.ndarray  # per token: its first slot in the holder slots
    holder_count: np.ndarray  # per token: how many holder slots it has (by popularity)
    slot_wallet: np.ndarray  # slot (mod n_wallets) -> wallet
    whales: np.ndarray  # whale wallets
    n_traded: int  # traded conditions: 0..n_traded-1
    popularity_cdf: np.ndarray  # lognormal popularity over traded conditions
    p_base: np.ndarray  # long-run YES price per traded condition
    final_yes: np.ndarray  # where a resolving condition ends (bool)
    listed: np.ndarray  # traded condition listed in markets.jsonl
    resolved: np.ndarray  # traded condition resolved in the history map
    newly_resolved: np.ndarray  # traded condition resolved in the delta map only
    n_idle: int  # listed, untraded, resolved conditions (map and markets)
    n_unknown: int  # map entries with market_id "unknown"
    condition_ids: list[str]  # traded, then idle, then unknown
    token_ids: list[str]  # 2 per traded + idle condition: [yes, no]
    token_dict: pa.Array  # token_ids + ["0"]: the asset-id dictionary

    @property
    def zero_index(self) -> int:
        return len(self.token_ids)

    def draw_wallets(self, rng: np.random.Generator, tokens: np.ndarray, zipf_p: float) -> np.ndarray:
        """A wallet per event on `tokens`: with probability zipf_p one of the Zipf ranking
        (market makers and active traders trade everything), else one of the token's
        holders (retail wallets trade a handful of tokens, so positions see several fills)."""
        n = len(tokens)
        ranks = np.searchsorted(self.zipf_cdf, rng.random(n), side="right")
        zipf = self.zipf_perm[np.minimum(ranks, len(self.zipf_cdf) - 1)]
        slot = self.holder_offset[tokens] + (rng.random(n) * self.holder_count[tokens]).astype(np.int64)
        holder = self.slot_wallet[slot % self.n_wallets]
        return np.where(rng.random(n) < zipf_p, zipf, holder).astype(np.int64)

    def price_yes(self, cond: np.ndarray, ts: np.ndarray) -> np.ndarray:
        """The YES price at time ts: conditions that resolve drift towards their outcome."""
        span = self.delta_start + 86400 - self.history_start
        frac = np.clip((ts - self.history_start) / span, 0.0, 1.0)
        base = self.p_base[cond]
        target = np.where(self.final_yes[cond], 0.97, 0.03)
        drifts = self.resolved[cond] | self.newly_resolved[cond]
        return np.where(drifts, base + (target - base) * frac**3, base)


def _token_strings(rng: np.random.Generator, n: int) -> list[str]:
    """Outcome token ids as on chain: uint256 hashes, as decimal strings (up to 78 digits)."""
    raw = rng.bytes(32 * n)
    out, seen = [], set()
    for i in range(n):
        value = int.from_bytes(raw[32 * i : 32 * i + 32], "big")
        text = str(value)
        if value < 10**60 or text in seen:  # astronomically unlikely; keep ids plausible
            text = str(10**76 + i)
        seen.add(text)
        out.append(text)
    return out


def build_universe(rows: int, seed: int = DEFAULT_SEED) -> Universe:
    if rows < 1000:
        raise ValueError("rows must be at least 1000")
    rng = _rng(seed, rows, _STREAM_UNIVERSE)
    n_wallets = max(rows // 6, 500)
    n_traded = max(rows // 200, 60)

    wallet_hex = _prefixed(_random_hex(rng, n_wallets, 20))
    mixed = rng.random(n_wallets) < MIXED_CASE_WALLETS
    n_pro = max(int(n_wallets * PRO_SHARE), 50)
    weights = 1.0 / np.arange(1, n_pro + 1, dtype=np.float64) ** ZIPF_S
    zipf_cdf = np.cumsum(weights)
    zipf_cdf /= zipf_cdf[-1]
    zipf_perm = rng.permutation(n_wallets)
    whales = rng.choice(n_wallets, size=N_WHALES, replace=False)

    popularity = rng.lognormal(0.0, 2.0, n_traded)
    popularity_cdf = np.cumsum(popularity)
    popularity_cdf /= popularity_cdf[-1]
    # holder slots per token in proportion to its expected volume (YES trades 55 %)
    share = np.stack([popularity * 0.55, popularity * 0.45], axis=1).reshape(-1) / popularity.sum()
    holder_count = np.maximum(np.rint(share * HOLDER_SLOTS * n_wallets), 1).astype(np.int64)
    holder_offset = np.concatenate([[0], np.cumsum(holder_count)[:-1]]).astype(np.int64)
    slot_wallet = rng.permutation(n_wallets)
    p_base = rng.uniform(0.08, 0.92, n_traded)
    final_yes = rng.random(n_traded) < p_base

    listed = np.ones(n_traded, dtype=bool)
    n_unlisted = max(round(n_traded * UNLISTED_SHARE), 2)
    listed[rng.choice(n_traded, size=n_unlisted, replace=False)] = False
    listed_idx = np.flatnonzero(listed)
    order = rng.permutation(listed_idx)
    n_res = round(len(listed_idx) * TRADED_RESOLVED_SHARE)
    resolved = np.zeros(n_traded, dtype=bool)
    resolved[order[:n_res]] = True
    still_open = order[n_res:]
    n_new = min(max(round(len(still_open) * NEWLY_RESOLVED_SHARE), 5), len(still_open))
    newly_resolved = np.zeros(n_traded, dtype=bool)
    newly_resolved[still_open[:n_new]] = True

    n_idle = max(MIN_RESOLVED + 100 - n_res, n_traded // 10)
    n_unknown = max(n_traded // 50, 10)
    n_conditions = n_traded + n_idle + n_unknown
    cond_raw = np.frombuffer(rng.bytes(32 * n_conditions), dtype=np.uint8).reshape(n_conditions, 32)
    condition_ids = [row.tobytes().decode() for row in _prefixed(_hex(cond_raw))]
    if len(set(condition_ids)) != n_conditions:
        raise AssertionError("condition id collision")
    token_ids = _token_strings(rng, 2 * (n_traded + n_idle))

    history_start = int(
        dt.datetime.combine(HISTORY_END - dt.timedelta(days=HISTORY_DAYS - 1), dt.time(), dt.UTC).timestamp()
    )
    delta_start = history_start + HISTORY_DAYS * 86400
    return Universe(
        seed=seed,
        rows=rows,
        history_start=history_start,
        delta_start=delta_start,
        n_wallets=n_wallets,
        wallet_hex=wallet_hex,
        mixed=mixed,
        zipf_cdf=zipf_cdf,
        zipf_perm=zipf_perm,
        holder_offset=holder_offset,
        holder_count=holder_count,
        slot_wallet=slot_wallet,
        whales=whales,
        n_traded=n_traded,
        popularity_cdf=popularity_cdf,
        p_base=p_base,
        final_yes=final_yes,
        listed=listed,
        resolved=resolved,
        newly_resolved=newly_resolved,
        n_idle=n_idle,
        n_unknown=n_unknown,
        condition_ids=condition_ids,
        token_ids=token_ids,
        token_dict=pa.array([*token_ids, "0"], type=pa.string()),
    )


# ---------------------------------------------------------------------------------------
# matches: one row per order-book match; events are expanded from them file by file
# ---------------------------------------------------------------------------------------


@dataclass
class Matches:
    ts: np.ndarray  # int64 unix seconds
    cond: np.ndarray  # traded condition
    outcome: np.ndarray  # 0 YES token, 1 NO token
    makers: np.ndarray  # maker orders in the match (1..3); events = makers + 1
    taker: np.ndarray  # taker wallet
    taker_buys: np.ndarray
    ticks: np.ndarray  # the token's price in cents
    whale: np.ndarray

    def __len__(self) -> int:
        return len(self.ts)

    @property
    def events(self) -> np.ndarray:
        return self.makers.astype(np.int64) + 1


def _maker_counts(
    rng: np.random.Generator, rows: int, whale_p: float, min_whales: int
) -> tuple[np.ndarray, np.ndarray]:
    """Makers per match and whale flags, with events summing to exactly `rows`."""
    estimate = int(rows / 2.75 * 1.08) + 16
    makers = rng.choice(3, size=estimate, p=MAKER_COUNT_P).astype(np.int64) + 1
    whale = rng.random(estimate) < whale_p
    if min_whales and whale.sum() < min_whales:
        whale[rng.choice(min(estimate, max(rows // 8, min_whales)), size=min_whales, replace=False)] = True
    makers[whale] = 3  # a whale sweeps several makers: its own fill exceeds 2^63 in price x qty
    cum = np.cumsum(makers + 1)
    m = int(np.searchsorted(cum, rows, side="right"))
    makers, whale = makers[:m], whale[:m]
    rest = rows - (int(cum[m - 1]) if m else 0)
    if rest >= 2:  # one more match of rest events (rest <= 3)
        makers = np.append(makers, rest - 1)
        whale = np.append(whale, False)
    elif rest == 1:  # one match takes one more maker order
        j = int(np.flatnonzero(makers < 3)[0])
        makers[j] += 1
    return makers, whale


def _intraday(rng: np.random.Generator, n: int) -> np.ndarray:
    """Seconds into the day: activity peaks in US hours."""
    peak = rng.normal(16 * 3600, 4 * 3600, n)
    flat = rng.uniform(0, 86400, n)
    return np.where(rng.random(n) < 0.7, peak, flat).astype(np.int64) % 86400


def _bursts(rng: np.random.Generator, ts: np.ndarray) -> None:
    """Pin a share of the matches to shared seconds, BURST_SIZE matches per second."""
    n = len(ts)
    chosen = np.flatnonzero(rng.random(n) < BURST_SHARE)
    if len(chosen) < 2:
        return
    seconds = ts[rng.integers(0, n, max(len(chosen) // BURST_SIZE, 1))]
    ts[chosen] = seconds[rng.integers(0, len(seconds), len(chosen))]


def _draw_matches(
    u: Universe,
    rng: np.random.Generator,
    makers: np.ndarray,
    whale: np.ndarray,
    ts: np.ndarray,
    conds_from: np.ndarray | None = None,
) -> Matches:
    m = len(makers)
    if conds_from is None:
        cond = np.searchsorted(u.popularity_cdf, rng.random(m), side="right")
        cond = np.minimum(cond, u.n_traded - 1)
    else:  # popularity restricted to a subset of conditions
        w = np.diff(np.concatenate([[0.0], u.popularity_cdf]))[conds_from]
        cdf = np.cumsum(w) / w.sum()
        cond = conds_from[np.minimum(np.searchsorted(cdf, rng.random(m), side="right"), len(cdf) - 1)]
    outcome = (rng.random(m) < 0.45).astype(np.int8)
    taker = u.draw_wallets(rng, 2 * cond + outcome, TAKER_ZIPF_P)
    taker = np.where(whale, u.whales[rng.integers(0, N_WHALES, m)], taker)
    taker_buys = np.where(whale, rng.random(m) < 0.8, rng.random(m) < TAKER_BUY_P)
    p_yes = u.price_yes(cond, ts)
    p = np.where(outcome == 0, p_yes, 1.0 - p_yes) + rng.normal(0.0, 0.025, m)
    ticks = np.clip(np.rint(p * 100), 1, 99).astype(np.int64)
    ticks = np.where(whale, rng.integers(93, 99, m), ticks)
    return Matches(
        ts=ts,
        cond=cond.astype(np.int64),
        outcome=outcome,
        makers=makers,
        taker=taker,
        taker_buys=taker_buys,
        ticks=ticks,
        whale=whale,
    )


def history_matches(u: Universe) -> Matches:
    rng = _rng(u.seed, u.rows, _STREAM_MATCHES, _SEG_HISTORY)
    makers, whale = _maker_counts(rng, u.rows, WHALE_SHARE, MIN_WHALES)
    m = len(makers)
    ts = u.history_start + rng.integers(0, HISTORY_DAYS, m) * 86400 + _intraday(rng, m)
    _bursts(rng, ts)
    ts.sort()  # the other attributes are drawn independently of time: sorting ts alone is fine
    return _draw_matches(u, rng, makers, whale, ts)


def delta_matches(u: Universe, rows: int) -> Matches:
    """One more day: most matches on the delta day, LATE_SHARE of them late (timestamps in
    the last LATE_DAYS of the history), appended last, as a late delivery would be. On-time
    matches trade conditions still open after the history (unresolved or resolving now)."""
    rng = _rng(u.seed, u.rows, _STREAM_MATCHES, _SEG_DELTA)
    makers, whale = _maker_counts(rng, rows, WHALE_SHARE, 1)
    m = len(makers)
    late = rng.random(m) < LATE_SHARE
    ts = np.where(
        late,
        u.delta_start - LATE_DAYS * 86400 + rng.integers(0, LATE_DAYS * 86400, m),
        u.delta_start + _intraday(rng, m),
    )
    order = np.lexsort((ts, late))  # on time first, in time order; late ones at the end
    ts, makers, whale, late = ts[order], makers[order], whale[order], late[order]
    open_conds = np.flatnonzero(~u.resolved)
    on_time = _draw_matches(u, rng, makers, whale, ts, conds_from=open_conds)
    anywhere = _draw_matches(u, rng, makers, whale, ts)
    pick = lambda a, b: np.where(late, b, a)  # noqa: E731
    return Matches(
        ts=ts,
        cond=pick(on_time.cond, anywhere.cond),
        outcome=pick(on_time.outcome, anywhere.outcome),
        makers=makers,
        taker=pick(on_time.taker, anywhere.taker),
        taker_buys=pick(on_time.taker_buys, anywhere.taker_buys),
        ticks=pick(on_time.ticks, anywhere.ticks),
        whale=whale,
    )


# ---------------------------------------------------------------------------------------
# events of a run of matches -> an Arrow table in the dataset's columns
# ---------------------------------------------------------------------------------------


def _render(u: Universe, rng: np.random.Generator, wallets: np.ndarray) -> np.ndarray:
    """Address characters of `wallets`; mixed-case wallets show checksum-like casing in
    about half of their events (consumers must lower-case)."""
    mat = u.wallet_hex[wallets]
    rows = np.flatnonzero(u.mixed[wallets] & (rng.random(len(wallets)) < 0.5))
    if len(rows):
        sub = mat[rows]
        cols = np.arange(sub.shape[1])
        pattern = ((cols[None, :] + wallets[rows, None]) % 3 == 0) & (cols[None, :] >= 2)
        upper = pattern & (sub >= ord("a")) & (sub <= ord("f"))
        sub[upper] -= 32
        mat[rows] = sub
    return mat


def events_table(
    u: Universe, mt: Matches, a: int, b: int, rng: np.random.Generator, amounts: str = "string"
) -> pa.Table:
    """The events of matches [a, b) as a table of the dataset's columns."""
    makers = mt.makers[a:b]
    size = makers + 1
    n = int(size.sum())
    start = np.concatenate([[0], np.cumsum(size)[:-1]])
    mi = np.repeat(np.arange(b - a), size)
    pos = np.arange(n) - start[mi]
    is_taker = pos == makers[mi]
    taker_w = mt.taker[a:b][mi]
    buys = mt.taker_buys[a:b][mi]
    whale = mt.whale[a:b][mi]

    # Wallets: maker orders from the market-maker-heavy distribution, never the taker itself.
    token = 2 * mt.cond[a:b][mi] + mt.outcome[a:b][mi]
    wallet = np.where(is_taker, taker_w, u.draw_wallets(rng, token, MAKER_ZIPF_P))
    clash = ~is_taker & (wallet == taker_w)
    wallet[clash] = (wallet[clash] + 1) % u.n_wallets

    # Quantities in base units (multiples of 0.01 token), prices walking the book in cents.
    tokens = np.clip(rng.lognormal(np.log(60.0), 1.3, n), 1.0, 250_000.0)
    q = np.rint(tokens * 100).astype(np.int64) * 10_000
    q = np.where(whale, rng.integers(3_400_000, 5_000_001, n) * 1_000_000, q)
    step = rng.integers(0, 2, n) * pos
    ticks = np.clip(mt.ticks[a:b][mi] + np.where(buys, step, -step), 1, 99)
    ticks = np.where(whale, mt.ticks[a:b][mi], ticks)
    c = q * ticks // 100
    q[is_taker] = 0
    c[is_taker] = 0
    q[is_taker] = np.add.reduceat(q, start)  # the taker's order: the sum of the match
    c[is_taker] = np.add.reduceat(c, start)
    fee = np.where(is_taker & (rng.random(n) < FEE_P), c // 500, 0)

    # From the credited maker's view: BUY gives collateral ("0") and gets the token.
    is_buy = is_taker == buys
    zero = u.zero_index
    maker_asset = np.where(is_buy, zero, token).astype(np.int32)
    taker_asset = np.where(is_buy, token, zero).astype(np.int32)
    maker_amount = np.where(is_buy, c, q).astype(np.uint64)
    taker_amount = np.where(is_buy, q, c).astype(np.uint64)

    ts = mt.ts[a:b][mi]
    block = _BLOCK_AT_EPOCH + (ts - _BLOCK_EPOCH) // 2

    # Strings, as byte matrices: id = <tx hash>_<order hash>, one tx per match.
    tx = _prefixed(_random_hex(rng, b - a, 32))[mi]
    order_hash = _prefixed(_random_hex(rng, n, 32))
    ids = np.empty((n, 133), dtype=np.uint8)
    ids[:, :66] = tx
    ids[:, 66] = ord("_")
    ids[:, 67:] = order_hash
    taker_addr = _render(u, rng, taker_w)
    taker_addr[is_taker] = np.frombuffer(EXCHANGE.encode(), dtype=np.uint8)

    def amount(values: np.ndarray) -> pa.Array:
        arr = pa.array(values, type=pa.uint64())
        return pc.cast(arr, pa.string()) if amounts == "string" else arr

    return pa.table(
        {
            "id": _strings(ids),
            "timestamp": pa.array(ts, type=pa.int64()),
            "transaction_hash": _strings(tx),
            "order_hash": _strings(order_hash),
            "maker": _strings(_render(u, rng, wallet)),
            "taker": _strings(taker_addr),
            "maker_asset_id": pa.DictionaryArray.from_arrays(pa.array(maker_asset), u.token_dict),
            "taker_asset_id": pa.DictionaryArray.from_arrays(pa.array(taker_asset), u.token_dict),
            "maker_amount_filled": amount(maker_amount),
            "taker_amount_filled": amount(taker_amount),
            "fee": amount(fee.astype(np.uint64)),
            "vid": pa.array(block * 10_000 + np.arange(n) % 10_000, type=pa.int64()),
            "block_number": pa.array(block, type=pa.int64()),
            "chain_id": pa.array(np.full(n, CHAIN_ID, dtype=np.int64)),
            "_gs_chain": pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, np.int32)), pa.array(["matic"])),
            "_gs_op": pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, np.int32)), pa.array(["c"])),
        }
    )


def write_events(
    u: Universe,
    mt: Matches,
    out_dir: Path,
    prefix: str,
    segment: int,
    file_rows: int = FILE_ROWS,
    amounts: str = "string",
) -> list[dict]:
    """Files of about `file_rows` events each, split between matches."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob(f"{prefix}-*.parquet"):
        old.unlink()
    cum = np.cumsum(mt.events)
    bounds = [0]
    while bounds[-1] < len(mt):
        target = (int(cum[bounds[-1] - 1]) if bounds[-1] else 0) + file_rows
        bounds.append(max(int(np.searchsorted(cum, target, side="right")), bounds[-1] + 1))

    def one(i: int, a: int, b: int) -> dict:
        # each file has its own random stream: threads cannot change the bytes
        table = events_table(u, mt, a, b, _rng(u.seed, u.rows, _STREAM_EVENTS, segment, i), amounts)
        path = out_dir / f"{prefix}-{i:04d}.parquet"
        pq.write_table(
            table,
            path,
            compression="zstd",
            compression_level=1,
            use_dictionary=_DICTIONARY_COLUMNS,
            row_group_size=262_144,
        )
        return {"file": str(path), "rows": table.num_rows}

    # numpy and the Parquet writer release the GIL: two files at a time use both cores
    with ThreadPoolExecutor(max_workers=2) as pool:
        return list(
            pool.map(
                lambda job: one(*job), [(i, a, b) for i, (a, b) in enumerate(itertools.pairwise(bounds), 1)]
            )
        )


# ---------------------------------------------------------------------------------------
# reference files
# ---------------------------------------------------------------------------------------


def _market_text(rng: np.random.Generator) -> tuple[str, str, list[str], str]:
    buckets = list(sd._ARCHETYPES)
    weights = np.array([sd._ARCHETYPES[b]["weight"] for b in buckets])
    bucket = buckets[int(rng.choice(len(buckets), p=weights / weights.sum()))]
    arche = sd._ARCHETYPES[bucket]
    template, categories, tag_options = arche["kinds"][int(rng.integers(len(arche["kinds"])))]
    fields = {k: v[int(rng.integers(len(v)))] for k, v in sd._FILLERS.items() if "{" + k + "}" in template}
    question = template.format(**fields)
    category = "" if rng.random() < arche["empty"] else categories[int(rng.integers(len(categories)))]
    tags = list(tag_options[int(rng.integers(len(tag_options)))])
    return question, category, tags, bucket


def _reference_docs(u: Universe) -> tuple[bytes, dict, dict]:
    """markets.jsonl, the history resolution map and the delta resolution map."""
    rng = _rng(u.seed, u.rows, _STREAM_REFERENCE)
    n_listed = u.n_traded + u.n_idle
    market_ids = rng.permutation(n_listed) + 500_000
    lines, history, delta = [], [], []
    hist_time = u.delta_start
    delta_time = u.delta_start + 86400
    for c in range(n_listed):
        traded = c < u.n_traded
        if traded and not u.listed[c]:
            continue  # its tokens trade, but no market lists them
        question, category, tags, _ = _market_text(rng)
        if not traded:
            question = question[:-1] + f" (#{c})?"
        slug = sd._slug(question)
        lines.append(
            (
                int(market_ids[c]),
                json.dumps(
                    {
                        "condition_id": u.condition_ids[c],
                        "market_id": str(int(market_ids[c])),
                        "question": question,
                        "category": category,
                        "tags": tags,
                        "token_ids": [u.token_ids[2 * c], u.token_ids[2 * c + 1]],
                        "event_id": slug if slug and rng.random() < 0.6 else None,
                        "end_date": None
                        if rng.random() < 0.12
                        else _iso(u.history_start + int(rng.integers(0, 200)) * 86400),
                    },
                    separators=(",", ":"),
                    ensure_ascii=False,
                ),
            )
        )
        yes = bool(u.final_yes[c]) if traded else bool(rng.random() < 0.45)
        resolved_now = (not traded) or bool(u.resolved[c])
        resolved_later = traded and bool(u.newly_resolved[c])
        at_hist = None if rng.random() < 0.2 else _iso(hist_time - int(rng.integers(0, 80 * 86400)))
        entry = {
            "condition_id": u.condition_ids[c],
            "market_id": str(int(market_ids[c])),
            "resolved_outcome": None,
            "payout_yes": None,
            "payout_no": None,
            "resolved_at": None,
        }
        done = dict(
            entry, resolved_outcome="YES" if yes else "NO", payout_yes=int(yes), payout_no=int(not yes)
        )
        history.append(dict(done, resolved_at=at_hist) if resolved_now else entry)
        if resolved_now:
            delta.append(history[-1])
        elif resolved_later:
            delta.append(dict(done, resolved_at=_iso(delta_time - int(rng.integers(0, 86400)))))
        else:
            delta.append(entry)
    for c in range(n_listed, n_listed + u.n_unknown):
        unknown = {
            "condition_id": u.condition_ids[c],
            "market_id": "unknown",
            "resolved_outcome": None,
            "payout_yes": None,
            "payout_no": None,
            "resolved_at": None,
            "error": "No market_id available",
        }
        history.append(unknown)
        delta.append(unknown)
    lines.sort()
    markets = ("\n".join(text for _, text in lines) + "\n").encode()

    def doc(entries: list[dict], when: int) -> dict:
        resolved = sum(e["resolved_outcome"] is not None for e in entries)
        return {
            "total_conditions": len(entries),
            "resolved_conditions": resolved,
            "last_updated": _iso(when),
            "resolutions": entries,
        }

    return markets, doc(history, hist_time), doc(delta, delta_time)


# ---------------------------------------------------------------------------------------
# entry points
# ---------------------------------------------------------------------------------------


def generate(
    out: Path,
    rows: int,
    *,
    seed: int = DEFAULT_SEED,
    delta_day: bool = True,
    file_rows: int = FILE_ROWS,
    amounts: str = "string",
    delta_rows: int | None = None,
) -> dict:
    """Write the data set under `out`; returns (and writes) its manifest. `delta_rows` fixes
    the delta day's size (default: one average history day, rows / DELTA_DIVISOR), so that one
    delta can be replayed on histories of different sizes."""
    if amounts not in ("string", "uint64"):
        raise ValueError("amounts must be 'string' or 'uint64'")
    started = time.monotonic()
    out = Path(out)
    u = build_universe(rows, seed)
    hist = history_matches(u)
    files = write_events(u, hist, out / "fills", "order_filled", _SEG_HISTORY, file_rows, amounts)

    markets, history_map, delta_map = _reference_docs(u)
    data = out / "data"
    data.mkdir(parents=True, exist_ok=True)
    (data / sd.MARKETS).write_bytes(markets)
    (data / sd.RESOLUTION_MAP).write_text(json.dumps(history_map, indent=1) + "\n")
    (data / sd.CATEGORY_DEFINITIONS).write_bytes(sd._definitions_bytes())

    traded = np.zeros(u.n_traded, dtype=bool)
    traded[np.unique(hist.cond)] = True
    manifest = {
        "generator_version": GENERATOR_VERSION,
        "seed": seed,
        "rows": rows,
        "amounts": amounts,
        "file_rows": file_rows,
        "history": {
            "first_day": _iso(u.history_start)[:10],
            "last_day": HISTORY_END.isoformat(),
            "files": files,
            "matches": len(hist),
            "whale_matches": int(hist.whale.sum()),
        },
        "wallets_in_universe": u.n_wallets,
        "traded_conditions": int(traded.sum()),
        "listed_conditions": int(u.listed.sum()) + u.n_idle,
        "resolved_conditions": history_map["resolved_conditions"],
        "traded_resolved_share": round(float((traded & u.resolved).sum() / max(traded.sum(), 1)), 3),
        "map_entries": history_map["total_conditions"],
    }
    if delta_day:
        dmt = delta_matches(u, delta_rows or default_delta_rows(rows))
        dfiles = write_events(
            u, dmt, out / "delta" / "fills", "order_filled-delta", _SEG_DELTA, file_rows, amounts
        )
        (out / "delta" / "expanded_resolution_map.delta.json").write_text(
            json.dumps(delta_map, indent=1) + "\n"
        )
        late = dmt.ts < u.delta_start
        manifest["delta"] = {
            "day": _iso(u.delta_start)[:10],
            "matches_requested": delta_rows or default_delta_rows(rows),
            "files": dfiles,
            "rows": int(dmt.events.sum()),
            "late_rows": int(dmt.events[late].sum()),
            "newly_resolved_conditions": delta_map["resolved_conditions"]
            - history_map["resolved_conditions"],
        }
    manifest["seconds"] = round(time.monotonic() - started, 2)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def default_delta_rows(rows: int) -> int:
    """Matches of the default delta day: one average history day."""
    return max(rows // DELTA_DIVISOR, 200)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.generate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, required=True, help="history fill events (e.g. 1000000)")
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    parser.add_argument("--delta-day", action="store_true", help="also write the +1 day delta")
    parser.add_argument(
        "--delta-rows", type=int, default=None, help="delta-day matches (default: rows / 100)"
    )
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--file-rows", type=int, default=FILE_ROWS, help="events per Parquet file")
    parser.add_argument(
        "--amounts",
        choices=("string", "uint64"),
        default="string",
        help="amount columns as decimal strings (like Goldsky) or UInt64",
    )
    args = parser.parse_args(argv)
    try:
        manifest = generate(
            args.out,
            args.rows,
            seed=args.seed,
            delta_day=args.delta_day,
            file_rows=args.file_rows,
            amounts=args.amounts,
            delta_rows=args.delta_rows,
        )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    brief = {k: v for k, v in manifest.items() if k not in ("history", "delta")}
    brief["files"] = len(manifest["history"]["files"])
    if "delta" in manifest:
        brief["delta"] = {k: v for k, v in manifest["delta"].items() if k != "files"}
    print(json.dumps(brief, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
