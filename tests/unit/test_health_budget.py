"""Health without services (issue 14): probes follow the config, the deadline bounds every run,
the public cache reuses probe results, and every state but healthy names its reasons."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import pytest
from lastgood.core.config import LastgoodConfig
from lastgood.monitoring import health
from lastgood.monitoring.health import HealthReport, PublicHealth, run_checks
from lastgood.monitoring.probes import configured_probes
from lastgood.monitoring.reasons import check_reasons

from tests.helpers.health import fixed_probe


@pytest.fixture
def no_default_checks(monkeypatch):
    monkeypatch.setattr(health, "_default_checks", dict)
    monkeypatch.setattr(health, "_CHECKS", {})


def config(*sources: dict, datasets: bool = True) -> LastgoodConfig:
    ds = [{"name": "prompts", "collection": "prompts"}] if datasets else []
    return LastgoodConfig.model_validate({"datasets": ds, "sources": list(sources)})


def test_probes_are_the_configured_sources_by_name_plus_s3():
    cfg = config(
        {"name": "ledger", "engine": "postgres", "url_secret": "LEDGER_URL"},
        {"name": "main", "engine": "mongodb", "url_secret": "MONGODB_URI"},
        {"name": "cache", "engine": "upstash", "url_secret": "C_URL", "token_secret": "C_TOKEN"},
    )
    assert list(configured_probes(cfg)) == ["ledger", "main", "cache", "s3"]


def test_the_datasets_database_is_probed_when_no_source_covers_it():
    cfg = config({"name": "ledger", "engine": "postgres", "url_secret": "LEDGER_URL"})
    assert list(configured_probes(cfg)) == ["ledger", "mongodb", "s3"]
    assert list(configured_probes(config(datasets=False))) == ["s3"]


def test_a_configured_source_without_its_secret_is_not_configured_and_named(monkeypatch):
    monkeypatch.delenv("LEDGER_URL", raising=False)
    from lastgood.core.settings import reset_settings

    reset_settings()
    probe = configured_probes(config({"name": "ledger", "engine": "postgres", "url_secret": "LEDGER_URL"}))
    result = probe["ledger"](1.0)
    assert result.detail == {"configured": False, "reason": "LEDGER_URL is not set"}


def test_the_deadline_cuts_a_hung_probe_and_a_hung_check_and_names_both(no_default_checks):
    release = threading.Event()
    health.register_check("stuck", lambda scheduled: release.wait(30) or {"ok": True})

    def hangs(timeout_s: float):
        release.wait(30)

    try:
        started = time.perf_counter()
        report = run_checks(details=True, probes={"db": hangs, "s3": fixed_probe("s3", True)}, deadline_s=0.4)
        elapsed = time.perf_counter() - started
    finally:
        release.set()
    assert elapsed < 1.0
    assert report.dependencies["db"]["status"] == "timeout"
    assert report.dependencies["db"]["error"] == "Timeout: no answer within the 0.4s health deadline"
    assert report.checks["stuck"] == {
        "ok": False,
        "status": "timeout",
        "error": "Timeout: no answer within the 0.4s health deadline",
    }
    assert report.status == "unhealthy"
    assert report.reasons() == [
        "db: timeout (no answer within the 0.4s health deadline)",
        "stuck: timeout (no answer within the 0.4s health deadline)",
    ]


def test_a_probe_returning_garbage_or_raising_base_exceptions_is_that_probe_failing(no_default_checks):
    def exits(timeout_s: float):
        raise SystemExit(3)

    report = run_checks(details=False, probes={"a": lambda t: "nonsense", "b": exits})
    assert report.dependencies["a"]["ok"] is False and "str" in report.dependencies["a"]["error"]
    assert report.dependencies["b"]["error"].startswith("SystemExit")


def test_degraded_always_names_a_reason_even_from_a_check_that_gives_none():
    report = HealthReport("degraded", datetime(2026, 1, 1, tzinfo=UTC), {}, {"custom": {"ok": False}})
    assert report.reasons() == ["custom: not ok (the check gave no reason)"]
    assert report.details()["reasons"] == report.reasons()


def test_backup_and_dataset_reasons_name_each_item_and_why():
    backups = {
        "ok": False,
        "sources": {
            "postgres": {"ok": False, "error": "older than RPO", "age_seconds": 4000.0, "rpo_seconds": 3600},
            "mongodb": {"ok": True},
            "upstash": {
                "ok": False,
                "error": "no complete backup",
                "age_seconds": None,
                "rpo_seconds": 86400,
            },
        },
    }
    assert check_reasons("backups", backups) == [
        "backups: postgres: older than RPO (4000s old, limit 3600s)",
        "backups: upstash: no complete backup",
    ]
    datasets = {
        "ok": False,
        "datasets": {
            "prompts": {"ok": False, "error": "stale", "age_seconds": 9000.0, "budget_seconds": 7200}
        },
    }
    assert check_reasons("datasets", datasets) == ["datasets: prompts: stale (9000s old, limit 7200s)"]


def test_public_health_reuses_its_probe_results_for_the_cache_interval(monkeypatch, no_default_checks):
    calls = []

    def counted(timeout_s: float):
        calls.append(1)
        return fixed_probe("db", True)(timeout_s)

    monkeypatch.setattr(health, "configured_probes", lambda: {"db": counted})
    monkeypatch.setenv("HEALTH_CACHE_S", "15")
    from lastgood.core.settings import reset_settings

    reset_settings()
    now = [100.0]
    public = PublicHealth(clock=lambda: now[0])
    # When 50 calls arrive within the interval, some concurrently
    threads = [threading.Thread(target=public.report) for _ in range(25)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for _ in range(25):
        assert public.report().status == "healthy"
    # Then one probe ran; after the interval, one more
    assert len(calls) == 1
    now[0] += 15.0
    public.report()
    assert len(calls) == 2
    reset_settings()
