"""Issue 14, case 7: the resilient KV never serves a stale read after recovery, and only string keys
reach the MongoDB mirror.

Against the devstack: the Upstash REST front is switched between 429 and ok (`upstash_fault`), the
MongoDB wire server is the real mirror. Two pieces of instrumentation, not fakes: a wrapper that
makes Upstash *pipelines* answer slowly (a latency fault the front cannot produce on demand), so
writes certainly land while a resync is copying, and counting proxies that prove a refused call
did no I/O at all.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from lastgood.kv.client import reset_kv
from lastgood.kv.mirror import MirrorDoc

from tests.helpers.kv_alerts import fresh_kv, valkey

pytestmark = pytest.mark.devstack


@pytest.fixture(autouse=True)
def _forget_kv(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # These tests use the KV from several threads, so the process's MongoDB pool is sized for them
    # (the Lambda default of one connection would make the threads queue for it, not test the KV).
    from lastgood.engines.mongodb_client import close_clients

    monkeypatch.setenv("MONGODB_MAX_POOL_SIZE", "8")
    close_clients()
    yield
    reset_kv()
    close_clients()


class SlowPipelines:
    """The real Upstash client whose pipelines (what a resync copies with) answer `delay_s` late."""

    def __init__(self, real: Any, delay_s: float) -> None:
        self.real = real
        self.delay_s = delay_s

    def command(self, *args: Any) -> Any:
        return self.real.command(*args)

    def pipeline(self, commands: Any, *, raise_on_error: bool = True) -> Any:
        time.sleep(self.delay_s)
        return self.real.pipeline(commands, raise_on_error=raise_on_error)


class Counting:
    """A transparent proxy recording every method called (any call is I/O for these clients)."""

    def __init__(self, real: Any, calls: list[str]) -> None:
        self._real = real
        self._calls = calls

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._real, name)
        if not callable(attr):
            return Counting(attr, self._calls)  # e.g. collection.database

        def recorded(*args: Any, **kwargs: Any) -> Any:
            self._calls.append(name)
            return attr(*args, **kwargs)

        return recorded


def _mirror_value(kv: Any, key: str) -> Any:
    raw = kv.mirror.find_one({"_id": key})
    return None if raw is None else MirrorDoc.from_bson(raw).logical()


def test_case_7_no_read_after_recovery_returns_a_value_older_than_the_last_acknowledged_write(
    upstash_fault: Callable[[str], Any],
) -> None:
    # Given 200 keys written while Upstash is healthy, then rewritten while it answers 429
    kv = fresh_kv(cooldown_s=30.0)  # long cool-down: only the resync below can close the breaker
    keys = [f"stale:k{i:03d}" for i in range(200)]
    acked: dict[str, int] = {}
    for key in keys:
        kv.set(key, 0)
        acked[key] = 0
    with upstash_fault("429"):
        for key in keys:
            kv.set(key, 1)
            acked[key] = 1
        assert kv.mode == "mongodb"
    # When Upstash recovers and a resync copies the outage writes back, with its pipelines answering
    # slowly, while a writer keeps writing (to MongoDB, the breaker still open) until it sees kv mode
    kv.store.primary = SlowPipelines(kv.store.primary, delay_s=0.15)
    stop = threading.Event()
    writes = {"mongodb": 0, "total": 0}

    def writer() -> None:
        value = 2
        while not stop.is_set():
            for key in keys:
                served_by = kv.mode
                kv.set(key, value)
                acked[key] = value
                writes["total"] += 1
                writes["mongodb"] += served_by == "mongodb"
                if kv.mode == "kv":
                    return
            value += 1

    thread = threading.Thread(target=writer)
    thread.start()
    time.sleep(0.05)
    try:
        report = kv.resync()
    finally:
        stop.set()
        thread.join(timeout=60)
    kv.store.primary = kv.store.primary.real
    # Then the breaker closed only once every acknowledged write had reached Upstash:
    # no read returns an older value than the last acknowledged write, nothing was lost
    assert report.ok and report.complete, report.as_dict()
    assert kv.mode == "kv"
    assert writes["mongodb"] > 20, writes  # writes really landed in MongoDB during the resync
    read = {key: kv.get(key) for key in keys}
    stale = {key: (read[key], acked[key]) for key in keys if read[key] != acked[key]}
    assert stale == {}, f"{len(stale)} of {len(keys)} keys read an older value: {sorted(stale.items())[:5]}"
    in_kv = {key: json.loads(valkey().get(key)) for key in keys}
    assert in_kv == acked
    assert kv.pending_count() == 0


def test_case_7_a_mongodb_query_operator_as_a_key_is_a_type_error_before_any_io(
    upstash_fault: Callable[[str], Any],
) -> None:
    # Given two users' sessions mirrored to MongoDB, and Upstash rate-limited (reads served from MongoDB)
    kv = fresh_kv()
    kv.set("user:1:session", {"user": 1, "token": "t-one"})
    kv.set("user:2:session", {"user": 2, "token": "t-two"})
    calls: list[str] = []
    with upstash_fault("429"):
        assert kv.get("user:2:session") == {"user": 2, "token": "t-two"}
        assert kv.mode == "mongodb"
        kv.store.primary = Counting(kv.store.primary, calls)
        kv.store.collection = Counting(kv.store.collection, calls)
        # When keys, fields and values that are not what the API documents are passed
        refused: list[tuple[str, Callable[[], Any]]] = [
            ("get", lambda: kv.get({"$regex": "^user:1"})),
            ("get", lambda: kv.get(["user:1:session"])),
            ("get", lambda: kv.get(None)),
            ("get", lambda: kv.get(b"user:1:session")),
            ("exists", lambda: kv.exists({"$ne": None})),
            ("ttl", lambda: kv.ttl({"$gt": ""})),
            ("hgetall", lambda: kv.hgetall({"$exists": True})),
            ("hget", lambda: kv.hget("user:1:h", {"$ne": ""})),
            ("set", lambda: kv.set({"$gt": ""}, "x")),
            ("set", lambda: kv.set("user:1:x", {1, 2})),
            ("set", lambda: kv.set("user:1:x", b"\x00bytes")),
            ("set", lambda: kv.set("user:1:x", {"nested": {2: "int key"}})),
            ("set", lambda: kv.set("user:1:x", 1, ttl="60")),  # type: ignore[arg-type]
            ("delete", lambda: kv.delete({"$regex": "^user:"})),
            ("hset", lambda: kv.hset("user:1:h", {1: "x"})),  # type: ignore[dict-item]
            ("hset", lambda: kv.hset({"$gt": ""}, {"f": 1})),
            ("hset", lambda: kv.hset("user:1:h", ["f", 1])),  # type: ignore[arg-type]
            ("incr", lambda: kv.incr("user:1:n", "5")),  # type: ignore[arg-type]
            ("incr", lambda: kv.incr("user:1:n", True)),
            ("expire", lambda: kv.expire({"$gt": ""}, 60)),
            ("expire", lambda: kv.expire("user:1:session", 1.5)),  # type: ignore[arg-type]
        ]
        # Then each is a TypeError naming the method and what was refused, before any I/O
        for method, call in refused:
            with pytest.raises(TypeError, match=method):
                call()
        assert calls == []
        # And the mirror layer itself refuses a non-string key: no query operator reaches MongoDB
        with pytest.raises(TypeError):
            kv.store.read_doc(kv.store.collection, {"$regex": "^user:1"})
        assert calls == []
        kv.store.primary = kv.store.primary._real
        kv.store.collection = kv.store.collection._real
        # And an exact string key still works in MongoDB mode; the other user's session is untouched
        assert kv.get("user:1:session") == {"user": 1, "token": "t-one"}
        assert kv.get("^user:1") is None
    assert _mirror_value(kv, "user:2:session") == {"user": 2, "token": "t-two"}


def test_case_7_a_kv_flapping_between_429_and_ok_under_4_writers_has_no_stale_read_and_no_lost_write(
    upstash_fault: Callable[[str], Any], caplog: pytest.LogCaptureFixture
) -> None:
    # Given 4 writers, each owning 5 keys and writing increasing numbers to them, each reading back
    # its own keys, a reader checking every key against the acknowledged history, and a thread
    # flipping Upstash between 429 and ok
    kv = fresh_kv(cooldown_s=0.05)
    owners = {w: [f"flap:w{w}:k{i}" for i in range(5)] for w in range(4)}
    keys = [key for owned in owners.values() for key in owned]
    acked = dict.fromkeys(keys, 0)  # last acknowledged value per key
    attempted = dict.fromkeys(keys, 0)  # highest value a write was started with
    for key in keys:
        kv.set(key, 0)
    stop = threading.Event()
    lock = threading.Lock()
    counts = {"writes": 0, "reads": 0, "flips": 0}
    violations: list[str] = []
    errors: list[str] = []

    def note(kind: str, message: str | None = None) -> None:
        with lock:
            if message is None:
                counts[kind] += 1
            else:
                (violations if kind == "violation" else errors).append(message)

    def writer(owned: list[str]) -> None:
        rng = random.Random(owned[0])
        value = 0
        try:
            while not stop.is_set():
                value += 1
                for key in owned:
                    attempted[key] = value
                    kv.set(key, value)
                    acked[key] = value
                    note("writes")
                check = rng.choice(owned)  # sole writer of its keys: must read exactly its last write
                got = kv.get(check)
                note("reads")
                if got != acked[check]:
                    note("violation", f"{check}: read {got} after acknowledging {acked[check]}")
        except Exception as exc:  # counted: the test requires none
            note("error", f"{type(exc).__name__}: {exc}")

    def reader() -> None:
        rng = random.Random(7)
        try:
            while not stop.is_set():
                key = rng.choice(keys)
                floor = acked[key]
                got = kv.get(key)
                ceiling = attempted[key]
                note("reads")
                if not isinstance(got, int) or not floor <= got <= ceiling:
                    note("violation", f"{key}: read {got}, acknowledged {floor}, attempted up to {ceiling}")
        except Exception as exc:
            note("error", f"{type(exc).__name__}: {exc}")

    def flapper() -> None:
        rng = random.Random(3)
        while not stop.is_set():
            with upstash_fault("429"):
                note("flips")
                time.sleep(rng.uniform(0.05, 0.25))
            time.sleep(rng.uniform(0.05, 0.25))

    threads = [threading.Thread(target=writer, args=(owned,)) for owned in owners.values()]
    threads += [threading.Thread(target=reader), threading.Thread(target=flapper)]
    # When they all run for a few seconds
    for thread in threads:
        thread.start()
    time.sleep(5.0)
    stop.set()
    for thread in threads:
        thread.join(timeout=60)
    print(f"flapping KV: {counts}, breaker trips {kv.breaker.trips}")  # shown with -s / on failure
    # Then no read returned an older value than the last acknowledged write, and no call failed
    assert errors == [], errors[:5]
    assert violations == [], f"{len(violations)} stale reads of {counts['reads']}: {violations[:5]}"
    assert counts["writes"] > 200 and counts["reads"] > 100 and counts["flips"] >= 5, counts
    assert kv.breaker.trips >= 3, counts  # the breaker really opened and recovered, again and again
    assert any(m.startswith("Synced flap:") for m in caplog.messages)  # writes went through MongoDB
    # And once Upstash stays up and a resync completes, every key's final value in Upstash and in
    # the mirror is the last acknowledged write (no lost write)
    report = kv.resync()
    assert report.ok and report.complete, report.as_dict()
    redis = valkey()
    assert {key: json.loads(redis.get(key)) for key in keys} == acked
    assert {key: _mirror_value(kv, key) for key in keys} == acked
    assert {key: kv.get(key) for key in keys} == acked
