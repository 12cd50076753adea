"""Each engine's probe against the real local services: ok with a latency when the service
answers; `ok: false` with the error class (and no secret) when credentials are refused or
the service is not there — never an exception, never longer than the timeout."""

from __future__ import annotations

import os
import socket
import time
from urllib.parse import urlsplit, urlunsplit

import pytest
from lastgood.core.aws import reset_clients
from lastgood.core.settings import reset_settings
from lastgood.engines import mongodb, postgres, upstash
from lastgood.monitoring import health

pytestmark = pytest.mark.devstack


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def with_netloc(url: str, netloc: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def test_every_probe_answers_ok_with_a_measured_latency(devstack):
    env = devstack.env
    results = [
        mongodb.ENGINE.probe(env["MONGODB_URI"], timeout_s=3),
        postgres.ENGINE.probe(env["DATABASE_URL"], timeout_s=3),
        upstash.ENGINE.probe(
            env["UPSTASH_REDIS_REST_URL"], timeout_s=3, token=env["UPSTASH_REDIS_REST_TOKEN"]
        ),
        health.probe_s3(3),
    ]
    for result in results:
        assert result.ok is True, result
        assert result.error is None
        assert 0 < result.latency_ms < 3000, result


def test_upstash_refusing_the_token_is_not_ok_and_the_token_is_not_echoed(devstack):
    # Given a wrong REST token
    wrong = "wrong-token-" + devstack.env["UPSTASH_REDIS_REST_TOKEN"][:6]
    # When probed
    result = upstash.ENGINE.probe(devstack.env["UPSTASH_REDIS_REST_URL"], timeout_s=2, token=wrong)
    # Then not ok, with the error class, and neither token appears
    assert result.ok is False
    assert result.error.startswith("Upstash")
    assert "401" in result.error
    assert wrong not in result.error and devstack.env["UPSTASH_REDIS_REST_TOKEN"] not in result.error


def test_postgres_refusing_the_role_is_not_ok_and_the_password_is_redacted(devstack):
    # Given a role the server does not know, with a password in the URL
    parts = urlsplit(devstack.env["DATABASE_URL"])
    url = with_netloc(devstack.env["DATABASE_URL"], f"intruder:hunter2-secret@{parts.hostname}:{parts.port}")
    # When probed
    result = postgres.ENGINE.probe(url, timeout_s=2)
    # Then not ok, the class and the server's reason are there, the password is not
    assert result.ok is False
    assert result.error.startswith("OperationalError")
    assert "intruder" in result.error
    assert "hunter2-secret" not in result.error


def test_postgres_on_a_closed_port_fails_fast(devstack):
    url = with_netloc(devstack.env["DATABASE_URL"], f"postgres:pw-secret@127.0.0.1:{closed_port()}")
    started = time.perf_counter()
    result = postgres.ENGINE.probe(url, timeout_s=2)
    assert result.ok is False and result.error.startswith("OperationalError")
    assert "pw-secret" not in result.error
    assert time.perf_counter() - started < 2.5


def test_mongodb_that_is_not_there_fails_within_the_server_selection_timeout(devstack):
    url = f"mongodb://app:pw-secret@127.0.0.1:{closed_port()}/"
    started = time.perf_counter()
    try:
        result = mongodb.ENGINE.probe(url, timeout_s=0.5)
    finally:
        mongodb.close_clients()
    assert result.ok is False
    assert result.error.startswith("ServerSelectionTimeoutError")
    assert "pw-secret" not in result.error
    assert time.perf_counter() - started < 2


def test_s3_with_a_missing_bucket_names_the_bucket(devstack, monkeypatch):
    monkeypatch.setenv("SITE_BUCKET", "lastgood-no-such-bucket-probe")
    reset_settings()
    try:
        result = health.probe_s3(2)
    finally:
        reset_settings()
    assert result.ok is False
    assert result.error.startswith("ClientError")
    assert "lastgood-no-such-bucket-probe" in result.error


def test_s3_unreachable_is_not_ok_and_fails_fast(devstack, monkeypatch):
    # Given S3's endpoint pointing at a closed port (moto keeps running for the other tests)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", f"http://127.0.0.1:{closed_port()}")
    reset_settings()
    reset_clients()
    started = time.perf_counter()
    try:
        result = health.probe_s3(2)
    finally:
        monkeypatch.delenv("AWS_ENDPOINT_URL_S3")
        reset_settings()
        reset_clients()
    assert result.ok is False
    assert result.error.startswith("EndpointConnectionError")
    assert time.perf_counter() - started < 3
    assert os.environ.get("AWS_ENDPOINT_URL_S3") is None
