"""The dbt project's shape, from one parse: dbt's start-up reuses its parse state between
runs, and the graph runs one way (staging -> intermediate -> marts). On the sample night's
warehouse: the YAMLs describe every built column, docs/data-contract.md lists every mart's."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest

from nightly.steps import dbt_build_args
from pipeline import names, warehouse
from pipeline.config import PROJECT_ROOT
from pipeline.dbt_chdb import dbt_environment, run_dbt
from tests.support.settings import make_settings


@pytest.fixture(scope="module")
def parsed(tmp_path_factory):
    settings = make_settings(tmp_path_factory.mktemp("dbt_project"))
    outcome = run_dbt(settings, ["parse", "--quiet"])
    assert outcome.success, outcome.error
    return settings


def _log_since(path, offset: int) -> str:
    with open(path, encoding="utf-8", errors="replace") as fh:
        fh.seek(offset)
        return fh.read()


def test_second_invocation_reuses_the_parse_state(parsed):
    state = parsed.home / "dbt" / "target" / "partial_parse.msgpack"
    log = parsed.home / "dbt" / "logs" / "dbt.log"
    assert state.exists()
    written = state.stat().st_mtime_ns
    offset = log.stat().st_size

    second = run_dbt(parsed, ["parse", "--quiet"])

    assert second.success, second.error
    tail = _log_since(log, offset)
    assert "no changes found, skipping parsing" in tail, tail[-2000:]
    assert "Unable to do partial parsing" not in tail
    assert state.stat().st_mtime_ns == written  # nothing re-parsed, nothing re-written


def test_the_graph_runs_one_way(parsed):
    manifest = json.loads((parsed.home / "dbt" / "target" / "manifest.json").read_text())
    layer = {"staging": 0, "intermediate": 1, "marts": 2}
    models = {
        uid: layer[node["fqn"][1]]
        for uid, node in manifest["nodes"].items()
        if node["resource_type"] == "model"
    }
    upward = [
        (uid, parent)
        for uid, node in manifest["nodes"].items()
        if uid in models
        for parent in node["depends_on"]["nodes"]
        if parent in models and models[parent] > models[uid]
    ]
    assert len(models) > 10
    assert upward == []


def _nodes_built(settings, args: list[str], monkeypatch) -> set[str]:
    """The nodes a `dbt build` with `args` would run, as dbt itself selects them (`dbt ls`)."""
    from dbt.cli.main import dbtRunner

    for name, value in dbt_environment(settings).items():
        monkeypatch.setenv(name, value)
    project = str(settings.dbt_project_dir)
    selection = [a for a in args if a not in ("build", "--quiet")]
    listed = dbtRunner().invoke(
        ["ls", *selection, "--output", "name", "--quiet", "--project-dir", project, "--profiles-dir", project]
    )
    assert listed.success, listed.exception
    return set(listed.result)


def test_a_night_between_full_checks_skips_only_the_whole_history_tests(parsed, monkeypatch):
    """SCHEDULE_FULL_CHECKS=sunday: a Saturday night builds every model and runs the data tests
    of the small tables; the Sunday night also runs the tests of the models tagged
    whole_history (they read the whole history), and nothing else differs."""
    settings = parsed.replace(schedule=parsed.schedule.replace(full_checks="sunday"))
    saturday = dt.datetime(2026, 11, 28, 8, 0, tzinfo=dt.UTC)
    manifest = json.loads((parsed.home / "dbt" / "target" / "manifest.json").read_text())
    nodes = manifest["nodes"].values()
    models = {n["unique_id"]: n for n in nodes if n["resource_type"] == "model"}
    tagged = {uid for uid, n in models.items() if "whole_history" in n["tags"]}
    # a test of a tagged model (dbt selects a test with any of its models), or tagged itself
    whole_history = {
        n["name"]
        for n in nodes
        if n["resource_type"] == "test"
        and ("whole_history" in n["tags"] or tagged & set(n["depends_on"]["nodes"]))
    }

    between = _nodes_built(settings, dbt_build_args(settings, saturday), monkeypatch)
    full = _nodes_built(settings, dbt_build_args(settings, saturday + dt.timedelta(days=1)), monkeypatch)

    assert full - between == whole_history
    assert between <= full and {n["name"] for n in models.values()} <= between
    assert {
        "unique_combination_int_wallet_market_days_wallet__market_key__day__row_version",
        "unique_stg_goldsky__order_filled_fill_id",
        "assert_daily_pnl_sums_to_realized",
    } <= whole_history
    # the small tables' tests run every night
    assert "unique_combination_fct_leaderboard_time_window__category__wallet" in between


def test_the_unit_tests_pass_on_a_built_warehouse(sample_run):
    """A night runs no dbt unit test (nightly/steps.py): they check the models' SQL, which no
    night changes, so they run here, on the sample night's warehouse (dbt reads the inputs'
    column types from it); the tagged ones need the incremental state (test_incremental.py)."""
    settings, _, _ = sample_run
    manifest = json.loads((settings.home / "dbt" / "target" / "manifest.json").read_text())
    expected = {
        t["name"] for t in manifest["unit_tests"].values() if "needs_built_state" not in t["config"]["tags"]
    }

    outcome = run_dbt(settings, ["test", "--select", "test_type:unit", "--exclude", "tag:needs_built_state"])

    assert outcome.success, outcome.failures or outcome.error
    assert {r["name"] for r in outcome.results} == expected
    assert len(expected) >= 15


def _built_columns(settings) -> dict[str, list[str]]:
    """Every table and view of the analytics database with its columns, in order."""
    with warehouse.connect(settings) as ch:
        rows = ch.query(
            "SELECT table, name FROM system.columns WHERE database = {db:String} ORDER BY table, position",
            parameters={"db": names.ANALYTICS},
        ).result_rows
    built: dict[str, list[str]] = {}
    for table, column in rows:
        built.setdefault(table, []).append(column)
    return built


def test_every_built_column_is_described(sample_run):
    """The YAMLs describe every column each model builds, and no column it does not build."""
    settings, _, _ = sample_run
    manifest = json.loads((settings.home / "dbt" / "target" / "manifest.json").read_text())
    described = {
        n["name"]: {c["name"]: c["description"].strip() for c in n["columns"].values()}
        for n in manifest["nodes"].values()
        if n["resource_type"] == "model"
    }
    built = _built_columns(settings)

    assert set(described) <= set(built)
    undescribed = sorted((t, c) for t in described for c in built[t] if not described[t].get(c))
    not_built = sorted((t, c) for t in described for c in described[t] if c not in built[t])
    assert undescribed == []
    assert not_built == []


def test_the_data_contract_lists_every_mart_column(sample_run):
    """docs/data-contract.md's mart table lists each mart's columns, all of them, in order
    (`x(_usd)` stands for `x` and `x_usd`; a parenthesis after a name annotates it)."""
    settings, _, _ = sample_run
    doc = (PROJECT_ROOT / "docs" / "data-contract.md").read_text()
    table = doc[doc.index("| model | grain |") :].split("\n\n")[0].splitlines()[2:]
    listed = {}
    for row in table:
        model, _grain, cell = (c.strip() for c in row.strip("|").split(" | "))
        cell = re.sub(r"\s\([^)]*\)", "", cell.replace("(_usd)", "+usd"))
        listed[model.strip("`")] = [
            column
            for name, usd in re.findall(r"`(\w+)(\+usd)?`", cell)
            for column in ([name, f"{name}_usd"] if usd else [name])
        ]
    built = _built_columns(settings)

    assert set(listed) == set(names.MARTS)
    assert {m: built[m] for m in listed} == listed
