"""Daily PnL and the leaderboard (issue 13, item 3): the days add up to each wallet's realized
PnL exactly, equal an independent computation from the fills, the leaderboard ranks what the
days say over each window, a condition's resolved day is recorded once and never moves, and
the nightly increments give what a full rebuild gives."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

from pipeline import warehouse
from pipeline.dbt_chdb import run_dbt
from tests.support import pnl_reference
from tests.support.compare import assert_same_rows
from tests.support.nights import FULL_REFRESH
from tests.support.settings import SAMPLE_NOW
from tests.test_incremental import nights  # noqa: F401  (the four-night fixture, reused)

BUILD = ["build", "--quiet", "--exclude", "tag:needs_built_state"]


def _per_wallet(ch, table: str) -> dict[str, int]:
    rows = ch.query(f"SELECT wallet, sum(realized_pnl) FROM analytics.{table} GROUP BY wallet").result_rows
    return {w: int(v) for w, v in rows if v}


def test_daily_pnl_adds_up_to_each_wallets_realized_pnl(sample_run):
    settings, _, _ = sample_run
    with warehouse.connect(settings) as ch:
        daily = _per_wallet(ch, "fct_wallet_daily_pnl")
        categories = _per_wallet(ch, "fct_wallet_category_pnl")
        trading, resolution = ch.query(
            "SELECT countIf(trading_pnl != 0), countIf(resolution_pnl != 0) FROM analytics.fct_wallet_daily_pnl"
        ).result_rows[0]
    assert daily == categories
    assert len(daily) > 10 and trading > 0 and resolution > 0  # both kinds of PnL are booked


def test_daily_pnl_equals_an_independent_computation_from_the_fills(sample_run):
    """Per (wallet, day): each sell's PnL on its fill's UTC day, each resolution on the
    condition's resolved day: the map's resolved_at day, else the day the run first saw it."""
    settings, _, _ = sample_run
    with warehouse.connect(settings) as ch:
        recorded = ch.query(
            "SELECT condition_id, resolved_day, resolved_day_source, toDate(first_seen_at) "
            "FROM analytics.int_condition_resolved_days"
        ).result_rows
        got = {
            (w, d): (int(r), int(t), int(s))
            for w, d, r, t, s in ch.query(
                "SELECT wallet, day, realized_pnl, trading_pnl, resolution_pnl FROM analytics.fct_wallet_daily_pnl"
            ).result_rows
        }
    # a day not in the map is the day the run saw the condition resolved, and only then
    first_seen = {c: d for c, d, source, seen in recorded if source == "first_seen"}
    assert all(d == seen for c, d, source, seen in recorded if source == "first_seen")
    assert set(first_seen.values()) == {SAMPLE_NOW.date()}  # the night's clock, not the wall's
    ref = pnl_reference.compute_all(settings.sample_dir / "fills", settings.data_dir, first_seen)
    assert {c: d for c, d, _, _ in recorded} == ref.resolved_days
    assert any(source == "map" for _, _, source, _ in recorded) and first_seen
    want = {k: (v["realized_pnl"], v["trading_pnl"], v["resolution_pnl"]) for k, v in ref.daily.items()}
    assert_same_rows(got, want)


def test_leaderboard_ranks_what_the_daily_pnl_says_over_each_window(sample_run):
    settings, _, _ = sample_run
    with warehouse.connect(settings) as ch:
        days = ch.query(
            "SELECT wallet, day, realized_pnl, volume, n_fills FROM analytics.fct_wallet_daily_pnl"
        ).result_rows
        board = ch.query(
            "SELECT time_window, window_days, as_of_day, window_start, wallet, realized_pnl, volume, "
            "n_fills, rank_pnl, rank_volume FROM analytics.fct_leaderboard WHERE category = ''"
        ).result_rows
    as_of = max(d for _, d, _, _, n in days if n > 0)
    windows = defaultdict(dict)
    for name, n_days, as_of_day, start, wallet, pnl, volume, fills, rank_pnl, rank_volume in board:
        assert as_of_day == as_of
        first = min(d for _, d, _, _, n in days if n > 0)  # 'all' starts on the first day with fills
        assert start == (as_of - dt.timedelta(days=n_days - 1) if n_days else first)
        windows[name][wallet] = (int(pnl), int(volume), int(fills), rank_pnl, rank_volume)
    assert set(windows) == {"1d", "7d", "30d", "all"}
    for name, rows in windows.items():
        n_days = pnl_reference.WINDOWS[name]
        sums: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
        for wallet, day, pnl, volume, fills in days:
            if not n_days or as_of - dt.timedelta(days=n_days - 1) <= day <= as_of:
                s = sums[wallet]
                s[0], s[1], s[2] = s[0] + int(pnl), s[1] + int(volume), s[2] + int(fills)
        assert {w: tuple(v[:3]) for w, v in rows.items()} == {w: tuple(s) for w, s in sums.items()}, name
        by_pnl = sorted(rows, key=lambda w: (-rows[w][0], w))
        by_volume = sorted(rows, key=lambda w: (-rows[w][1], w))
        assert [rows[w][3] for w in by_pnl] == list(range(1, len(rows) + 1)), name
        assert [rows[w][4] for w in by_volume] == list(range(1, len(rows) + 1)), name
    assert len(windows["1d"]) < len(windows["30d"])  # the windows really differ


def _daily_marts(settings) -> dict[str, list]:
    queries = {
        "int_condition_resolved_days": "SELECT * FROM analytics.int_condition_resolved_days ORDER BY condition_id",
        "int_wallet_market_days": "SELECT wallet, market_key, day, realized_pnl, trading_pnl, resolution_pnl, "
        "volume, n_fills FROM analytics.int_wallet_market_days FINAL WHERE is_deleted = 0 "
        "ORDER BY wallet, market_key, day",
        "fct_wallet_daily_pnl": "SELECT * FROM analytics.fct_wallet_daily_pnl ORDER BY wallet, day",
        "fct_leaderboard": "SELECT * FROM analytics.fct_leaderboard ORDER BY time_window, category, rank_pnl",
    }
    with warehouse.connect(settings) as ch:
        return {name: ch.query(q).result_rows for name, q in queries.items()}


def test_incremental_days_equal_a_full_refresh_and_resolved_days_survive_it(nights):  # noqa: F811
    """After nights with late fills, new resolutions, a re-categorised market and retracted
    resolutions, the stored days equal a rebuild; the rebuild keeps every recorded resolved
    day (full_refresh = false)."""
    settings, _, _ = nights
    incremental = _daily_marts(settings)
    # the increments also equal the reference rules (the resolved days as first recorded)
    recorded = {c: d for c, d, *_ in incremental["int_condition_resolved_days"]}
    ref = pnl_reference.compute_all(
        settings.goldsky_dataset_dir, settings.data_dir, {}, days_resolved=recorded
    )
    got = {
        (r[0], r[1]): tuple(int(v) for v in (r[2], r[4], r[5], r[6], r[8]))
        for r in incremental["fct_wallet_daily_pnl"]
    }
    cols = ("realized_pnl", "trading_pnl", "resolution_pnl", "volume", "n_fills")
    assert got == {k: tuple(v[c] for c in cols) for k, v in ref.daily.items()}
    with warehouse.connect(settings) as ch:
        # each night appended the changed pairs' days, and the last night not every pair's
        versions = ch.command("SELECT uniqExact(row_version) FROM analytics.int_wallet_market_days")
        last_night, pairs = ch.query(
            "SELECT uniqExactIf(wallet, market_key, row_version = (SELECT max(row_version) "
            "FROM analytics.int_wallet_market_days)), uniqExact(wallet, market_key) "
            "FROM analytics.int_wallet_market_days"
        ).result_rows[0]
        # the map moves every resolved_at: a recorded day must not follow
        ch.command(
            "ALTER TABLE raw.resolutions UPDATE resolved_at = resolved_at + INTERVAL 3 DAY "
            "WHERE resolved_at IS NOT NULL SETTINGS mutations_sync = 2"
        )
    assert versions == 4
    assert 0 < last_night < pairs
    outcome = run_dbt(settings, FULL_REFRESH)
    assert outcome.success, outcome.failures
    rebuilt = _daily_marts(settings)
    for name in incremental:
        assert len(incremental[name]) == len(rebuilt[name]) > 0, name
        assert incremental[name] == rebuilt[name], name


def _compiled(settings, model: str) -> str:
    return next((settings.home / "dbt" / "target" / "compiled").rglob(f"{model}.sql")).read_text()


def test_the_leaderboard_counts_deep_ranks_exactly_and_refuses_what_its_key_cannot_order(sample_run):
    """At depth 3 most wallets on a board are out of the depth, so a wallet kept for its
    volume gets its PnL rank by counting the board rows above it (int_leaderboard_windows):
    the ranks equal a sort of every board in Python. A PnL beyond the sort key's 2^95 or a
    wallet that is not an address fails the query instead of ranking wrongly."""
    settings, _, _ = sample_run
    models = ("int_leaderboard_candidates", "int_leaderboard_windows")
    compiled = run_dbt(
        settings, ["compile", "--select", *models, "--vars", "{leaderboard_depth: 3}", "--quiet"]
    )
    assert compiled.success, compiled.error
    sums_table = "`analytics`.`int_leaderboard_board_sums`"
    ranking = _compiled(settings, models[1]).replace(
        "`analytics`.`int_leaderboard_candidates`", f"({_compiled(settings, models[0])})"
    )
    with warehouse.connect(settings) as ch:
        sums = ch.query(
            "SELECT window_days, category, wallet, realized_pnl, volume FROM analytics.int_leaderboard_board_sums"
        ).result_rows
        got = {
            (days, category, wallet): (rank_pnl, rank_volume)
            for days, category, wallet, rank_pnl, rank_volume in ch.query(
                f"SELECT window_days, category, wallet, rank_pnl, rank_volume FROM ({ranking})",
                settings={"join_use_nulls": 1},
            ).result_rows
        }
        refused = []
        for pnl, wallet in (("79228162514264337593543950336", "0x" + "0" * 40), ("1", "w1")):
            bad_sums = (
                f"(SELECT toUInt16(0) AS window_days, '' AS category, '{wallet}' AS wallet, "
                f"toInt128('{pnl}') AS realized_pnl, toUInt64(1) AS volume, toUInt64(1) AS n_fills)"
            )
            try:
                ch.query(
                    f"SELECT * FROM ({ranking.replace(sums_table, bad_sums)})", settings={"join_use_nulls": 1}
                )
            except Exception as exc:  # the engine's error, whichever client raised it
                refused.append("outside the ranking key" in str(exc))
    boards: dict[tuple, list] = defaultdict(list)
    for days, category, wallet, pnl, volume in sums:
        boards[days, category].append((wallet, int(pnl), int(volume)))
    want = {}
    for board, rows in boards.items():
        by_pnl = {w: i + 1 for i, (w, _, _) in enumerate(sorted(rows, key=lambda r: (-r[1], r[0])))}
        by_volume = {w: i + 1 for i, (w, _, _) in enumerate(sorted(rows, key=lambda r: (-r[2], r[0])))}
        want |= {(*board, w): (by_pnl[w], by_volume[w]) for w in by_pnl if min(by_pnl[w], by_volume[w]) <= 3}
    assert got == want
    assert sum(1 for ranks in want.values() if max(ranks) > 10) > 10  # deep ranks were counted
    assert refused == [True, True]
