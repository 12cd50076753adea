"""The resilient KV's circuit breaker (fake clock) and value/document encoding: pure rules."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from lastgood.kv.breaker import BreakerState, CircuitBreaker
from lastgood.kv.client import ResilientKV
from lastgood.kv.codec import dumps, loads
from lastgood.kv.mirror import MirrorDoc


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def test_breaker_starts_closed_and_allows_calls(clock: FakeClock) -> None:
    # Given a new breaker
    breaker = CircuitBreaker(cooldown_s=30, clock=clock)
    # Then calls go to the primary and no outage is reported
    assert breaker.state is BreakerState.CLOSED
    assert breaker.allow()
    assert breaker.open_age_s() is None


def test_failure_opens_and_blocks_until_cooldown(clock: FakeClock) -> None:
    # Given a closed breaker
    breaker = CircuitBreaker(cooldown_s=30, clock=clock)
    # When the primary fails
    tripped = breaker.record_failure("rate_limited: 429")
    # Then it opens (a new trip) and blocks calls during the cool-down
    assert tripped is True
    assert breaker.state is BreakerState.OPEN
    assert breaker.reason == "rate_limited: 429"
    clock.advance(29.9)
    assert not breaker.allow()
    assert breaker.state is BreakerState.OPEN


def test_after_cooldown_one_caller_probes_half_open(clock: FakeClock) -> None:
    # Given an open breaker whose cool-down has passed
    breaker = CircuitBreaker(cooldown_s=30, clock=clock)
    breaker.record_failure("unavailable")
    clock.advance(30)
    # When two callers arrive
    first, second = breaker.allow(), breaker.allow()
    # Then only the first probes (half-open); the second keeps using the fallback
    assert first is True
    assert second is False
    assert breaker.state is BreakerState.HALF_OPEN


def test_probe_success_closes_and_clears_the_outage(clock: FakeClock) -> None:
    breaker = CircuitBreaker(cooldown_s=30, clock=clock)
    breaker.record_failure("unavailable")
    clock.advance(31)
    assert breaker.allow()
    # When the probe succeeds
    closed_now = breaker.record_success()
    # Then the breaker is closed, with no open age or reason left
    assert closed_now is True
    assert breaker.state is BreakerState.CLOSED
    assert breaker.open_age_s() is None
    assert breaker.reason is None
    assert breaker.record_success() is False  # already closed: not a transition


def test_probe_failure_reopens_without_a_new_trip_and_keeps_outage_age(clock: FakeClock) -> None:
    # Given an outage that started at t0 and a half-open probe 30 s later
    breaker = CircuitBreaker(cooldown_s=30, clock=clock)
    assert breaker.record_failure("unavailable") is True
    clock.advance(30)
    assert breaker.allow()
    # When the probe fails
    tripped = breaker.record_failure("unavailable again")
    # Then the breaker is open again for a fresh cool-down, the trip count is unchanged,
    # and the open-circuit age counts from the start of the outage
    assert tripped is False
    assert breaker.trips == 1
    assert breaker.state is BreakerState.OPEN
    clock.advance(10)
    assert not breaker.allow()
    assert breaker.open_age_s() == pytest.approx(40)


def test_stuck_half_open_probe_is_retried_after_another_cooldown(clock: FakeClock) -> None:
    # Given a prober that never reported back
    breaker = CircuitBreaker(cooldown_s=5, clock=clock)
    breaker.record_failure("hang")
    clock.advance(5)
    assert breaker.allow()
    assert not breaker.allow()
    # When another cool-down passes
    clock.advance(5)
    # Then a new probe is allowed
    assert breaker.allow()


def test_zero_cooldown_probes_immediately(clock: FakeClock) -> None:
    breaker = CircuitBreaker(cooldown_s=0, clock=clock)
    breaker.record_failure("x")
    assert breaker.allow()
    assert breaker.state is BreakerState.HALF_OPEN


def test_negative_cooldown_is_refused() -> None:
    with pytest.raises(ValueError, match="cooldown"):
        CircuitBreaker(cooldown_s=-1)


def test_snapshot_reports_state_age_and_reason(clock: FakeClock) -> None:
    breaker = CircuitBreaker(cooldown_s=30, clock=clock)
    breaker.record_failure("rate_limited: 429")
    clock.advance(12.5)
    snap = breaker.snapshot()
    assert snap == {
        "state": "open",
        "open_age_s": 12.5,
        "reason": "rate_limited: 429",
        "trips": 1,
        "cooldown_s": 30,
    }


def test_values_are_stored_as_compact_sorted_json_and_read_back() -> None:
    value = {"b": [1, 2], "a": "é", "n": None}
    text = dumps(value)
    assert text == '{"a":"é","b":[1,2],"n":null}'
    assert loads(text.encode("utf-8")) == value
    assert loads(b"5") == 5  # what INCR leaves behind
    assert loads(None) is None
    assert loads(b"not json") == "not json"  # a value another client wrote


def test_mirror_doc_round_trips_and_knows_expiry_and_tombstones() -> None:
    now = datetime(2025, 1, 29, 12, 0, tzinfo=UTC)
    doc = MirrorDoc("k", "hash", json.dumps({"f": 1}), now + timedelta(seconds=5), 7, now, needs_resync=True)
    bson = doc.to_bson()
    assert bson["_id"] == "k" and bson["dirty"] is False and bson["needs_resync"] is True
    # naive datetimes (as pymongo returns them) are read as UTC
    naive = {**bson, "expires_at": bson["expires_at"].replace(tzinfo=None)}
    back = MirrorDoc.from_bson(naive)
    assert back == doc
    assert back.logical() == {"f": 1}
    assert back.live(now)
    assert not back.live(now + timedelta(seconds=5))
    assert not MirrorDoc("k", None, None, None, 8, now, deleted=True).live(now)


def test_versions_are_strictly_monotonic_even_when_the_clock_stalls() -> None:
    kv = ResilientKV(None, None, wall_clock=lambda: 1700000000.0)
    versions = [kv._next_version() for _ in range(5)]
    assert versions == sorted(set(versions))


def test_with_neither_store_configured_calls_raise_kv_unavailable() -> None:
    from lastgood.core.errors import KVUnavailable

    kv = ResilientKV(None, None)
    with pytest.raises(KVUnavailable):
        kv.get("anything")
    with pytest.raises(KVUnavailable):
        kv.set("anything", 1)
    assert kv.mode == "fallback"


def test_keys_and_values_are_type_checked_before_any_store_is_asked() -> None:
    # Given a KV with no store at all (any I/O would be KVUnavailable, not TypeError)
    kv = ResilientKV(None, None)
    # When a query document, a list, None or bytes is passed as a key, or a value JSON cannot hold
    # Then each is a TypeError naming the method, never a store call
    for bad_key in ({"$regex": "^user:1"}, ["k"], None, b"k", 1):
        with pytest.raises(TypeError, match=r"kv\.get: the key must be a str"):
            kv.get(bad_key)  # type: ignore[arg-type]
    for bad_value in ({1, 2}, b"x", float("nan"), {"a": {3: "int key"}}, object()):
        with pytest.raises(TypeError, match=r"kv\.set: values must be JSON"):
            kv.set("k", bad_value)
    with pytest.raises(TypeError, match="field name"):
        kv.hset("k", {("tuple",): 1})  # type: ignore[dict-item]
    with pytest.raises(TypeError, match="amount must be an int"):
        kv.incr("k", 1.5)  # type: ignore[arg-type]
    # And what the API documents still reaches the store (here: none configured)
    from lastgood.core.errors import KVUnavailable

    with pytest.raises(KVUnavailable):
        kv.set("k", {"nested": [1, 2.5, None, True, "s"]}, ttl=60)


def test_a_query_document_never_reaches_the_mirror_as_a_key() -> None:
    from lastgood.kv.mirror import key_filter

    assert key_filter("user:1") == {"_id": "user:1"}
    with pytest.raises(TypeError, match="exact strings"):
        key_filter({"$regex": "^user:1"})
