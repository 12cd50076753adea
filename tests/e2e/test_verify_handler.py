"""The verify Lambda handler (weekly restore drill) with its sample Scheduler events."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest
from lastgood.core.errors import RestoreError

from tests.helpers.events import load_event
from tests.helpers.restore import backup_now, flipped_byte, object_keys

pytestmark = pytest.mark.devstack

APP = Path(__file__).resolve().parents[2] / "functions" / "verify" / "app.py"


def _handler_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("lastgood_fn_verify_app", APP)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def backups(devstack) -> dict[str, str]:
    devstack.seed()
    return {source: backup_now(source) for source in ("postgres", "mongodb", "upstash")}


def test_schedule_event_drills_every_source_and_reports_recovery_times(backups, lambda_context, capsys):
    # When the weekly schedule fires with `{}`
    response = _handler_module().lambda_handler(load_event("verify-schedule.json"), lambda_context)
    # Then every configured source was drilled, passed, with a measured recovery time within its RTO
    assert response["passed"] is True
    results = {r["source"]: r for r in response["results"]}
    assert set(results) == set(backups)
    for source, result in results.items():
        assert result["backup_id"] == backups[source]
        assert 0 < result["recovery_time_seconds"] < result["rto_seconds"]
    # And RestoreTestSuccess / RecoveryTimeSeconds were emitted per source (EMF on stdout)
    emitted = capsys.readouterr().out
    assert emitted.count('"RestoreTestSuccess"') >= 3 and '"RecoveryTimeSeconds"' in emitted


def test_one_source_event_drills_only_that_source(backups, lambda_context):
    response = _handler_module().lambda_handler(load_event("verify-postgres-schedule.json"), lambda_context)
    assert [r["source"] for r in response["results"]] == ["postgres"]
    assert response["passed"] is True


def test_a_failing_drill_raises_after_every_source_ran(backups, lambda_context, monkeypatch):
    # Given the newest mongodb backup corrupted by one byte
    key = object_keys("mongodb", backups["mongodb"])[0]
    ran: list[str] = []
    import lastgood.backups.verify as verify

    real = verify.run_drill

    def counting(name: str, **kwargs):  # type: ignore[no-untyped-def]
        ran.append(name)
        return real(name, **kwargs)

    monkeypatch.setattr(verify, "run_drill", counting)
    with flipped_byte(key), pytest.raises(RestoreError) as failure:
        # When the weekly drill runs
        _handler_module().lambda_handler(load_event("verify-schedule.json"), lambda_context)
    # Then every source was still drilled, and the error names the failed source and object
    assert ran == ["postgres", "mongodb", "upstash"]
    assert "mongodb" in str(failure.value) and key.split("/", 3)[3] in str(failure.value)
