"""`ResilientKV`, the resilient KV's public API, and the process-wide instance (`get_kv`, `reset_kv`).

How the pieces fit (the design notes are in the package docstring, `lastgood.kv`):
the circuit breaker is `lastgood.kv.breaker`, everything that touches MongoDB
is `lastgood.kv.mirror.MirrorStore`, the copy-back after an outage is
`lastgood.kv.resync`, which store serves a call and when the breaker closes
is `lastgood.kv.routing`, the argument checks are `lastgood.kv.validate`, and
the health-check entry is `lastgood.kv.status`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from datetime import timedelta
from functools import lru_cache
from typing import Any, Final, Literal, TypeVar

from lastgood.kv import fallback, validate
from lastgood.kv.breaker import BreakerState, CircuitBreaker, breaker_for, clear_breakers
from lastgood.kv.codec import Arg, Primary, dumps, loads, pairs
from lastgood.kv.mirror import MIRROR_COLLECTION, MirrorStore, key_filter
from lastgood.kv.resync import ResyncReport
from lastgood.kv.routing import MODE_KV, RATE_LIMIT_WARNING, UNAVAILABLE_WARNING, Router

__all__ = [
    "MODE_FALLBACK",
    "MODE_KV",
    "MODE_MONGODB",
    "RATE_LIMIT_WARNING",
    "UNAVAILABLE_WARNING",
    "ResilientKV",
    "get_kv",
    "reset_kv",
]

T = TypeVar("T")

MODE_MONGODB: Final = "mongodb"
MODE_FALLBACK: Final = "fallback"  # neither store can serve: calls raise KVUnavailable
Mode = Literal["kv", "mongodb", "fallback"]


class ResilientKV:
    """Upstash primary with a MongoDB mirror/fallback; see the `lastgood.kv` package docstring.

    Every method checks its arguments first (`lastgood.kv.validate`): a key that
    is not a `str`, or a value JSON cannot hold, is a TypeError before any I/O.
    """

    def __init__(
        self,
        primary: Primary | None,
        mirror: Any | None,
        *,
        breaker: CircuitBreaker | None = None,
        mirror_breaker: CircuitBreaker | None = None,
        mirror_timeout_s: float = 1.0,
        fallback_timeout_s: float = 3.0,
        recover_budget_s: float = 2.0,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.breaker = breaker or CircuitBreaker()
        self.store = MirrorStore(
            mirror,  # a pymongo Collection (kv_mirror)
            primary,
            kv_breaker=self.breaker,
            breaker=mirror_breaker or CircuitBreaker(cooldown_s=5.0),
            timeout_s=mirror_timeout_s,
            fallback_timeout_s=fallback_timeout_s,
            wall_clock=wall_clock,
        )
        self.router = Router(self.store, self.breaker, recover_budget_s=recover_budget_s)
        self._wall = wall_clock
        self._version_lock = threading.Lock()
        self._last_version = 0

    # What the store holds, under the names callers use.

    @property
    def primary(self) -> Primary | None:
        return self.store.primary

    @property
    def mirror(self) -> Any | None:
        """The pymongo `kv_mirror` Collection (None when MongoDB is not configured)."""
        return self.store.collection

    @property
    def mirror_breaker(self) -> CircuitBreaker:
        return self.store.breaker

    @property
    def mirror_timeout_s(self) -> float:
        return self.store.timeout_s

    @property
    def fallback_timeout_s(self) -> float:
        return self.store.fallback_timeout_s

    @property
    def recover_budget_s(self) -> float:
        return self.router.recover_budget_s

    # ------------------------------------------------------------------ helpers

    def _next_version(self) -> int:
        with self._version_lock:
            candidate = int(self._wall() * 1e9)
            self._last_version = max(candidate, self._last_version + 1)
            return self._last_version

    def _kv(self, fn: Callable[[Primary], T]) -> tuple[bool, T | None]:
        return self.router.call(fn)

    def _in_mongodb(self, key: str, version: int, write: Callable[[], T]) -> T:
        """A write served from MongoDB; the router makes sure KV gets it (see `Router.landed`)."""
        result = write()
        self.router.landed(key, version)
        return result

    # ------------------------------------------------------------------ reads

    def get(self, key: str) -> Any:
        key = validate.key("get", key)
        used, reply = self._kv(lambda p: p.command("GET", key))
        if used:
            return loads(reply)
        doc = fallback.read(self.store, "get", key)
        if doc is None or doc.type not in (None, "string"):
            return None
        return doc.logical()

    def hget(self, key: str, name: str) -> Any:
        key = validate.key("hget", key)
        name = validate.key("hget", name, what="field name")
        used, reply = self._kv(lambda p: p.command("HGET", key, name))
        if used:
            return loads(reply)
        doc = fallback.read(self.store, "hget", key)
        if doc is None or doc.type != "hash":
            return None
        return (doc.logical() or {}).get(name)

    def hgetall(self, key: str) -> dict[str, Any]:
        key = validate.key("hgetall", key)
        used, reply = self._kv(lambda p: p.command("HGETALL", key))
        if used:
            return pairs(reply)
        doc = fallback.read(self.store, "hgetall", key)
        if doc is None or doc.type != "hash":
            return {}
        return dict(doc.logical() or {})

    def exists(self, key: str) -> bool:
        key = validate.key("exists", key)
        used, reply = self._kv(lambda p: p.command("EXISTS", key))
        if used:
            return bool(reply)
        return fallback.read(self.store, "exists", key) is not None

    def ttl(self, key: str) -> int | None:
        """Remaining seconds, None for a key without expiry or a missing key."""
        key = validate.key("ttl", key)
        used, reply = self._kv(lambda p: p.command("PTTL", key))
        if used:
            return None if not isinstance(reply, int) or reply < 0 else max(0, (reply + 999) // 1000)
        doc = fallback.read(self.store, "ttl", key)
        if doc is None or doc.expires_at is None:
            return None
        return max(0, int((doc.expires_at - self.store.now()).total_seconds() + 0.999))

    # ------------------------------------------------------------------ writes

    def set(self, key: str, value: Any, *, ttl: int | None = None) -> None:
        """SET key value [EX ttl] (ttl in seconds, > 0)."""
        key = validate.key("set", key)
        text = validate.json_text("set", value)
        if ttl is not None and validate.integer("set", ttl, what="ttl") <= 0:
            raise ValueError("ttl must be a positive number of seconds")
        store = self.store
        version = self._next_version()
        args: list[Arg] = ["SET", key, text]
        if ttl:
            args += ["EX", int(ttl)]
        used, _ = self._kv(lambda p: p.command(*args))
        expires = store.now() + timedelta(seconds=ttl) if ttl else None
        if used:
            store.write_doc(
                key, version, store.doc(key, "string", text, expires, version, needs_resync=False)
            )
            return
        self._in_mongodb(key, version, lambda: fallback.set_value(store, key, text, expires, version))

    def delete(self, key: str) -> bool:
        key = validate.key("delete", key)
        store = self.store
        version = self._next_version()
        used, reply = self._kv(lambda p: p.command("DEL", key))
        if used:
            store.write(
                key, version, lambda c: c.delete_one({**key_filter(key), "version": {"$lte": version}})
            )
            return bool(reply)
        return self._in_mongodb(key, version, lambda: fallback.delete(store, key, version))

    def hset(self, key: str, values: Mapping[str, Any]) -> int:
        """HSET key field value [field value ...]; returns the number of new fields."""
        key = validate.key("hset", key)
        values = validate.fields("hset", values)
        if not values:
            raise ValueError("hset needs at least one field")
        store = self.store
        version = self._next_version()
        flat: list[Arg] = ["HSET", key]
        for name, value in values.items():
            flat += [name, dumps(value)]
        used, replies = self._kv(lambda p: p.pipeline([flat, ["HGETALL", key], ["PTTL", key]]))
        if used and replies is not None:
            added, full, pttl = replies
            doc = store.doc(key, "hash", dumps(pairs(full)), store.expiry(pttl), version, needs_resync=False)
            store.write_doc(key, version, doc)
            return int(added) if isinstance(added, int) else 0
        return self._in_mongodb(key, version, lambda: fallback.hset(store, key, values, version))

    def incr(self, key: str, amount: int = 1) -> int:
        key = validate.key("incr", key)
        amount = validate.integer("incr", amount, what="amount")
        store = self.store
        version = self._next_version()
        used, replies = self._kv(lambda p: p.pipeline([["INCRBY", key, amount], ["PTTL", key]]))
        if used and replies is not None:
            value, pttl = replies
            number = int(value) if isinstance(value, int) else int(loads(value))
            doc = store.doc(key, "string", dumps(number), store.expiry(pttl), version, needs_resync=False)
            store.write_doc(key, version, doc)
            return number
        return self._in_mongodb(key, version, lambda: fallback.incr(store, key, amount, version))

    def expire(self, key: str, seconds: int) -> bool:
        """EXPIRE key seconds; False when the key does not exist."""
        key = validate.key("expire", key)
        if validate.integer("expire", seconds, what="seconds") <= 0:
            raise ValueError("seconds must be positive (use delete to remove a key)")
        store = self.store
        version = self._next_version()
        used, reply = self._kv(lambda p: p.command("EXPIRE", key, seconds))
        expires = store.now() + timedelta(seconds=seconds)
        if used:
            if reply:
                store.write_expiry(key, version, expires)
            return bool(reply)
        return self._in_mongodb(key, version, lambda: fallback.expire(store, key, expires, version))

    # ------------------------------------------------------------------ resync

    def dirty_keys(self) -> dict[str, int]:
        """Keys whose mirror write failed: in memory plus the KV hash (when KV answers)."""
        return self.store.dirty_keys()

    def pending_count(self) -> int | None:
        """Documents in MongoDB waiting to be copied to KV (None when MongoDB is unreachable)."""
        return self.store.pending_count()

    def resync(self, *, budget_s: float | None = None) -> ResyncReport:
        """Copy pending MongoDB writes to KV, then repair dirty mirror documents (`Router.resync`).

        Closes the breaker only once every write pending in MongoDB is in KV;
        stops early (and reports `complete: false`) when `budget_s` runs out.
        """
        return self.router.resync(budget_s=budget_s)

    # ------------------------------------------------------------------ status

    def status(self, *, probe: bool = True) -> dict[str, Any]:
        """The seed-001 health shape plus breaker and resync details."""
        kv_ok = self.router.probe() if probe else self.breaker.state is BreakerState.CLOSED
        mongo_ok = self.store.probe() if probe else self.mirror is not None
        serving_kv = kv_ok and self.breaker.state is BreakerState.CLOSED
        mode: Mode = MODE_KV if serving_kv else MODE_MONGODB if mongo_ok else MODE_FALLBACK
        return {
            "status": mode,
            "health": {"kv": kv_ok, "mongodb": mongo_ok},
            "kv": {
                "configured": self.primary is not None,
                "available": kv_ok,
                "circuit": self.breaker.snapshot(),
            },
            "mongodb": {
                "configured": self.mirror is not None,
                "available": mongo_ok,
                "mirror_circuit": self.mirror_breaker.snapshot(),
            },
            "open_circuit_age_s": self.breaker.snapshot()["open_age_s"],
            "dirty_keys": len(self.dirty_keys()),
            "pending_resync": self.pending_count() if mongo_ok else None,
        }

    @property
    def mode(self) -> Mode:
        """The serving mode without probing (breaker state only)."""
        if self.primary is not None and self.breaker.state is BreakerState.CLOSED:
            return MODE_KV
        return MODE_MONGODB if self.mirror is not None else MODE_FALLBACK


# --------------------------------------------------------------------------- process-wide instance


@lru_cache(maxsize=1)
def get_kv() -> ResilientKV:
    """The process-wide ResilientKV built from settings (`reset_kv()` in tests)."""
    from lastgood.core.settings import get_secret, get_settings
    from lastgood.engines.upstash_rest import UpstashRest

    settings = get_settings()
    url = get_secret("UPSTASH_REDIS_REST_URL", required=False)
    token = get_secret("UPSTASH_REDIS_REST_TOKEN", required=False)
    mongo_url = get_secret("MONGODB_URI", required=False)
    primary = UpstashRest(url, token or "", timeout_s=settings.kv_timeout_s) if url else None
    mirror = None
    if mongo_url:
        from lastgood.engines.mongodb import get_client

        client = get_client(mongo_url, server_selection_timeout_ms=settings.kv_mirror_timeout_ms)
        mirror = client[settings.mongodb_db_name][MIRROR_COLLECTION]
    return ResilientKV(
        primary,
        mirror,
        breaker=breaker_for(url or "-", settings.kv_breaker_cooldown_s),
        mirror_breaker=breaker_for(f"mirror:{mongo_url or '-'}", settings.kv_mirror_cooldown_s),
        mirror_timeout_s=settings.kv_mirror_timeout_ms / 1000,
        fallback_timeout_s=settings.kv_fallback_timeout_s,
        recover_budget_s=settings.kv_recover_budget_s,
    )


def reset_kv() -> None:
    """Forget the process-wide instance and its breakers (tests)."""
    get_kv.cache_clear()
    clear_breakers()
