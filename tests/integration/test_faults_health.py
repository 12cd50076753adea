"""Issue 14 fault matrix, health part (cases 4, 5, 6): health answers within its deadline
whatever hangs, a burst of public /health calls cannot exhaust a database, and health reports
every configured source with the reason for each failing check.

Fault injection only where a real service cannot produce the fault on demand: S3 "hanging"
is a local TCP server that accepts connections and never answers; a check that hangs and a
probe that raises are registered in-process.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest
from lastgood.cli import main
from lastgood.core.aws import reset_clients
from lastgood.core.config import reset_config
from lastgood.core.settings import reset_settings
from lastgood.monitoring import health

from tests.helpers.config import suite_config_document
from tests.helpers.events import load_event
from tests.helpers.health import (
    blackhole_server,
    call_within,
    closed_port,
    emf_records,
    load_health_handler,
    mongo_pool_connections,
    pg_sessions,
    valkey_command_calls,
)

pytestmark = pytest.mark.devstack


def details_event(admin_key: str) -> dict[str, Any]:
    event = load_event("health-details")
    event["headers"]["x-admin-key"] = admin_key
    return event


def config_with(tmp_path: Any, *sources: dict[str, Any]) -> str:
    config = suite_config_document()
    config["sources"].extend(sources)
    path = tmp_path / "lastgood.json"
    path.write_text(json.dumps(config), encoding="utf-8")
    return str(path)


def test_case_4_every_health_path_answers_within_its_deadline_while_s3_and_a_check_hang(
    devstack, monkeypatch, capsys, lambda_context
):
    deadline = 4.0
    release = threading.Event()

    def stuck(scheduled: bool) -> dict[str, Any]:
        release.wait(120)
        return {"ok": True}

    with blackhole_server() as s3_url:
        # Given S3's endpoint accepting connections and never answering, a check that never
        # returns, and a 4 s health deadline
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_url)
        monkeypatch.setenv("HEALTH_DEADLINE_S", str(deadline))
        monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
        monkeypatch.setitem(health._CHECKS, "stuck", stuck)
        reset_settings()
        reset_clients()
        handler = load_health_handler()
        capsys.readouterr()
        try:
            # When the public, the details and the scheduled paths run (each bounded by the test)
            answers = {}
            for name, event in (
                ("public", load_event("health-api")),
                ("details", details_event(devstack.env["ADMIN_KEY"])),
                ("scheduled", load_event("health-schedule")),
            ):
                started = time.perf_counter()
                answers[name] = call_within(deadline + 2, handler.lambda_handler, event, lambda_context)
                # Then each answered within the deadline plus a small margin
                assert time.perf_counter() - started < deadline + 2, name
        finally:
            release.set()
            reset_clients()
    out = capsys.readouterr().out
    # And S3 is named as failing, the public answer is 503
    assert answers["public"]["statusCode"] == 503
    details = json.loads(answers["details"]["body"])
    assert answers["details"]["statusCode"] == 503
    assert details["dependencies"]["s3"]["ok"] is False and details["dependencies"]["s3"]["error"]
    # And the check that missed the deadline is reported `timeout` under its own name
    assert details["stuck"]["status"] == "timeout" and details["stuck"]["ok"] is False
    assert any(reason.startswith("stuck: timeout") for reason in details["reasons"])
    scheduled = answers["scheduled"]
    assert scheduled["stuck"]["status"] == "timeout"
    # And the scheduled run still emitted DependencyUp for every dependency, S3 as down
    up = {r["dependency"]: r["DependencyUp"] for r in emf_records(out) if "DependencyUp" in r}
    assert set(up) >= {"s3", "postgres", "mongodb", "upstash"}
    assert up["s3"] == [0.0] and up["postgres"] == [1.0]


def test_case_5_fifty_public_health_calls_open_at_most_one_connection_per_dependency(
    devstack, lambda_context
):
    from lastgood.engines import mongodb

    # Given one warm health instance and fresh MongoDB clients (their pool connections counted)
    handler = load_health_handler()
    mongodb.close_clients()
    with mongo_pool_connections() as mongo_created:
        pg_before = pg_sessions(devstack, "app")
        pings_before = valkey_command_calls(devstack, "ping")
        # When 50 anonymous GET /health calls arrive
        for _ in range(50):
            result = handler.lambda_handler(load_event("health-api"), lambda_context)
            assert result["statusCode"] == 200, result
        # Then PostgreSQL saw at most one new session, MongoDB at most one new pooled
        # connection and the Upstash front at most one PING
        pg_new = pg_sessions(devstack, "app", at_least=pg_before) - pg_before
        pings = valkey_command_calls(devstack, "ping") - pings_before
    # (exactly one: the first call's probe — which also shows each counter sees a probe)
    assert pg_new == 1, f"{pg_new} new PostgreSQL sessions for 50 calls"
    assert len(mongo_created) == 1, f"{len(mongo_created)} new MongoDB connections for 50 calls"
    assert pings == 1, f"{pings} Upstash requests for 50 calls"


def test_case_6_health_probes_every_configured_source_and_names_each_reason_with_its_exit_code(
    clean_aws, tmp_path, monkeypatch, capsys
):
    # Given the default config plus a source "ledger" whose server is not there
    monkeypatch.setenv(
        "LASTGOOD_CONFIG",
        config_with(tmp_path, {"name": "ledger", "engine": "postgres", "url_secret": "LEDGER_DATABASE_URL"}),
    )
    monkeypatch.setenv("LEDGER_DATABASE_URL", f"postgresql://postgres:pw-secret@127.0.0.1:{closed_port()}/x")
    reset_settings()
    reset_config()
    # When `lastgood health` runs
    code = main(["--no-env-file", "health"])
    out, _ = capsys.readouterr()
    # Then it is unhealthy (exit 4), and the text names ledger, DOWN, and why (no secret)
    assert code == 4, out
    assert out.splitlines()[0] == "status: unhealthy"
    ledger = next(line for line in out.splitlines() if line.strip().startswith("ledger"))
    assert "DOWN" in ledger and "OperationalError" in ledger and "pw-secret" not in out
    # And the JSON report lists ledger as a dependency with its reason
    assert main(["--no-env-file", "health", "--json"]) == 4
    report = json.loads(capsys.readouterr().out)
    assert report["dependencies"]["ledger"]["ok"] is False
    assert any(reason.startswith("ledger: OperationalError") for reason in report["reasons"])

    # Given the default config again, every dependency up, and an empty backup bucket
    monkeypatch.delenv("LASTGOOD_CONFIG")
    reset_settings()
    reset_config()
    # When `lastgood health` runs
    code = main(["--no-env-file", "health"])
    out, _ = capsys.readouterr()
    # Then degraded (exit 12, not 0) and the text names the degraded check and why
    assert out.splitlines()[0] == "status: degraded", out
    assert code == 12
    assert "backups: postgres: no complete backup" in out
    assert "reasons:" in out


def test_a_probe_that_raises_unexpectedly_is_that_source_failing_with_the_exception_type(
    devstack, tmp_path, monkeypatch, capsys, lambda_context
):
    from lastgood.engines import postgres

    # Given a configured source "ledger" whose engine's probe raises an unexpected exception
    monkeypatch.setenv(
        "LASTGOOD_CONFIG",
        config_with(tmp_path, {"name": "ledger", "engine": "postgres", "url_secret": "LEDGER_DATABASE_URL"}),
    )
    monkeypatch.setenv("LEDGER_DATABASE_URL", devstack.env["DATABASE_URL"].rsplit("/", 1)[0] + "/ledger")
    real_probe = postgres.ENGINE.probe

    def probe(url: str, *, timeout_s: float, token: str | None = None) -> Any:
        if url.endswith("/ledger"):
            raise KeyError("no such thing")
        return real_probe(url, timeout_s=timeout_s, token=token)

    monkeypatch.setattr(postgres.ENGINE, "probe", probe)
    reset_settings()
    reset_config()
    # When the details are asked for and the CLI runs
    result = load_health_handler().lambda_handler(details_event(devstack.env["ADMIN_KEY"]), lambda_context)
    code = main(["--no-env-file", "health"])
    out, err = capsys.readouterr()
    # Then ledger is reported failing with the exception's type, the others still answer, no crash
    body = json.loads(result["body"])
    assert result["statusCode"] == 503
    assert body["dependencies"]["ledger"]["ok"] is False
    assert body["dependencies"]["ledger"]["error"].startswith("KeyError")
    assert body["dependencies"]["postgres"]["ok"] is True
    assert code == 4 and "Traceback" not in err
    assert "KeyError" in next(line for line in out.splitlines() if line.strip().startswith("ledger"))
