"""The ClickHouse access module: embedded by default, busy instead of a crash when held."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from decimal import Decimal

import pytest

import runner
from pipeline import warehouse
from pipeline.config import PROJECT_ROOT
from tests.support.engine import start_reader_loop, wait_until_in
from tests.support.settings import make_settings


def test_embedded_connect_creates_the_three_databases(tmp_path):
    settings = make_settings(tmp_path)
    with warehouse.connect(settings) as ch:
        warehouse.ensure_databases(ch)
        names = {r[0] for r in ch.query("SELECT name FROM system.databases").result_rows}
        assert {"raw", "analytics", "ops"} <= names
        assert ch.command("SELECT timezone()") == "UTC"
    assert settings.clickhouse_path.is_dir()


def test_a_held_embedded_directory_is_a_clear_busy_error(held_directory):
    with pytest.raises(warehouse.WarehouseBusy, match=r"busy: the embedded ClickHouse at .* is held"):
        warehouse.open_client(held_directory)


def test_the_busy_error_names_the_process_holding_the_engine(engine_holder):
    """The runbook promises `busy: ... held by pid N (...)` from every reader; opening the
    engine used to say only "another process (a pipeline run?)", even for a plain script."""
    settings, holder = engine_holder
    with pytest.raises(warehouse.WarehouseBusy) as caught:
        warehouse.open_client(settings)
    message = str(caught.value)
    assert f"held by pid {holder.pid} (" in message, message
    assert str(settings.clickhouse_path) in message and "\n" not in message
    assert "pipeline run?" not in message


def test_a_status_file_removed_while_we_look_is_not_held(tmp_path, monkeypatch):
    """Before: a holder shutting down removes `status` between our exists() and open(), and
    the FileNotFoundError escaped the open as a crash (CI, the reader-loop test below).
    A lock file that is gone is a lock nobody holds."""
    home = tmp_path / "chdb"
    home.mkdir()
    real_exists = warehouse.Path.exists
    monkeypatch.setattr(warehouse.Path, "exists", lambda self: self.name == "status" or real_exists(self))
    assert warehouse.held_by_another_process(home) is False


def test_a_holder_gone_by_the_time_we_look_is_still_busy(held_directory, monkeypatch, capfd):
    """Before: when the holder let go between chDB's bare "Error initializing EmbeddedServer"
    and our look at the lock, three times running, the open was "unavailable" (CI, the
    reader-loop test below, once in 650 tests). The engine says why it failed on stderr
    ("Cannot lock file"), so that is read, not only the lock afterwards; the line is not
    passed on, the busy error says it instead."""
    monkeypatch.setattr(warehouse, "held_by_another_process", lambda path: False)
    with pytest.raises(warehouse.WarehouseBusy, match=r"busy: the embedded ClickHouse at .* is held"):
        warehouse.open_client(held_directory)
    assert "Cannot lock file" not in capfd.readouterr().err


def test_what_the_engine_says_while_opening_is_passed_on(tmp_path, capfd, monkeypatch):
    """Reading the engine's stderr while it opens must not swallow what others write there
    (another thread, the engine's own warnings)."""
    real_get_client = warehouse.clickhouse_connect.get_client

    def noisy_get_client(**kwargs):
        os.write(2, b"another thread's warning\n")
        return real_get_client(**kwargs)

    monkeypatch.setattr(warehouse.clickhouse_connect, "get_client", noisy_get_client)
    with warehouse.connect(make_settings(tmp_path)) as ch:
        assert ch.command("SELECT 1") == 1
    assert "another thread's warning" in capfd.readouterr().err


def test_a_process_without_stderr_still_opens_the_engine(tmp_path):
    """Reading the engine's stderr must not need one: a process started with fd 2 closed
    (Python then sets sys.stderr to None) failed every open once stderr was read."""
    code = (
        "import sys; from pathlib import Path; from pipeline import warehouse; "
        "from tests.support.settings import make_settings; "
        "ch = warehouse.open_client(make_settings(Path(sys.argv[1]))); "
        "print(sys.stderr is None, ch.command('SELECT 1')); ch.close()"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)],
        preexec_fn=lambda: os.close(2),
        stdout=subprocess.PIPE,
        text=True,
        cwd=PROJECT_ROOT,
        env={**os.environ, "TZ": "UTC"},
        timeout=120,
    )
    assert (done.returncode, done.stdout.split()) == (0, ["True", "1"])


