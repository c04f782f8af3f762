"""What reading the marts costs at scale, read the way the API and analysts read them.

    python -m bench.reads --rows 10000000 [--reps 5] [--write-docs]

Issue 12 took the open positions' valuation (unrealized PnL, open and current value) out of
the stored tables: a mark moves for every holder of a token whenever anyone trades it, so
storing it rewrote every open pair of a traded token each night. Those values are computed
when read instead, from the newest checkpoint of each open position; the night got cheaper
and every read pays for the valuation. This measures what the reads pay, on the base
warehouse `python -m bench.run --rows N` leaves in .cascadian/bench/run-N/base (the full
build of the N-row history). It only reads: the base stays as it was.

The API's reads call its own functions (api.marts), so each includes opening the embedded
engine, as every request does; the analysts' reads are whole marts with their valued
columns summed (every open position valued). Each read runs `--reps` times in this process;
the median and the fastest are reported. With --write-docs the results replace the section
"Reads at scale, <rows> rows" of docs/performance.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.run import BENCH_ROOT, child_env, machine, publish
from pipeline import names

SECTION = "## Reads at scale"  # + ", <rows> rows"
CATEGORY_PNL = f"{names.ANALYTICS}.{names.FCT_WALLET_CATEGORY_PNL}"
POSITIONS = f"{names.ANALYTICS}.{names.FCT_WALLET_POSITIONS}"


@dataclass(frozen=True)
class Read:
    name: str  # what is read, as the docs' table says it
    reader: str  # who reads it this way
    run: Callable[[], int]  # performs the read, returns the rows it got


def wallet_sizes(settings: Any) -> dict[str, tuple[str, int]]:
    """The wallet with the most markets and the median wallet (by markets; ties by address),
    from the category mart: the API's per-wallet read grows with the wallet's markets."""
    from pipeline import warehouse

    per_wallet = f"SELECT wallet, sum(n_markets) AS n FROM {CATEGORY_PNL} GROUP BY wallet"
    with warehouse.connect(settings) as ch:
        wallets = int(ch.command(f"SELECT uniqExact(wallet) FROM {CATEGORY_PNL}"))
        if not wallets:
            raise RuntimeError(f"{CATEGORY_PNL} is empty: build the marts first")
        largest = ch.query(f"{per_wallet} ORDER BY n DESC, wallet LIMIT 1").result_rows[0]
        median = ch.query(f"{per_wallet} ORDER BY n, wallet LIMIT 1 OFFSET {wallets // 2}").result_rows[0]
    return {"largest": (largest[0], int(largest[1])), "median": (median[0], int(median[1]))}


def _whole_mart(settings: Any, table: str, valued: Sequence[str]) -> Callable[[], int]:
    def run() -> int:
        from pipeline import warehouse

        sums = ", ".join(f"sum({c})" for c in valued)
        with warehouse.connect(settings) as ch:
            return int(ch.query(f"SELECT count(), {sums} FROM {table}").result_rows[0][0])

    return run


def reads(settings: Any, wallets: dict[str, tuple[str, int]]) -> list[Read]:
    from api import marts

    def category_pnl(wallet: str) -> Callable[[], int]:
        return lambda: len(marts.category_pnl(settings, wallet, 0))

    largest, median = wallets["largest"], wallets["median"]
    return [
        Read(
            f"a wallet's category PnL, the wallet with the most markets ({largest[1]:,})",
            "API `/api/wallets/{address}/category-pnl`",
            category_pnl(largest[0]),
        ),
        Read(
            f"a wallet's category PnL, the median wallet ({median[1]:,} market(s))",
            "API `/api/wallets/{address}/category-pnl`",
            category_pnl(median[0]),
        ),
        Read(
            "the top 100 by realized PnL over 30 days, all categories",
            "API `/api/leaderboard`",
            lambda: len(marts.leaderboard(settings, "30d", "", "pnl", 100, 0)["entries"]),
        ),
        Read(
            f"`{names.FCT_WALLET_CATEGORY_PNL}` whole, unrealized PnL and open value summed",
            "analysts",
            _whole_mart(settings, CATEGORY_PNL, ("unrealized_pnl", "open_value")),
        ),
        Read(
            f"`{names.FCT_WALLET_POSITIONS}` whole, unrealized PnL and current value summed",
            "analysts",
            _whole_mart(settings, POSITIONS, ("unrealized_pnl", "current_value")),
        ),
    ]


def measure(settings: Any, reps: int) -> list[dict[str, Any]]:
    """Each read `reps` times, one after the other (the first run of each warms the caches
    the later ones use, as a read after a night would find them)."""
    results = []
    for read in reads(settings, wallet_sizes(settings)):
        seconds, rows = [], 0
        for _ in range(reps):
            started = time.monotonic()
            rows = read.run()
            seconds.append(time.monotonic() - started)
        results.append(
            {
                "read": read.name,
                "reader": read.reader,
                "rows": rows,
                "median_s": statistics.median(seconds),
                "min_s": min(seconds),
            }
        )
        print(f"  {read.name}: median {results[-1]['median_s']:.3f} s, {rows:,} row(s)", flush=True)
    return results


def render(rows: int, reps: int, results: list[dict[str, Any]], info: dict[str, Any], when: str) -> str:
    lines = [
        f"{SECTION}, {rows:,} rows",
        "",
        f"Measured by `python -m bench.reads --rows {rows} --reps {reps} --write-docs` on {when} UTC, on "
        f"the base warehouse of `python -m bench.run --rows {rows}` (the full build of that history), "
        f"{info['nproc']} cores ({info.get('cpu', '?')}), chDB {info['chdb']}. The open positions are "
        'valued when read (docs/pnl.md, "Values computed when read"), so these reads pay for the '
        "valuation; each API read also opens the embedded engine, as every request does. Median and "
        f"fastest of {reps}.",
        "",
        "| read | reader | rows returned | median | fastest |",
        "|---|---|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r['read']} | {r['reader']} | {r['rows']:,} | {r['median_s']:.3f} s | {r['min_s']:.3f} s |"
        )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.reads", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="the bench.run size whose base to read")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--write-docs", action="store_true", help="write docs/performance.md's section")
    args = parser.parse_args(argv)
    base = BENCH_ROOT / f"run-{args.rows}" / "base"
    if not (base / "chdb").is_dir():
        parser.error(f"no base warehouse in {base}: run `python -m bench.run --rows {args.rows}` first")
    os.environ["TZ"] = "UTC"  # as in every process of the project
    time.tzset()
    from pipeline.config import load_settings

    # the base's own settings, whatever this shell points at (CLICKHOUSE_URL included)
    results = measure(load_settings(child_env(base, Path(os.devnull))), args.reps)
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M")
    publish(render(args.rows, args.reps, results, machine(), when), args.write_docs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
