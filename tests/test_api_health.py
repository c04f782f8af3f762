"""GET /api/health runs the real healthcheck (issue 16): it answered from a minimal fallback
because `from health.checks import CHECK_NAMES` raised ImportError, so an instance whose
`runner.py health` was critical answered 200 "warn". These tests fail on any fallback."""

from __future__ import annotations

import concurrent.futures
import importlib
import sys

import httpx
import pytest

from api.health import compute_health
from health import checks
from pipeline.config import ApiSettings
from tests.support.api_helpers import running_api
from tests.support.settings import make_settings

# every check of the healthcheck but its probe of this API (the API is the one answering)
EXPECTED_CHECKS = [name for name, _title, _fn in checks.CHECKS if name != "api"]


def test_an_instance_the_healthcheck_calls_critical_answers_503_critical(tmp_path):
    settings = make_settings(tmp_path)  # nothing loaded: the healthcheck is critical
    direct = checks.run_checks(settings)
    assert direct["status"] == checks.CRITICAL
    with running_api(settings, ApiSettings(health_cache_s=0)) as base:
        response = httpx.get(f"{base}/api/health", timeout=60)
    assert response.status_code == 503
    report = response.json()
    assert report["status"] == checks.CRITICAL
    assert [c["name"] for c in report["checks"]] == EXPECTED_CHECKS
    expected = {c["name"]: c["status"] for c in direct["checks"] if c["name"] != "api"}
    assert {c["name"]: c["status"] for c in report["checks"]} == expected
    assert "source" not in report  # the minimal fallback set "source": "api-minimal"


def test_concurrent_requests_share_one_run_of_the_checks(tmp_path, monkeypatch):
    """A request arriving while the checks run waits for them; it was answered from the
    minimal fallback."""
    settings = make_settings(tmp_path)
    with running_api(settings, ApiSettings(health_cache_s=5)) as base:
        with concurrent.futures.ThreadPoolExecutor(6) as pool:
            answers = list(pool.map(lambda _: httpx.get(f"{base}/api/health", timeout=60), range(6)))
    reports = [a.json() for a in answers]
    assert {a.status_code for a in answers} == {503}
    assert all([c["name"] for c in r["checks"]] == EXPECTED_CHECKS for r in reports)
    assert len({r["generated_at"] for r in reports}) == 1  # one run, shared


def test_a_healthcheck_that_fails_is_critical_naming_the_failure_never_a_fallback(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("the healthcheck itself broke")

    monkeypatch.setattr(checks, "run_checks", broken)
    code, report = compute_health(make_settings(tmp_path))
    assert code == 503
    assert report["status"] == checks.CRITICAL and "the healthcheck itself broke" in report["error"]
    assert report["checks"] == []


def test_there_is_no_fallback_when_the_healthcheck_cannot_be_imported(monkeypatch):
    import api.health
    import health

    monkeypatch.setitem(sys.modules, "health.checks", None)  # as if health/checks.py were gone
    monkeypatch.delattr(health, "checks")
    with pytest.raises(ImportError):
        importlib.reload(api.health)
    monkeypatch.undo()
    importlib.reload(api.health)
