"""`lastgood kv` end to end against the devstack: set/get, status during an outage, resync by hand."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from lastgood.cli import main
from lastgood.kv.client import reset_kv

from tests.helpers.kv_alerts import fresh_kv, valkey

pytestmark = pytest.mark.devstack


@pytest.fixture(autouse=True)
def _fresh_process() -> Iterator[None]:
    fresh_kv()  # test timeouts; each CLI call below reuses this process-wide instance
    yield
    reset_kv()


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(["--no-env-file", "kv", *args])
    return code, capsys.readouterr().out


def test_set_get_status_and_resync_through_an_outage(upstash_fault, capsys) -> None:
    # Given a key set through the CLI (JSON value, TTL)
    assert _run(capsys, "set", "cli:user", '{"plan": "pro"}', "--ttl", "600") == (0, "OK (mode kv)\n")
    assert _run(capsys, "get", "cli:user") == (0, '{"plan": "pro"}\n')
    with upstash_fault("429"):
        # When KV rate-limits, a write still succeeds and status reports mongodb mode
        assert _run(capsys, "set", "cli:during", "plain text") == (0, "OK (mode mongodb)\n")
        code, out = _run(capsys, "status", "--json")
        status = json.loads(out)
        assert status["status"] == "mongodb"
        assert status["kv"] == {**status["kv"], "configured": True, "available": False}
        assert status["mongodb"]["available"] is True
        assert status["pending_resync"] >= 1
        assert status["open_circuit_age_s"] is not None
        # and a resync attempt while KV is still limited says so (exit 1)
        assert _run(capsys, "resync")[0] == 1
    # Then `lastgood kv resync` copies the outage write back and the mode returns to kv
    code, out = _run(capsys, "resync", "--json")
    report = json.loads(out)
    assert code == 0 and "cli:during" in report["keys"]["synced"]
    assert valkey().get("cli:during") == '"plain text"'
    code, out = _run(capsys, "status")
    assert out.startswith("mode: kv\n")


def test_get_of_a_missing_key_exits_1(capsys) -> None:
    code = main(["--no-env-file", "kv", "get", "cli:missing-key"])
    assert code == 1
    assert "not found" in capsys.readouterr().err
