"""Resilient KV against the devstack: Upstash rate limits and outages, MongoDB outages, resync.

The Upstash REST front is made to answer 429/500/hang (`upstash_fault`) and the
MongoDB wire server is really stopped (`stopped`). Keys are prefixed with the
test's name so tests sharing the session devstack do not collide.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from lastgood.core.errors import KVUnavailable
from lastgood.kv.client import reset_kv
from lastgood.kv.mirror import DIRTY_HASH
from lastgood.kv.status import health_status

from tests.helpers.kv_alerts import fresh_kv, valkey

pytestmark = pytest.mark.devstack


@pytest.fixture(autouse=True)
def _forget_kv() -> Iterator[None]:
    yield
    reset_kv()


def test_rate_limited_kv_serves_from_mongodb_and_resyncs_on_the_health_run(
    upstash_fault, caplog: pytest.LogCaptureFixture
) -> None:
    # Given 100 keys written while Upstash is healthy (each mirrored to MongoDB)
    kv = fresh_kv()
    for i in range(100):
        kv.set(f"must:k{i:03d}", {"i": i})
    assert kv.mode == "kv"

    with upstash_fault("429"):
        # When the front answers 429: reads still return all 100 values (from MongoDB)
        assert [kv.get(f"must:k{i:03d}") for i in range(100)] == [{"i": i} for i in range(100)]
        # ... and 20 new writes with a TTL succeed
        for i in range(20):
            kv.set(f"must:new{i:02d}", {"n": i}, ttl=300)
        assert kv.get("must:new07") == {"n": 7}
        assert kv.status()["status"] == "mongodb"
        assert valkey().get("must:new07") is None  # not in KV yet

    # Then, with the front restored, one scheduled health run resyncs and returns to kv mode
    status = health_status(scheduled=True, emit_metrics=False)
    assert status["resync"]["synced"] == 20
    assert status["status"] == "kv"
    assert status["kv"]["available"] is True and status["pending_resync"] == 0
    redis = valkey()
    for i in range(20):
        assert json.loads(redis.get(f"must:new{i:02d}")) == {"n": i}
        assert 290_000 < redis.pttl(f"must:new{i:02d}") <= 300_000  # TTL preserved as remaining time
    logs = caplog.messages
    assert "KV rate limit hit, switching to MongoDB" in logs
    assert "Synced must:new00 from MongoDB to KV" in logs
    assert "Synced must:new19 from MongoDB to KV" in logs


def test_hash_counter_delete_and_expire_made_during_an_outage_reach_kv(upstash_fault) -> None:
    # Given a hash, a counter and a key written while KV is healthy
    kv = fresh_kv()
    kv.hset("ops:h", {"a": 1})
    kv.set("ops:gone", "x")
    kv.set("ops:ttl", "y")
    assert kv.incr("ops:c") == 1
    with upstash_fault("500"):
        # When KV fails, each kind of write goes to MongoDB
        assert kv.hset("ops:h", {"b": [2]}) == 1
        assert kv.incr("ops:c", 5) == 6
        assert kv.delete("ops:gone") is True
        assert kv.expire("ops:ttl", 120) is True
        assert kv.hgetall("ops:h") == {"a": 1, "b": [2]}
        assert kv.hget("ops:h", "b") == [2]
        assert not kv.exists("ops:gone")
        assert kv.ttl("ops:ttl") in (119, 120)
    # Then resync copies every change into KV
    report = kv.resync()
    assert report.ok and report.complete
    assert "ops:gone" in report.removed
    redis = valkey()
    assert redis.hgetall("ops:h") == {"a": "1", "b": "[2]"}
    assert redis.get("ops:c") == "6"
    assert redis.exists("ops:gone") == 0
    assert 0 < redis.ttl("ops:ttl") <= 120
    assert kv.mode == "kv"


def test_a_hanging_kv_times_out_opens_the_breaker_and_logs_kv_unavailable(
    upstash_fault, caplog: pytest.LogCaptureFixture
) -> None:
    kv = fresh_kv()
    kv.set("hang:k", 1)
    with upstash_fault("hang"):
        # When Upstash stops answering, the call times out (KV_TIMEOUT_S=1) and MongoDB serves it
        assert kv.get("hang:k") == 1
        kv.set("hang:k2", 2)  # breaker open: straight to MongoDB, no second timeout
        assert kv.status(probe=False)["kv"]["circuit"]["state"] == "open"
    assert "KV unavailable" in caplog.messages
    assert kv.resync().complete
    assert valkey().get("hang:k2") == "2"


def test_mongodb_down_writes_succeed_marked_dirty_and_are_repaired(stopped) -> None:
    # Given MongoDB is down while KV is up
    kv = fresh_kv()
    kv.set("dirty:warm", 0)
    with stopped("mongodb"):
        # When keys are written, the writes succeed and the keys are recorded as dirty (also in KV)
        kv.set("dirty:a", {"v": 1}, ttl=600)
        kv.hset("dirty:h", {"f": "x"})
        kv.set("dirty:warm", 1)
        dirty = kv.dirty_keys()
        assert {"dirty:a", "dirty:h", "dirty:warm"} <= set(dirty)
        assert {"dirty:a", "dirty:h"} <= set(valkey().hkeys(DIRTY_HASH))
        assert kv.get("dirty:a") == {"v": 1}  # served from KV meanwhile
        assert kv.status()["status"] == "kv"
    # Then the next resync repairs the mirror from KV
    report = kv.resync()
    assert report.ok and report.complete
    assert {"dirty:a", "dirty:h", "dirty:warm"} <= set(report.repaired)
    assert kv.mirror.find_one({"_id": "dirty:a"})["value"] == '{"v":1}'
    assert kv.mirror.find_one({"_id": "dirty:a"})["expires_at"] is not None
    assert json.loads(kv.mirror.find_one({"_id": "dirty:h"})["value"]) == {"f": "x"}
    assert kv.mirror.find_one({"_id": "dirty:warm"})["value"] == "1"
    assert "dirty:a" not in kv.dirty_keys()


def test_both_stores_down_is_a_typed_error_not_silent_loss(stopped, upstash_fault) -> None:
    kv = fresh_kv()
    with stopped("mongodb"), upstash_fault("500"):
        with pytest.raises(KVUnavailable, match="nothing was written"):
            kv.set("both:k", 1)
        with pytest.raises(KVUnavailable):
            kv.get("both:k")
        assert kv.status()["status"] == "fallback"
    # Nothing half-written: the key exists nowhere
    kv = fresh_kv()
    assert kv.get("both:k") is None
    assert valkey().exists("both:k") == 0


def test_a_fresh_process_resyncs_what_an_earlier_one_left_in_mongodb(upstash_fault) -> None:
    # Given a process that wrote during an outage and ended before any resync
    kv = fresh_kv()
    with upstash_fault("429"):
        kv.set("fresh:k", "from-outage")
    # When a new process (closed breaker) makes its first call after recovery
    kv = fresh_kv()
    # Then it copies the pending write to KV first, so it never reads the stale value
    assert kv.get("fresh:k") == "from-outage"
    assert valkey().get("fresh:k") == '"from-outage"'
    assert kv.pending_count() == 0


def test_newer_kv_write_wins_over_an_older_pending_mongodb_write(upstash_fault, stopped) -> None:
    # Given an outage write of "old" pending in MongoDB
    kv = fresh_kv()
    with upstash_fault("429"):
        kv.set("race:k", "old")
    # And a later process that wrote "new" to KV while MongoDB was down (mirror dirty, newer version)
    with stopped("mongodb"):
        kv = fresh_kv()
        kv.set("race:k", "new")
        assert "race:k" in kv.dirty_keys()
    # When resync runs
    report = kv.resync()
    # Then the older MongoDB write does not overwrite KV; the mirror is repaired to the newer value
    assert report.ok and report.complete
    assert "race:k" in report.skipped and "race:k" in report.repaired
    assert valkey().get("race:k") == '"new"'
    doc = kv.mirror.find_one({"_id": "race:k"})
    assert doc["value"] == '"new"' and doc["needs_resync"] is False


def test_scheduled_health_check_reports_the_seed_shape_and_emits_kv_metrics(capsys) -> None:
    from tests.helpers.health import emf_records

    fresh_kv()
    capsys.readouterr()
    status = health_status(scheduled=True)
    emitted = {
        k: {"Value": v if isinstance(v, list) else [v]}
        for doc in emf_records(capsys.readouterr().out)
        for k, v in doc.items()
        if k.startswith(("KV", "Mongo"))
    }
    # The seed-001 shape plus the breaker/dirty details
    assert status["status"] == "kv"
    assert status["health"] == {"kv": True, "mongodb": True}
    assert status["kv"]["configured"] and status["mongodb"]["configured"]
    assert status["open_circuit_age_s"] is None and status["dirty_keys"] == 0
    ratio = status["mongodb"]["connections_used_ratio"]
    assert ratio == "unknown" or 0 < ratio < 1
    assert emitted["KVFallbackActive"]["Value"] == [0.0]
    assert "KVDirtyKeys" in emitted and "KVPendingResync" in emitted
