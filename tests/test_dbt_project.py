"""The dbt project's shape, from one parse: dbt's start-up reuses its parse state between
runs, and the graph runs one way (staging -> intermediate -> marts)."""

from __future__ import annotations

import json

import pytest

from pipeline.dbt_chdb import run_dbt
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
