"""The one place that bends dbt-clickhouse to chDB: still there, still working."""

from __future__ import annotations

import datetime as dt
import inspect
import os

from dbt.adapters.clickhouse.__version__ import version as dbt_clickhouse_version
from dbt.adapters.clickhouse.httpclient import ChHttpClient

from pipeline import warehouse
from pipeline.dbt_chdb import install_chdb_hook, run_dbt


def test_the_patched_factory_exists_in_the_pinned_adapter():
    # the hook replaces a private method: an adapter upgrade must fail here, not at 03:00
    assert dbt_clickhouse_version == "1.10.3"
    assert list(inspect.signature(ChHttpClient._create_client).parameters) == ["self", "credentials"]


def test_hook_hands_dbt_a_chdb_client_on_the_configured_directory(sample_run):
    settings, _, _ = sample_run
    install_chdb_hook(settings)
    assert getattr(ChHttpClient._create_client, "_cascadian_chdb", False)
    # the profile's host `embedded-chdb` does not exist: only the hook lets dbt connect
    outcome = run_dbt(settings, ["debug", "--quiet"])
    assert outcome.success, outcome.error


def test_source_freshness_runs_on_the_embedded_engine(sample_run):
    settings, _, _ = sample_run
    outcome = run_dbt(settings, ["source", "freshness", "--quiet"])
    statuses = {r["name"]: r["status"] for r in outcome.results}
    with warehouse.connect(settings) as ch:
        newest = ch.command("SELECT max(timestamp) FROM raw.order_filled")
    age = dt.datetime.now() - dt.datetime.fromisoformat(str(newest))
    expected = "pass" if age < dt.timedelta(hours=24) else "warn" if age < dt.timedelta(hours=48) else "error"
    assert statuses["order_filled"] == expected


def test_dbt_writes_with_one_thread_per_core_on_the_embedded_engine(sample_run, monkeypatch):
    """The profile's max_insert_threads (CLICKHOUSE_INSERT_THREADS, 0: one per core, at most 4)
    reaches the engine's session: without it an INSERT ... SELECT writes on one thread."""
    import pipeline.dbt_chdb as hook

    settings, _, _ = sample_run
    opened = []
    real_open = hook.open_client
    monkeypatch.setattr(hook, "open_client", lambda s: opened.append(real_open(s)) or opened[-1])
    outcome = run_dbt(settings, ["debug", "--quiet"])
    assert outcome.success, outcome.error
    assert settings.insert_threads == min(os.cpu_count() or 1, 4)
    assert opened and {c.get_client_setting("max_insert_threads") for c in opened} == {
        str(settings.insert_threads)
    }
    assert settings.model_copy(update={"clickhouse_insert_threads": 3}).insert_threads == 3
    server = settings.model_copy(update={"clickhouse_url": "http://127.0.0.1:8123"})
    assert server.insert_threads == 0  # a server keeps its own setting
