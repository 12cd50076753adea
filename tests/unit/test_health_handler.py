"""The health handler without services (fake probes): routes, status codes, the admin key,
malformed events, and the scheduled path."""

from __future__ import annotations

import json

import pytest
from lastgood.core.settings import reset_settings
from lastgood.monitoring import health

from tests.helpers.events import load_event
from tests.helpers.health import emf_records, fixed_probe, load_health_handler, metric_names

ADMIN_KEY = "unit-admin-key-0123456789"


DEPENDENCIES = ("mongodb", "postgres", "upstash", "s3")  # what the default config declares


@pytest.fixture
def probes(monkeypatch):
    """Four fake dependencies (all up) in place of the configured ones; tests may replace one."""
    fakes = {n: fixed_probe(n, True) for n in DEPENDENCIES}
    monkeypatch.setattr(health, "configured_probes", lambda: fakes)
    return fakes


@pytest.fixture
def handler(monkeypatch, probes):
    """The handler with four fake dependencies (all up) and no extra checks."""
    monkeypatch.setattr(health, "_default_checks", dict)
    monkeypatch.setattr(health, "_CHECKS", {})
    monkeypatch.setenv("ADMIN_KEY", ADMIN_KEY)
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    reset_settings()
    yield load_health_handler()
    reset_settings()


def details_event(key: str | None) -> dict:
    event = load_event("health-details")
    event["headers"].pop("x-admin-key")
    if key is not None:
        event["headers"]["x-admin-key"] = key
    return event


def test_public_health_is_minimal_and_200(handler, lambda_context):
    result = handler.lambda_handler(load_event("health-api"), lambda_context)
    assert result["statusCode"] == 200
    assert json.loads(result["body"]) == {"status": "healthy"}


def test_public_health_is_503_when_a_dependency_is_down(handler, lambda_context, probes):
    probes["postgres"] = fixed_probe("postgres", False)
    result = handler.lambda_handler(load_event("health-api"), lambda_context)
    assert result["statusCode"] == 503
    assert json.loads(result["body"]) == {"status": "unhealthy"}


def test_details_with_the_right_key_report_every_dependency(handler, lambda_context):
    result = handler.lambda_handler(details_event(ADMIN_KEY), lambda_context)
    body = json.loads(result["body"])
    assert result["statusCode"] == 200
    assert set(body["dependencies"]) == {"mongodb", "postgres", "upstash", "s3"}
    assert body["health"] == {"mongodb": True, "postgres": True, "upstash": True, "s3": True}
    assert {"ok", "latency_ms", "error"} <= set(body["dependencies"]["s3"])


@pytest.mark.parametrize("key", [None, "", "wrong", ADMIN_KEY + "x", ADMIN_KEY[:-1]])
def test_details_without_the_right_key_are_401_with_nothing_else(handler, lambda_context, key):
    result = handler.lambda_handler(details_event(key), lambda_context)
    assert result["statusCode"] == 401
    body = json.loads(result["body"])
    assert body["message"] == "unauthorized"
    assert set(body) <= {"statusCode", "message"}


def test_details_are_refused_when_no_admin_key_is_configured(handler, lambda_context, monkeypatch):
    # Given no ADMIN_KEY secret at all: an empty header must not match an empty secret
    monkeypatch.delenv("ADMIN_KEY", raising=False)
    reset_settings()
    assert handler.lambda_handler(details_event(""), lambda_context)["statusCode"] == 401


def test_details_are_503_when_unhealthy(handler, lambda_context, probes):
    probes["mongodb"] = fixed_probe("mongodb", False)
    result = handler.lambda_handler(details_event(ADMIN_KEY), lambda_context)
    assert result["statusCode"] == 503
    assert json.loads(result["body"])["dependencies"]["mongodb"]["ok"] is False


def test_a_malformed_api_event_from_the_events_folder_is_400(handler, lambda_context):
    result = handler.lambda_handler(load_event("health-malformed"), lambda_context)
    assert result["statusCode"] == 400
    assert json.loads(result["body"]) == {"message": "bad request"}


@pytest.mark.parametrize(
    "mutate",
    [
        lambda e: e.update(requestContext="not-an-object"),
        lambda e: e["requestContext"].update(http="GET"),
        lambda e: e["requestContext"]["http"].pop("method"),
        lambda e: e.pop("rawPath"),
        lambda e: e.update(rawPath=["/health"]),
        lambda e: e.update(headers=["x-admin-key"]),
    ],
    ids=["context-not-object", "http-not-object", "no-method", "no-path", "path-not-string", "headers-list"],
)
def test_api_events_missing_or_mistyped_fields_are_400_not_a_crash(handler, lambda_context, mutate):
    event = load_event("health-api")
    mutate(event)
    result = handler.lambda_handler(event, lambda_context)
    assert result["statusCode"] == 400


@pytest.mark.parametrize("event", [["GET", "/health"], "GET /health", 42, None])
def test_an_event_that_is_not_an_object_is_400(handler, lambda_context, event):
    assert handler.lambda_handler(event, lambda_context)["statusCode"] == 400


def test_an_unknown_route_is_404(handler, lambda_context):
    event = load_event("health-api")
    event["rawPath"] = event["requestContext"]["http"]["path"] = "/health/everything"
    assert handler.lambda_handler(event, lambda_context)["statusCode"] == 404


def test_the_scheduler_payload_returns_the_report_and_emits_metrics(handler, lambda_context, capsys):
    report = handler.lambda_handler(load_event("health-schedule"), lambda_context)
    assert report["status"] == "healthy"
    assert set(report["dependencies"]) == {"mongodb", "postgres", "upstash", "s3"}
    names = metric_names(emf_records(capsys.readouterr().out))
    assert {"DependencyUp", "DependencyLatency"} <= names
