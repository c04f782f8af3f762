"""The app database's migrations: from empty, re-applied, guarded; the change trigger; and
the dbt-postgres project beside the ClickHouse one in one process."""

from __future__ import annotations

import json
import shutil

import psycopg
import pytest

import runner
from pipeline.dbt_chdb import run_dbt
from tests.support.settings import make_settings
from watchlist.app_models import app_dbt_environment, build_app_models
from watchlist.migrations import MIGRATIONS_DIR, MigrationError, apply_migrations, discover, migrate

TABLES = {
    "schema_migrations",
    "strategies",
    "strategy_watchlists",
    "market_dim",
    "watchlist_publish_runs",
    "watchlist_events",
}


def tables(url: str) -> set[str]:
    with psycopg.connect(url, autocommit=True) as conn:
        return {
            r[0]
            for r in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
            )
        }


def test_migrations_apply_from_empty_and_reapply_as_a_no_op(empty_pg_url):
    assert tables(empty_pg_url) == set()
    first = migrate(empty_pg_url)
    assert first.applied == [f"{m.version:04d}_{m.name}" for m in discover()] and first.already == []
    assert tables(empty_pg_url) >= TABLES
    again = migrate(empty_pg_url)
    assert again.applied == [] and again.already == first.applied
    with psycopg.connect(empty_pg_url, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM schema_migrations").fetchone()[0] == len(first.applied)


def test_sample_mode_seeds_strategies_once(empty_pg_url, monkeypatch, capsys):
    monkeypatch.setenv("POSTGRES_URL", empty_pg_url)
    monkeypatch.setenv("GOLDSKY_SOURCE", "sample")
    assert runner.main(["migrate", "--skip-models"]) == 0
    assert "sample strategies added" in capsys.readouterr().out
    assert runner.main(["migrate", "--skip-models"]) == 0
    out = capsys.readouterr().out
    assert "0 applied" in out and "sample strategies" not in out
    with psycopg.connect(empty_pg_url, autocommit=True) as conn:
        rows = dict(conn.execute("SELECT id, category_filter FROM strategies").fetchall())
    assert rows["smart-money-all"] is None and rows["smart-money-politics"] == ["Politics / Geopolitics"]


def test_an_edited_migration_is_refused(empty_pg_url, tmp_path):
    folder = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, folder, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    with psycopg.connect(empty_pg_url, autocommit=True) as conn:
        apply_migrations(conn, folder)
        (folder / "0002_watchlist_events.sql").write_text(
            "-- edited\n" + (folder / "0002_watchlist_events.sql").read_text()
        )
        with pytest.raises(MigrationError, match="0002_watchlist_events was changed after it was applied"):
            apply_migrations(conn, folder)
        (folder / "0003_broken.sql").write_text("CREATE TABLE nope (")
        (folder / "0002_watchlist_events.sql").write_text(
            (MIGRATIONS_DIR / "0002_watchlist_events.sql").read_text()
        )
        with pytest.raises(MigrationError, match="migration 0003_broken failed"):
            apply_migrations(conn, folder)
        # the failed migration left nothing behind and is not recorded
        assert conn.execute("SELECT max(version) FROM schema_migrations").fetchone()[0] == 2


def test_every_change_is_logged_and_notified_whoever_writes(empty_pg_url):
    migrate(empty_pg_url)
    with (
        psycopg.connect(empty_pg_url, autocommit=True) as listener,
        psycopg.connect(empty_pg_url, autocommit=True) as writer,
    ):
        listener.execute("LISTEN watchlist_changes")
        writer.execute("INSERT INTO strategies (id, name) VALUES ('s1', 'S1'), ('s2', 'S2')")
        wid = writer.execute(
            "INSERT INTO strategy_watchlists (strategy_id, market_id, reason) "
            "VALUES ('s1', '42', 'manual') RETURNING id"
        ).fetchone()[0]
        writer.execute("UPDATE strategy_watchlists SET status = 'dismissed' WHERE id = %s", (wid,))
        writer.execute("UPDATE strategy_watchlists SET status = 'dismissed' WHERE id = %s", (wid,))  # no-op
        writer.execute("UPDATE strategy_watchlists SET strategy_id = 's2' WHERE id = %s", (wid,))
        writer.execute("DELETE FROM strategy_watchlists WHERE id = %s", (wid,))
        notes = [json.loads(n.payload) for n in listener.notifies(timeout=2.0, stop_after=5)]
        events = writer.execute(
            "SELECT id, op, strategy_id, watchlist_id, entry->>'status' FROM watchlist_events ORDER BY id"
        ).fetchall()
    assert [(op, s) for _, op, s, _, _ in events] == [
        ("insert", "s1"),
        ("update", "s1"),
        ("delete", "s1"),
        ("insert", "s2"),
        ("delete", "s2"),
    ]
    assert [n["event_id"] for n in notes] == [e[0] for e in events]
    assert [n["op"] for n in notes] == [e[1] for e in events]
    assert events[1][4] == "dismissed" and all(e[3] == wid for e in events)


def test_the_table_refuses_what_the_old_service_wrote(empty_pg_url):
    migrate(empty_pg_url)
    with psycopg.connect(empty_pg_url, autocommit=True) as conn:
        conn.execute("INSERT INTO strategies (id, name) VALUES ('s', 'S')")
        with pytest.raises(psycopg.errors.CheckViolation):  # the old placeholder "market id"
            conn.execute(
                "INSERT INTO strategy_watchlists (strategy_id, market_id, reason) "
                "VALUES ('s', %s, 'default')",
                ("0x" + "0" * 64,),
            )
        conn.execute(
            "INSERT INTO strategy_watchlists (strategy_id, market_id, reason) VALUES ('s', '1', 'x')"
        )
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute(
                "INSERT INTO strategy_watchlists (strategy_id, market_id, reason) VALUES ('s', '1', 'y')"
            )


def test_app_dbt_environment_splits_the_url():
    env = app_dbt_environment("postgresql://app:p%40ss@db.example:6543/platform?sslmode=require", "app")
    assert env == {
        "CASCADIAN_PG_HOST": "db.example",
        "CASCADIAN_PG_PORT": "6543",
        "CASCADIAN_PG_USER": "app",
        "DBT_ENV_SECRET_CASCADIAN_PG_PASSWORD": "p@ss",
        "CASCADIAN_PG_DATABASE": "platform",
        "CASCADIAN_PG_SCHEMA": "app",
        "CASCADIAN_PG_SSLMODE": "require",
    }


def test_postgres_project_runs_after_the_clickhouse_project_in_one_process(watchlist_world):
    settings = watchlist_world.settings
    before = run_dbt(settings, ["run", "--select", "dim_markets", "--quiet"])
    assert before.success, before.error
    app = build_app_models(settings)
    assert app.success, (app.error, app.failures)
    kinds = {r["resource_type"] for r in app.results}
    assert {"model", "test", "unit_test"} <= kinds  # the alerts rule is unit-tested by dbt
    after = run_dbt(settings, ["run", "--select", "dim_markets", "--quiet"])  # the chDB hook still works
    assert after.success, after.error


def test_migrate_without_postgres_is_a_clear_error(monkeypatch, capsys, tmp_path):
    settings = make_settings(tmp_path)
    monkeypatch.setenv("CASCADIAN_HOME", str(settings.home))
    monkeypatch.setenv("POSTGRES_URL", "postgresql://127.0.0.1:1/nothing")
    assert runner.main(["migrate"]) == 2
    assert "cannot connect to the app database" in capsys.readouterr().err
    monkeypatch.delenv("POSTGRES_URL")
    assert runner.main(["migrate"]) == 2
    assert "POSTGRES_URL is not set" in capsys.readouterr().err


def view_oid(url: str, name: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute("SELECT %s::regclass::oid", (name,)).fetchone()[0]


def view_columns(url: str, name: str) -> list[tuple[str, str]]:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(
            "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
            "WHERE attrelid = %s::regclass AND attnum > 0 ORDER BY attnum",
            (name,),
        ).fetchall()


def test_a_rebuild_replaces_the_views_in_place(empty_pg_url, tmp_path):
    # Readers of strategy_overview during a nightly publish must never find it missing:
    # dbt's rename-and-drop-cascade swap of watchlist_enriched dropped it until its own
    # model ran again. Replaced in place, each view keeps its identity (its OID).
    settings = make_settings(tmp_path).replace(postgres_url=empty_pg_url)
    migrate(empty_pg_url)
    first = build_app_models(settings)
    assert first.success, (first.error, first.failures)
    before = {v: view_oid(empty_pg_url, v) for v in ("watchlist_enriched", "strategy_overview")}
    columns = view_columns(empty_pg_url, "strategy_overview")
    again = build_app_models(settings)
    assert again.success, (again.error, again.failures)
    assert {v: view_oid(empty_pg_url, v) for v in before} == before
    assert view_columns(empty_pg_url, "strategy_overview") == columns


@pytest.mark.parametrize(
    ("old_select", "kept"),
    [
        ("SELECT id, name FROM strategies", True),  # a prefix of the model's columns
        ("SELECT name, id FROM strategies", False),  # the same columns in another order
        ("SELECT id::varchar(40) AS id, name FROM strategies", False),  # another type
        (  # the same type with another modifier (numeric(5, 4) in the model)
            "SELECT id, name, description, active, category_filter, max_wallet_rank, "
            "min_resolved_markets, min_coverage::numeric(6, 4) AS min_coverage FROM strategies",
            False,
        ),
        ('SELECT id COLLATE "C" AS id, name FROM strategies', False),  # another collation
        ("SELECT 1 AS x", False),  # nothing in common
    ],
)
def test_an_existing_view_is_replaced_whatever_its_columns(empty_pg_url, tmp_path, old_select, kept):
    settings = make_settings(tmp_path).replace(postgres_url=empty_pg_url)
    migrate(empty_pg_url)
    first = build_app_models(settings)
    assert first.success, (first.error, first.failures)
    columns = view_columns(empty_pg_url, "strategy_overview")
    with psycopg.connect(empty_pg_url, autocommit=True) as conn:
        conn.execute("DROP VIEW strategy_overview")
        conn.execute(f"CREATE VIEW strategy_overview AS {old_select}")
        conn.execute("INSERT INTO strategies (id, name) VALUES ('s', 'S')")
    old = view_oid(empty_pg_url, "strategy_overview")
    again = build_app_models(settings)
    assert again.success, (again.error, again.failures)
    assert view_columns(empty_pg_url, "strategy_overview") == columns
    assert (view_oid(empty_pg_url, "strategy_overview") == old) is kept
    with psycopg.connect(empty_pg_url, autocommit=True) as conn:
        rows = conn.execute("SELECT id, entries FROM strategy_overview").fetchall()
    assert rows == [("s", 0)]
