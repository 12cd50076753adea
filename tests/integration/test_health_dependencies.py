"""`lastgood.monitoring.health.run_checks` against the devstack: every dependency up, and each way a
dependency fails (stopped, hanging past its timeout) reported as that dependency not ok."""

from __future__ import annotations

import time

import pytest
from lastgood.core.settings import reset_settings
from lastgood.monitoring.health import run_checks

pytestmark = pytest.mark.devstack


@pytest.fixture
def short_timeout(monkeypatch):
    monkeypatch.setenv("HEALTH_PROBE_TIMEOUT_S", "0.5")
    reset_settings()
    yield 0.5
    monkeypatch.delenv("HEALTH_PROBE_TIMEOUT_S")
    reset_settings()


def test_every_dependency_of_the_devstack_is_ok(devstack):
    report = run_checks(details=False)
    assert report.status == "healthy", report.dependencies
    for name in ("mongodb", "postgres", "upstash", "s3"):
        dep = report.dependencies[name]
        assert dep["ok"] is True and dep["configured"] is True and dep["latency_ms"] > 0, name


def test_an_upstash_that_hangs_is_a_timeout_and_the_report_does_not_wait(
    devstack, upstash_fault, short_timeout
):
    # Given the Upstash front accepting requests and never answering
    with upstash_fault("hang"):
        # When the checks run with a 0.5 s probe timeout
        started = time.perf_counter()
        report = run_checks(details=False)
        elapsed = time.perf_counter() - started
    # Then upstash is down with a timeout class, the others are fine, and no hang
    upstash = report.dependencies["upstash"]
    assert upstash["ok"] is False
    assert "Timeout" in upstash["error"], upstash
    assert report.dependencies["mongodb"]["ok"] is True
    assert report.status == "unhealthy" and report.status_code == 503
    assert elapsed < short_timeout + 1.5


def test_upstash_rate_limiting_is_reported_with_its_class(devstack, upstash_fault):
    with upstash_fault("429"):
        report = run_checks(details=False)
    assert report.dependencies["upstash"]["ok"] is False
    assert report.dependencies["upstash"]["error"].startswith("UpstashRateLimited")


def test_mongodb_stopped_is_unhealthy_and_names_mongodb(devstack, stopped, short_timeout):
    from lastgood.engines.mongodb import close_clients

    with stopped("mongodb"):
        started = time.perf_counter()
        report = run_checks(details=False)
        elapsed = time.perf_counter() - started
    close_clients()
    assert report.status == "unhealthy"
    assert report.dependencies["mongodb"]["ok"] is False
    assert report.dependencies["postgres"]["ok"] is True
    assert elapsed < short_timeout + 1.5
