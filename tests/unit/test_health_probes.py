"""Health probes: concurrent, each bounded by its timeout; status rules; constant-time key check."""

from __future__ import annotations

import threading
import time

from lastgood.engines.base import ProbeResult
from lastgood.monitoring.health import overall_status, run_probes


def test_a_hanging_probe_is_reported_as_a_timeout_without_waiting_for_it():
    # Given one probe that hangs for 30 s and one that answers
    release = threading.Event()

    def hangs(timeout_s: float) -> ProbeResult:
        release.wait(30)
        return ProbeResult("slow", True, 0)

    def answers(timeout_s: float) -> ProbeResult:
        return ProbeResult("fast", True, 1.0)

    started = time.perf_counter()
    try:
        # When probed with a 0.2 s timeout
        out = run_probes(0.2, {"slow": hangs, "fast": answers})
    finally:
        release.set()
    # Then the report comes back in well under the hang, naming the timeout
    assert time.perf_counter() - started < 2
    assert out["slow"]["ok"] is False and out["slow"]["error"].startswith("Timeout")
    assert out["fast"]["ok"] is True


def test_a_probe_that_raises_is_reported_not_propagated():
    def boom(timeout_s: float) -> ProbeResult:
        raise RuntimeError("kaput")

    out = run_probes(1, {"x": boom})
    assert out["x"]["ok"] is False and "RuntimeError" in out["x"]["error"]


def test_status_rules_unconfigured_is_not_a_failure_and_extra_checks_only_degrade():
    up = {"ok": True, "configured": True}
    down = {"ok": False, "configured": True}
    absent = {"ok": None, "configured": False}
    assert overall_status({"a": up, "b": absent}, {}) == "healthy"
    assert overall_status({"a": up, "b": down}, {}) == "unhealthy"
    assert overall_status({"a": up}, {"backups": {"ok": False}}) == "degraded"


def test_details_compare_the_admin_key_in_constant_time(monkeypatch, lambda_context):
    # Given the admin key and a spy on hmac.compare_digest
    import hmac
    import importlib.util
    import json
    from pathlib import Path

    from tests.helpers.events import load_event

    calls = []
    real = hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    monkeypatch.setenv("ADMIN_KEY", "s3cret-admin-key")
    from lastgood.core.settings import reset_settings

    reset_settings()
    path = Path(__file__).resolve().parents[2] / "functions" / "health" / "app.py"
    spec = importlib.util.spec_from_file_location("health_app_under_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    event = load_event("health-details-badkey")
    # When a wrong key is presented
    result = module.lambda_handler(event, lambda_context)
    # Then it is refused and the comparison went through compare_digest
    assert result["statusCode"] == 401
    assert calls and calls[0][1] == b"s3cret-admin-key"
    assert "dependencies" not in json.dumps(result)
    reset_settings()
