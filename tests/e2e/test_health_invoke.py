"""Issue 3 must-show: `lastgood invoke health` against the devstack, like `sam local invoke`."""

from __future__ import annotations

import json
from typing import Any

import pytest
from lastgood.cli import main

from tests.helpers.events import event_path

pytestmark = pytest.mark.devstack


def invoke(capsys: pytest.CaptureFixture[str], event: str) -> tuple[int, dict[str, Any], str]:
    code = main(["--no-env-file", "invoke", "health", "--event", str(event_path(event))])
    out, err = capsys.readouterr()
    return code, json.loads(out), err


def test_public_health_is_200_and_minimal_when_every_dependency_answers(capsys, devstack):
    # Given the devstack with every service up
    # When GET /health is invoked through the local invoker
    code, result, _ = invoke(capsys, "health-api")
    # Then 200 with only the status
    assert code == 0
    assert result["statusCode"] == 200
    assert json.loads(result["body"]) == {"status": "healthy"}


def test_details_report_every_dependency_ok_with_latency_and_the_seed_001_shape(capsys, devstack):
    _code, result, _ = invoke(capsys, "health-details")
    body = json.loads(result["body"])
    assert result["statusCode"] == 200
    for name in ("mongodb", "postgres", "upstash", "s3"):
        dep = body["dependencies"][name]
        assert dep["ok"] is True, (name, dep)
        assert dep["latency_ms"] >= 0
        assert body["health"][name] is True
    assert body["health"]["kv"] is True
    assert body["kv"]["status"] in {"kv", "mongodb", "fallback"}


def test_postgres_down_turns_health_503_and_names_postgres(capsys, devstack, stopped):
    # Given PostgreSQL is stopped
    with stopped("postgres"):
        # When both endpoints are invoked
        _, public, _ = invoke(capsys, "health-api")
        _, details, _ = invoke(capsys, "health-details")
    # Then the public answer is 503 and the details say which dependency failed and why
    assert public["statusCode"] == 503
    assert json.loads(public["body"]) == {"status": "unhealthy"}
    body = json.loads(details["body"])
    assert details["statusCode"] == 503
    assert body["dependencies"]["postgres"]["ok"] is False
    assert body["dependencies"]["postgres"]["error"]
    assert body["dependencies"]["mongodb"]["ok"] is True


@pytest.mark.parametrize("event", ["health-details-nokey", "health-details-badkey"])
def test_details_without_the_admin_key_are_401_and_leak_nothing(capsys, devstack, event):
    _, result, _ = invoke(capsys, event)
    assert result["statusCode"] == 401
    assert "dependencies" not in result["body"]
    assert "latency" not in result["body"]


def test_a_malformed_api_event_gets_400_not_a_crash(capsys, devstack):
    code, result, _ = invoke(capsys, "health-malformed")
    assert code == 0
    assert result["statusCode"] == 400


def test_the_scheduled_run_emits_the_checks_as_emf_metrics(capsys, devstack):
    # When the EventBridge Scheduler payload is invoked
    code, report, err = invoke(capsys, "health-schedule")
    # Then the report is returned and the metrics are printed as EMF (to stderr, stdout is the result)
    assert code == 0
    assert report["status"] in {"healthy", "degraded"}
    emf = [json.loads(line) for line in err.splitlines() if line.startswith('{"_aws"')]
    names = {m["Name"] for doc in emf for d in doc["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]}
    assert {"DependencyUp", "DependencyLatency"} <= names
    dimensions = {doc.get("dependency") for doc in emf if "DependencyUp" in doc}
    assert dimensions == {"mongodb", "postgres", "upstash", "s3"}


def test_secrets_never_appear_in_the_details(capsys, devstack):
    _, result, _ = invoke(capsys, "health-details")
    for secret in (devstack.env["UPSTASH_REDIS_REST_TOKEN"], devstack.env["ADMIN_KEY"]):
        assert secret not in result["body"]
