"""Must-show: after a 429 burst, one scheduled health run puts the outage writes back into Valkey."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from lastgood.kv.client import reset_kv

from tests.helpers.events import load_event
from tests.helpers.kv_alerts import fresh_kv, load_handler, valkey

pytestmark = pytest.mark.devstack


@pytest.fixture(autouse=True)
def _fresh_process() -> Iterator[None]:
    yield
    reset_kv()


def test_scheduled_health_run_resyncs_outage_writes_with_their_ttls_and_reports_kv_mode(
    upstash_fault, lambda_context
) -> None:
    # Given 100 keys in the resilient KV
    kv = fresh_kv()
    for i in range(100):
        kv.set(f"hrun:k{i:03d}", i)
    with upstash_fault("429"):
        # When Upstash rate-limits: all 100 reads are answered and 20 writes succeed (MongoDB)
        assert [kv.get(f"hrun:k{i:03d}") for i in range(100)] == list(range(100))
        for i in range(20):
            kv.set(f"hrun:new{i:02d}", {"n": i}, ttl=600)
        assert kv.mode == "mongodb"
    # Then one scheduled health run (the Scheduler event) resyncs them and reports kv mode
    report = load_handler("health")(load_event("health-schedule.json"), lambda_context)
    assert report["kv"]["status"] == "kv"
    assert report["kv"]["resync"]["synced"] == 20
    assert report["health"]["kv"] is True
    redis = valkey()
    for i in range(20):
        assert json.loads(redis.get(f"hrun:new{i:02d}")) == {"n": i}
        assert 590_000 < redis.pttl(f"hrun:new{i:02d}") <= 600_000
    assert kv.mode == "kv"
