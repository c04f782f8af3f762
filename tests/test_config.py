"""Configuration: one place, documented defaults, clear errors."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from pipeline.config import (
    PROJECT_ROOT,
    ConfigError,
    configuration_markdown,
    load_env_file,
    load_settings,
    variables,
)


def test_defaults_are_embedded_sample_and_project_folders():
    s = load_settings({})
    assert s.embedded and s.clickhouse_url is None
    assert s.clickhouse_path == PROJECT_ROOT / ".cascadian" / "chdb"
    assert s.data_dir == PROJECT_ROOT / "data"
    assert s.goldsky_source == "sample"
    assert s.postgres_url is None
    assert s.reports_dir == PROJECT_ROOT / "reports"


def test_environment_overrides(tmp_path):
    s = load_settings(
        {
            "CLICKHOUSE_URL": "http://db:8123",
            "DATA_DIR": str(tmp_path),
            "GOLDSKY_SOURCE": "dataset",
            "GOLDSKY_DATASET_DIR": str(tmp_path / "g"),
            "POSTGRES_URL": "postgresql://app:pw@127.0.0.1/test",
        }
    )
    assert not s.embedded
    assert (s.data_dir, s.goldsky_source, s.goldsky_dataset_dir) == (tmp_path, "dataset", tmp_path / "g")
    assert s.describe()["postgres"] == "postgresql://127.0.0.1/test"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"GOLDSKY_SOURCE": "ftp"},
            "GOLDSKY_SOURCE='ftp': Input should be 'sample', 'dataset' or 'subgraph'",
        ),
        ({"SAMPLE_DAYS": "ten"}, "SAMPLE_DAYS='ten': Input should be a valid integer"),
        ({"SAMPLE_DAYS": "0"}, "SAMPLE_DAYS='0': Input should be greater than or equal to 1"),
        (
            {"LOG_LEVEL": "verbose"},
            "LOG_LEVEL='VERBOSE': Input should be 'DEBUG', 'INFO', 'WARNING' or 'ERROR'",
        ),
        ({"LOG_FORMAT": "yaml"}, "LOG_FORMAT='yaml': Input should be 'auto', 'json' or 'text'"),
        (
            {"GOLDSKY_PAGE_SIZE": "5000"},
            "GOLDSKY_PAGE_SIZE='5000': Input should be less than or equal to 1000",
        ),
        ({"API_RETRY_AFTER_S": "soon"}, "API_RETRY_AFTER_S='soon': Input should be a valid integer"),
        ({"HEALTH_TRADES_WARN_HOURS": "50"}, "HEALTH_TRADES_WARN_HOURS (50.0) must not exceed"),
        ({"SCHEDULE_AT": "3am"}, "SCHEDULE_AT='3am': '3am' is not a time of day as HH:MM"),
        (
            {"SCHEDULE_FULL_CHECKS": "funday"},
            "SCHEDULE_FULL_CHECKS='funday': 'funday' is not a weekday name (monday ... sunday) or 'daily'",
        ),
        ({"CLICKHOUSE_WAIT_S": "-1"}, "CLICKHOUSE_WAIT_S='-1': Input should be greater than or equal to 0"),
    ],
)
def test_bad_values_are_configuration_errors_naming_the_variable(env, message):
    with pytest.raises(ConfigError, match="^" + re.escape(message)):
        load_settings(env)


def test_every_group_reads_its_variables():
    s = load_settings(
        {
            "API_TOKEN": "t0ken",
            "MIN_RESOLVED_CONDITIONS": "7",
            "WATCHLIST_TOP_WALLETS": "3",
            "SCHEDULE_TZ": "Europe/Paris",
            "LOG_LEVEL": "debug",
        }
    )
    assert (s.api.token, s.health.min_resolved_conditions, s.watchlist.top_wallets) == ("t0ken", 7, 3)
    assert (s.schedule.tz, s.schedule.hour, s.log_level) == ("Europe/Paris", 3, "DEBUG")
    assert "t0ken" not in repr(s)


def test_the_full_check_night_is_the_weekday_where_the_schedule_runs():
    """Sunday by default, in SCHEDULE_TZ: the Sunday 03:00 New York run starts at 08:00 UTC in
    winter; a run started on Sunday in UTC but Saturday evening in New York is not it."""
    sunday_night = dt.datetime(2026, 12, 6, 8, 0, tzinfo=dt.UTC)
    saturday_evening_in_new_york = dt.datetime(2026, 12, 6, 2, 0, tzinfo=dt.UTC)
    schedule = load_settings({}).schedule
    assert schedule.full_checks == "sunday"
    assert schedule.full_checks_on(sunday_night)
    assert not schedule.full_checks_on(saturday_evening_in_new_york)
    assert not schedule.full_checks_on(sunday_night + dt.timedelta(days=1))
    assert load_settings({"SCHEDULE_FULL_CHECKS": " Monday "}).schedule.full_checks_on(
        sunday_night + dt.timedelta(days=1)
    )
    assert load_settings({"SCHEDULE_FULL_CHECKS": "daily"}).schedule.full_checks_on(
        saturday_evening_in_new_york
    )


def test_an_empty_value_means_the_default():
    assert load_settings({"SAMPLE_DAYS": "", "LOG_LEVEL": " "}).sample_days == 30


def test_the_env_file_completes_the_environment_without_overriding_it(tmp_path, monkeypatch):
    env_file = tmp_path / "cascadian.env"
    env_file.write_text("SAMPLE_DAYS=12\nSAMPLE_SEED=5\n# a comment\nexport LOG_LEVEL=debug\n")
    monkeypatch.setenv("CASCADIAN_ENV_FILE", str(env_file))
    monkeypatch.setenv("SAMPLE_SEED", "9")
    for name in ("SAMPLE_DAYS", "LOG_LEVEL"):
        monkeypatch.delenv(name, raising=False)
    assert load_env_file() == env_file
    s = load_settings()
    assert (s.sample_days, s.sample_seed, s.log_level) == (12, 9, "DEBUG")


def test_a_line_of_the_env_file_that_is_not_name_value_is_an_error_naming_the_file(
    tmp_path, monkeypatch, caplog
):
    """python-dotenv skipped it with "could not parse statement starting at line 3", naming no
    file, and the run went on without the setting the line was meant to be. The line's text
    is not repeated: it may hold a secret."""
    env_file = tmp_path / "cascadian.env"
    env_file.write_text("SAMPLE_DAYS=12\n\n# fine\n\nAPI_TOKEN s3cret-value\n")
    monkeypatch.setenv("CASCADIAN_ENV_FILE", str(env_file))
    with pytest.raises(ConfigError) as caught:
        load_env_file()
    assert f"{env_file}, line 5:" in str(caught.value) and "NAME=value" in str(caught.value)
    assert "s3cret" not in str(caught.value) + caplog.text


def test_a_named_env_file_that_is_missing_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv("CASCADIAN_ENV_FILE", str(tmp_path / "nope.env"))
    with pytest.raises(ConfigError, match=r"CASCADIAN_ENV_FILE=.*does not exist"):
        load_env_file()


def test_every_variable_is_documented_once():
    rows = variables()
    names = [r["variable"] for r in rows]
    assert len(names) == len(set(names))
    assert all(r["meaning"] for r in rows), [r["variable"] for r in rows if not r["meaning"]]
    assert {
        "CASCADIAN_HOME",
        "API_TOKEN",
        "MIN_RESOLVED_CONDITIONS",
        "DEFAULT_CONDITION_IDS",
        "SCHEDULE_AT",
    } <= set(names)
    documented = (PROJECT_ROOT / "docs" / "configuration.md").read_text()
    assert documented == configuration_markdown(), (
        "docs/configuration.md is stale: run `runner.py config --markdown > docs/configuration.md`"
    )
