"""The ClickHouse access module: embedded by default, busy instead of a crash when held."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

import runner
from pipeline import warehouse
from pipeline.config import PROJECT_ROOT
from tests.conftest import make_settings

HOLDER = textwrap.dedent("""
    import sys, time, clickhouse_connect
    client = clickhouse_connect.get_client(interface="chdb", path=sys.argv[1])
    client.command("SELECT 1")
    print("holding", flush=True)
    sys.stdin.read()  # hold the directory until the test closes our stdin
""")


@pytest.fixture
def held_directory(tmp_path):
    settings = make_settings(tmp_path)
    settings.clickhouse_path.mkdir(parents=True)
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(settings.clickhouse_path)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                              env={"TZ": "UTC", "PATH": ""}, cwd=PROJECT_ROOT)
    assert holder.stdout.readline().strip() == "holding"
    yield settings
    holder.stdin.close()
    holder.wait(timeout=30)


def test_embedded_connect_creates_the_three_databases(tmp_path):
    settings = make_settings(tmp_path)
    with warehouse.connect(settings) as ch:
        warehouse.ensure_databases(ch)
        names = {r[0] for r in ch.query("SELECT name FROM system.databases").result_rows}
        assert {"raw", "analytics", "ops"} <= names
        assert ch.command("SELECT timezone()") == "UTC"
    assert settings.clickhouse_path.is_dir()


def test_a_held_embedded_directory_is_a_clear_busy_error(held_directory):
    with pytest.raises(warehouse.WarehouseBusy, match="busy: the embedded ClickHouse at .* is held"):
        warehouse.open_client(held_directory)


def test_runner_exits_3_with_the_busy_message(held_directory, monkeypatch, capsys):
    for name, value in {"CASCADIAN_HOME": str(held_directory.home),
                        "DATA_DIR": str(held_directory.data_dir),
                        "REPORTS_DIR": str(held_directory.reports_dir)}.items():
        monkeypatch.setenv(name, value)
    assert runner.main(["sql", "SELECT 1"]) == 3
    assert "busy:" in capsys.readouterr().err


def test_server_parameters_come_from_url_and_environment(tmp_path):
    settings = make_settings(tmp_path, CLICKHOUSE_URL="https://ch.example:9443",
                             CLICKHOUSE_USER="analyst", CLICKHOUSE_PASSWORD="s3cret")
    params = warehouse.server_params(settings)
    assert params == {"host": "ch.example", "port": 9443, "secure": True,
                      "username": "analyst", "password": "s3cret"}
    assert "s3cret" not in repr(settings) and "s3cret" not in str(settings.describe())


def test_unreachable_server_is_a_clear_error(tmp_path):
    settings = make_settings(tmp_path, CLICKHOUSE_URL="http://127.0.0.1:1")
    with pytest.raises(warehouse.WarehouseUnavailable, match="cannot reach ClickHouse at 127.0.0.1:1"):
        warehouse.open_client(settings)