@pytest.mark.slow
def test_a_reader_letting_go_during_a_failed_open_is_busy_not_unavailable(tmp_path):
    """Before: chDB often says only "Error initializing EmbeddedServer" when the directory is
    held, and a reader that opens and closes in a loop had often let go by the time we
    looked at the lock, so about one open in thirty was "cannot open embedded ClickHouse"
    (WarehouseUnavailable), and the night failed instead of waiting (CI, test_night).
    Now every attempt opens or is busy."""
    settings = make_settings(tmp_path)
    with warehouse.connect(settings) as ch:
        ch.command("SELECT 1")
    reader = start_reader_loop(settings.clickhouse_path, 60)
    outcomes = {"open": 0, "busy": 0, "unavailable": []}
    try:
        wait_until_in(reader)
        end = time.monotonic() + 12
        while time.monotonic() < end:
            try:
                warehouse.open_client(settings).close()
                outcomes["open"] += 1
            except warehouse.WarehouseBusy:
                outcomes["busy"] += 1
            except warehouse.WarehouseUnavailable as exc:
                outcomes["unavailable"].append(str(exc))
            time.sleep(0.01)
    finally:
        reader.communicate(timeout=60)
    assert outcomes["busy"] > 0 and outcomes["open"] > 0  # the two really took turns
    assert outcomes["unavailable"] == []


def test_runner_exits_3_with_the_busy_message(held_directory, monkeypatch, capsys):
    for name, value in {
        "CASCADIAN_HOME": str(held_directory.home),
        "DATA_DIR": str(held_directory.data_dir),
        "REPORTS_DIR": str(held_directory.reports_dir),
    }.items():
        monkeypatch.setenv(name, value)
    assert runner.main(["sql", "SELECT 1"]) == 3
    assert "busy:" in capsys.readouterr().err


def test_server_parameters_come_from_url_and_environment(tmp_path):
    settings = make_settings(
        tmp_path,
        CLICKHOUSE_URL="https://ch.example:9443",
        CLICKHOUSE_USER="analyst",
        CLICKHOUSE_PASSWORD="s3cret",
    )
    params = warehouse.server_params(settings)
    assert params == {
        "host": "ch.example",
        "port": 9443,
        "secure": True,
        "username": "analyst",
        "password": "s3cret",
    }
    assert "s3cret" not in repr(settings) and "s3cret" not in str(settings.describe())


def test_unreachable_server_is_a_clear_error(tmp_path):
    settings = make_settings(tmp_path, CLICKHOUSE_URL="http://127.0.0.1:1")
    with pytest.raises(warehouse.WarehouseUnavailable, match=r"cannot reach ClickHouse at 127\.0\.0\.1:1"):
        warehouse.open_client(settings)


DECIMALS = [
    "2103.946780",
    "-81.826620",
    "0.000000",
    "-0.000001",
    "100",
    "1E+2",
    "0.100000",
    "-0.0",
    "12345678901234567890123456789012.123450",  # beyond the default 28 digits of Python
    "-99999999999999999999999999999999.999999",
]


def test_decimal_text_is_what_clickhouse_prints(tmp_path):
    """The API's USD strings come partly from ClickHouse's toString(Decimal) and partly from
    sums in Python: one form for both, checked against the engine itself."""
    with warehouse.connect(make_settings(tmp_path)) as ch:
        printed = [
            ch.query(
                "SELECT toString(toDecimal128({v:String}, 6))", parameters={"v": str(Decimal(v))}
            ).result_rows[0][0]
            for v in DECIMALS
        ]
    assert [warehouse.decimal_text(Decimal(v)) for v in DECIMALS] == printed
    assert [warehouse.decimal_text(p) for p in printed] == printed  # its own output is kept
    units = [int(Decimal(v).scaleb(6)) for v in DECIMALS[:8]]  # 10^-6 units, as the marts store them
    assert [warehouse.decimal_text(u, scale=6) for u in units] == printed[:8]
