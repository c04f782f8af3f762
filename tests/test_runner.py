"""The command line: querying the marts, dbt pass-through, and exit codes of a run."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest

import runner
from nightly.run import run_nightly
from pipeline.sql_cli import run_query
from tests.support.factories import fill, market, resolution, token, wallet, write_jsonl, write_reference
from tests.support.settings import SAMPLE_NOW, make_settings


def _env(monkeypatch, settings, **extra):
    env = {
        "CASCADIAN_HOME": str(settings.home),
        "DATA_DIR": str(settings.data_dir),
        "REPORTS_DIR": str(settings.reports_dir),
        "GOLDSKY_SOURCE": settings.goldsky_source,
        "GOLDSKY_DATASET_DIR": str(settings.goldsky_dataset_dir),
        **extra,
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)


def test_sql_outputs_table_csv_and_json(sample_run):
    settings, _, _ = sample_run
    query = (
        "SELECT category, sum(realized_pnl) AS pnl, sum(realized_pnl_usd) AS usd "
        "FROM analytics.fct_wallet_category_pnl GROUP BY category ORDER BY category"
    )
    out = io.StringIO()
    run_query(settings, query, "csv", out)
    rows = list(csv.reader(io.StringIO(out.getvalue())))
    assert rows[0] == ["category", "pnl", "usd"] and len(rows) == 10
    out = io.StringIO()
    run_query(settings, query, "json", out)
    objs = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [o["category"] for o in objs] == [r[0] for r in rows[1:]]
    assert all(str(o["usd"]).count(".") == 1 for o in objs)  # exact decimals, as strings
    out = io.StringIO()
    run_query(settings, query, "table", out)
    assert out.getvalue().splitlines()[0].startswith("category") and "(9 rows)" in out.getvalue()


def test_sql_error_is_one_readable_line(sample_run, capsys):
    """A failed query is "failed" (2; 1 is "worth a look"), and the engine's whole reason is
    kept: the first line alone cut a syntax error before "Expected one of: ..."."""
    settings, _, _ = sample_run
    assert run_query(settings, "SELECT nope FROM analytics.dim_markets", "table", io.StringIO()) == 2
    err = capsys.readouterr().err
    assert err.startswith("query failed: ") and "nope" in err and len(err.splitlines()) == 1
    assert run_query(settings, "selec 1", "table", io.StringIO()) == 2
    err = capsys.readouterr().err
    assert err.startswith("query failed: Syntax error") and len(err.splitlines()) == 1
    assert "Expected one of: " in err and err.rstrip().endswith("(SYNTAX_ERROR)")
    assert "FORMAT Native" not in err and "readonly" not in err  # the client's suffixes


def test_sql_with_its_own_format_clause_says_to_use_the_option(sample_run, capsys):
    """The client adds its own FORMAT, so a query's FORMAT clause failed with a syntax error
    about "FORMAT Native", a clause the analyst never wrote."""
    settings, _, _ = sample_run
    assert run_query(settings, "select 1 as x format CSV", "table", io.StringIO()) == 2
    err = capsys.readouterr().err
    assert "--format" in err and "FORMAT clause" in err and "Native" not in err


def test_sql_is_read_only_unless_asked_to_write(tmp_path, monkeypatch, capsys):
    """`runner.py sql` is described as querying the warehouse, yet `create database` (or a
    drop of the marts) went through. Reads, settings included, still work; a write needs
    --write, and without it is refused with a sentence saying how."""
    settings = make_settings(tmp_path)
    _env(monkeypatch, settings)
    exists = "SELECT count() FROM system.databases WHERE name = 'scratch'"
    assert runner.main(["sql", "CREATE DATABASE scratch"]) == 2
    err = capsys.readouterr().err
    assert "read-only" in err and "--write" in err and len(err.splitlines()) == 1
    assert runner.main(["sql", exists + " SETTINGS max_threads = 1", "--format", "csv"]) == 0
    assert capsys.readouterr().out.splitlines()[1:] == ["0"]
    assert runner.main(["sql", "--write", "CREATE DATABASE scratch"]) == 0
    capsys.readouterr()
    assert runner.main(["sql", exists, "--format", "csv"]) == 0
    assert capsys.readouterr().out.splitlines()[1:] == ["1"]
    assert runner.main(["sql", "DROP DATABASE scratch"]) == 2  # and the same for a drop
    assert "read-only" in capsys.readouterr().err
    assert runner.main(["sql", exists, "--format", "csv"]) == 0
    assert capsys.readouterr().out.splitlines()[1:] == ["1"]


def test_a_read_only_clickhouse_user_is_not_sent_readonly():
    """A user whose profile is read-only may not change `readonly`: the client refuses to
    send it ("Setting readonly is readonly"), so every query of such a user would fail."""
    from clickhouse_connect.driver.models import SettingDef

    from pipeline.sql_cli import READ_ONLY, _read_only_settings

    class Client:
        def __init__(self, value, readonly):
            self.server_settings = {"readonly": SettingDef(name="readonly", value=value, readonly=readonly)}

    assert _read_only_settings(Client("0", 0)) == READ_ONLY
    assert _read_only_settings(Client("1", 1)) == {}


def test_runs_with_no_run_recorded_says_so(tmp_path, monkeypatch, capsys):
    """It printed the table's header alone, which reads like a listing that failed."""
    settings = make_settings(tmp_path)
    _env(monkeypatch, settings)
    assert runner.main(["runs"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("no runs yet") and str(settings.reports_dir) in out and "run id" not in out
    assert runner.main(["runs", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_runs_names_the_steps_that_were_not_successful(tmp_path, monkeypatch, capsys):
    """The "failed steps" column was empty for a partial run: its partial step is what made it
    partial, and a run's steps that did their work in full are not listed."""
    from pipeline import history

    settings = make_settings(tmp_path)
    _env(monkeypatch, settings)
    steps = [("preflight", "success"), ("load_reference", "partial"), ("watchlist_publish", "failed")]
    history.write_summary(
        settings,
        {
            "run_id": "20261128T080000Z-aaaaaa",
            "trigger": "manual",
            "status": "partial",
            "started_at": "2026-11-28T08:00:00+00:00",
            "seconds": 12.0,
            "steps": [{"name": n, "status": st} for n, st in steps],
        },
    )
    assert runner.main(["runs"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "not successful" in lines[0]
    assert lines[1].endswith("load_reference partial, watchlist_publish failed"), lines[1]


def test_ingest_while_another_process_holds_the_engine_is_busy_exit_3(engine_holder, monkeypatch, capsys):
    """Busy is 3 for every command (README, Exit codes); ingest ran its step regardless, and
    the step's failure to open made it "ingest: failed: busy: ..." with exit 2."""
    settings, holder = engine_holder
    _env(monkeypatch, settings)
    assert runner.main(["ingest"]) == 3
    captured = capsys.readouterr()
    assert captured.err.startswith("busy: ") and f"held by pid {holder.pid} (" in captured.err
    assert "failed" not in captured.out + captured.err


def test_dbt_on_a_held_engine_is_busy_unless_it_needs_none(engine_holder, monkeypatch, capsys):
    """dbt caught the busy error as "Database Error" and the command exited 1; a command that
    reads only the project (`dbt ls`) must keep working while a run holds the engine."""
    settings, holder = engine_holder
    _env(monkeypatch, settings)
    assert runner.main(["dbt", "run", "--select", "dim_markets"]) == 3
    captured = capsys.readouterr()
    assert captured.err.startswith("busy: ") and f"held by pid {holder.pid} (" in captured.err
    assert "Database Error" not in captured.out + captured.err
    assert runner.main(["dbt", "ls", "--select", "dim_markets", "--resource-type", "model"]) == 0
    assert "marts.dim_markets" in capsys.readouterr().out


def test_dbt_pass_through_runs_plain_dbt_arguments(sample_run, monkeypatch, capsys):
    settings, _, _ = sample_run
    _env(monkeypatch, settings)
    assert runner.main(["dbt", "test", "--select", "dim_markets", "--quiet"]) == 0
    # a dbt command that fails is "failed" (2, README's exit codes), not "worth a look" (1)
    assert runner.main(["dbt", "compile", "--select", "nonsense+", "--bogus-flag"]) == 2
    # a model that fails to build (a quote in a var the SQL inlines breaks its syntax)
    assert (
        runner.main(["dbt", "run", "--select", "int_market_categories", "--vars", '{uncategorized: "it\'s"}'])
        == 2
    )
    # ... and leaves the table it failed to replace as it was (other tests read this warehouse)
    capsys.readouterr()
    assert runner.main(["sql", "select count() from analytics.int_market_categories", "--format", "csv"]) == 0
    assert int(capsys.readouterr().out.split()[-1]) > 0


@pytest.mark.slow
def test_a_failing_step_makes_the_run_exit_non_zero(tmp_path, monkeypatch, capsys):
    settings = make_settings(tmp_path, GOLDSKY_SOURCE="dataset")
    write_reference(settings.data_dir, [market(1)], [resolution(1, "YES")])
    good = [fill(1, 1764300000, wallet(1), "BUY", token(1, 0), 10_000_000, 4_000_000)]
    write_jsonl(settings.goldsky_dataset_dir / "good.jsonl", good)
    write_jsonl(settings.goldsky_dataset_dir / "bad.jsonl", [dict(good[0], id="x", maker_amount_filled="?")])
    _env(monkeypatch, settings)
    code = runner.main(["run"])
    out = capsys.readouterr().out
    assert code == 1, out  # partial: one file rejected, the other loaded and the build ran
    assert re.search(r"ingest_fills +partial", out) and re.search(r"dbt_build +success", out)
    summary = json.loads(next(settings.reports_dir.rglob("summary.json")).read_text())
    assert summary["status"] == "partial"
    ingest = next(s for s in summary["steps"] if s["name"] == "ingest_fills")
    assert "bad.jsonl: rejected" in ingest["error"]


@pytest.mark.slow
def test_a_night_with_no_input_is_not_a_success(tmp_path, monkeypatch, capsys):
    """DATA_DIR empty and no dataset files: nothing is loaded or built; the run used to end
    `success` with exit 0 (issue 15). It fails, with the reason on each skipped step."""
    settings = make_settings(tmp_path, GOLDSKY_SOURCE="dataset")
    status, run = run_nightly(settings, now=SAMPLE_NOW)
    steps = {s["name"]: s for s in run["steps"]}
    assert steps["ingest_fills"]["status"] == "skipped" and steps["ingest_fills"]["missing_input"]
    assert "no dataset files under" in steps["ingest_fills"]["message"]
    assert steps["load_reference"]["status"] == "skipped" and steps["load_reference"]["missing_input"]
    assert steps["dbt_build"]["status"] == "skipped"
    assert steps["dbt_build"]["message"].startswith("nothing to work on: ingest_fills, which was skipped")
    assert status == "failed"
    _env(monkeypatch, settings)
    assert runner.main(["run"]) == 2
    assert re.search(r"run \S+: failed", capsys.readouterr().out)


def test_dbt_output_has_no_colour_codes_when_not_a_terminal(sample_run, monkeypatch, capsys):
    """Piped into a file or a log shipper, dbt's lines carried ANSI colour codes."""
    settings, _, _ = sample_run
    _env(monkeypatch, settings)
    assert runner.main(["dbt", "test", "--select", "dim_markets"]) == 0
    out = capsys.readouterr().out
    assert "dim_markets" in out and "\x1b[" not in out
