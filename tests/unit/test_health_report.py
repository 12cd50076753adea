"""The health report without services: configuration, concurrency, status rules, extra checks,
the seed-001 `health` flags, and secrets kept out of errors."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from lastgood.core.settings import reset_settings
from lastgood.monitoring import health
from lastgood.monitoring.health import HealthReport, overall_status, register_check, run_checks, run_probes

from tests.helpers.health import fixed_probe, sleeping_probe, unset_dependencies


@pytest.fixture
def no_default_checks(monkeypatch):
    monkeypatch.setattr(health, "_default_checks", dict)
    monkeypatch.setattr(health, "_CHECKS", {})


def test_a_dependency_without_its_setting_is_reported_not_configured_not_crashed(monkeypatch):
    # Given no dependency configured at all
    unset_dependencies(monkeypatch)
    reset_settings()
    # When the real probes run
    out = run_probes(1.0)
    reset_settings()
    # Then each one says it is not configured and names the variable, and nothing is "down"
    assert set(out) == {"mongodb", "postgres", "upstash", "s3"}
    for name, dep in out.items():
        assert dep["configured"] is False and dep["ok"] is None, name
    assert "MONGODB_URI" in out["mongodb"]["reason"]
    assert "DATABASE_URL" in out["postgres"]["reason"]
    assert overall_status(out, {}) == "healthy"


def test_probes_run_concurrently_so_the_report_takes_the_slowest_not_the_sum():
    # Given four probes that each take 0.3 s
    probes = {name: sleeping_probe(name, 0.3) for name in ("a", "b", "c", "d")}
    # When probed together with a 2 s timeout
    started = time.perf_counter()
    out = run_probes(2.0, probes)
    elapsed = time.perf_counter() - started
    # Then all answered and the run took about one probe's time, not four
    assert all(dep["ok"] for dep in out.values())
    assert elapsed < 0.9


def test_each_timed_out_probe_reports_the_time_it_was_waited_for():
    out = run_probes(0.2, {"slow": sleeping_probe("slow", 1.5), "fast": fixed_probe("fast", True)})
    assert out["slow"]["ok"] is False
    assert out["slow"]["error"] == "Timeout: no answer within 0.2s"
    assert 150 <= out["slow"]["latency_ms"] < 1500
    assert out["fast"] == {"ok": True, "latency_ms": 1.5, "error": None, "configured": True}


def test_any_configured_dependency_down_is_unhealthy_with_503(monkeypatch, no_default_checks):
    # Given postgres refusing and the others up
    probes = {n: fixed_probe(n, True) for n in ("mongodb", "upstash", "s3")}
    probes["postgres"] = fixed_probe("postgres", False, error="OperationalError: connection refused")
    # When the checks run
    report = run_checks(details=True, probes=probes)
    # Then the report is unhealthy, 503, and the details name postgres and why
    assert report.status == "unhealthy" and report.status_code == 503
    assert report.minimal() == {"status": "unhealthy"}
    body = report.details()
    assert body["dependencies"]["postgres"]["error"].startswith("OperationalError")
    assert body["health"] == {"mongodb": True, "postgres": False, "upstash": True, "s3": True}


def test_a_failing_extra_check_degrades_but_keeps_200(monkeypatch, no_default_checks):
    # Given every dependency up and a registered check that is not ok
    register_check("freshness", lambda scheduled: {"ok": False, "age_seconds": 7200})
    probes = {n: fixed_probe(n, True) for n in ("mongodb", "postgres")}
    # When the checks run
    report = run_checks(details=True, probes=probes)
    # Then degraded, 200, and the check's own fields are in the details under its name
    assert report.status == "degraded" and report.status_code == 200
    assert report.details()["freshness"] == {"ok": False, "age_seconds": 7200}


def test_a_check_that_raises_is_reported_with_its_class_and_the_others_still_run(no_default_checks):
    def broken(scheduled: bool) -> dict[str, object]:
        raise RuntimeError("cannot reach mongodb://app:hunter2@db.example.com/app")

    register_check("broken", broken)
    register_check("fine", lambda scheduled: {"ok": True})
    report = run_checks(details=True, probes={"s3": fixed_probe("s3", True)})
    error = report.checks["broken"]["error"]
    assert error.startswith("RuntimeError") and "hunter2" not in error
    assert report.checks["fine"] == {"ok": True}
    assert report.status == "degraded"


def test_checks_learn_whether_the_run_is_scheduled_and_public_health_skips_them(no_default_checks):
    seen: list[bool] = []
    register_check("spy", lambda scheduled: seen.append(scheduled) or {"ok": True})
    probes = {"s3": fixed_probe("s3", True)}
    run_checks(details=False, probes=probes)  # the public /health: probes only
    run_checks(details=True, probes=probes)
    run_checks(details=True, scheduled=True, probes=probes)
    # Then the public one ran none, the details run got False, the scheduled one True
    assert seen == [False, True]


def test_details_carry_the_seed_001_health_flags_and_kv(no_default_checks):
    # Given the KV check in "mongodb fallback" mode (seed 001: health.kv false while KV is down)
    register_check("kv", lambda scheduled: {"ok": False, "status": "mongodb", "health": {"kv": False}})
    probes = {"mongodb": fixed_probe("mongodb", True), "upstash": fixed_probe("upstash", True)}
    report = run_checks(details=True, probes=probes)
    body = report.details()
    # Then the flags users script against are there, alongside status and per-dependency latency
    assert body["health"] == {"mongodb": True, "upstash": True, "kv": False}
    assert body["status"] == "degraded"
    assert body["kv"]["status"] == "mongodb"
    assert body["checked_at"].endswith("Z")
    assert body["dependencies"]["mongodb"]["latency_ms"] == 1.5


def test_unconfigured_dependencies_are_left_out_of_the_flags():
    report = HealthReport(
        "healthy",
        datetime(2026, 1, 1, tzinfo=UTC),
        {"mongodb": {"ok": True, "configured": True}, "postgres": {"ok": None, "configured": False}},
    )
    assert report.details()["health"] == {"mongodb": True}


def test_the_scheduled_run_emits_dependency_metrics_per_dependency(monkeypatch, capsys, no_default_checks):
    # Given metrics enabled (a CLI command earlier in the session may have disabled them)
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    probes = {"mongodb": fixed_probe("mongodb", True, 4.0), "postgres": fixed_probe("postgres", False)}
    # When a scheduled run happens
    run_checks(details=True, scheduled=True, probes=probes)
    # Then one EMF record per dependency with DependencyUp and DependencyLatency
    from tests.helpers.health import emf_records

    records = [r for r in emf_records(capsys.readouterr().out) if "DependencyUp" in r]
    by_dep = {r["dependency"]: r for r in records}
    assert by_dep["mongodb"]["DependencyUp"] == [1.0]
    assert by_dep["mongodb"]["DependencyLatency"] == [4.0]
    assert by_dep["postgres"]["DependencyUp"] == [0.0]
    dims = by_dep["mongodb"]["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0]
    assert set(dims) == {"dependency", "service"}
