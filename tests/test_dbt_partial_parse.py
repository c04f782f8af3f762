"""dbt's start-up: the parse state (target/partial_parse.msgpack) survives between runs and a
second invocation with nothing changed re-parses nothing."""

from __future__ import annotations

from pipeline.dbt_chdb import run_dbt
from tests.support.settings import make_settings


def _log_since(path, offset: int) -> str:
    with open(path, encoding="utf-8", errors="replace") as fh:
        fh.seek(offset)
        return fh.read()


def test_second_invocation_reuses_the_parse_state(tmp_path):
    settings = make_settings(tmp_path)
    first = run_dbt(settings, ["parse", "--quiet"])
    assert first.success, first.error
    state = settings.home / "dbt" / "target" / "partial_parse.msgpack"
    log = settings.home / "dbt" / "logs" / "dbt.log"
    assert state.exists()
    written = state.stat().st_mtime_ns
    offset = log.stat().st_size

    second = run_dbt(settings, ["parse", "--quiet"])

    assert second.success, second.error
    tail = _log_since(log, offset)
    assert "no changes found, skipping parsing" in tail, tail[-2000:]
    assert "Unable to do partial parsing" not in tail
    assert state.stat().st_mtime_ns == written  # nothing re-parsed, nothing re-written
