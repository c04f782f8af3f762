"""Configuration: one place, documented defaults, clear errors."""

from __future__ import annotations

import pytest

from pipeline.config import PROJECT_ROOT, ConfigError, load_settings


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
        ({"GOLDSKY_SOURCE": "ftp"}, "GOLDSKY_SOURCE='ftp' is not one of"),
        ({"SAMPLE_DAYS": "ten"}, "must be integers"),
        ({"SAMPLE_DAYS": "0"}, "SAMPLE_DAYS must be at least 1"),
    ],
)
def test_bad_values_are_configuration_errors(env, message):
    with pytest.raises(ConfigError, match=message):
        load_settings(env)
