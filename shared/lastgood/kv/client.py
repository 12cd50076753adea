"""`ResilientKV`, the resilient KV's public API, and the process-wide instance (`get_kv`, `reset_kv`).

How the pieces fit (the design notes are in the package docstring, `lastgood.kv`):
the circuit breaker is `lastgood.kv.breaker`, everything that touches MongoDB
is `lastgood.kv.mirror.MirrorStore`, the copy-back after an outage is
`lastgood.kv.resync`, and the health-check entry is `lastgood.kv.status`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from datetime import timedelta
from functools import lru_cache
from typing import Any, Final, Literal, TypeVar

from lastgood.core.observability import logger
from lastgood.kv import fallback
from lastgood.kv.breaker import BreakerState, CircuitBreaker, breaker_for, clear_breakers
from lastgood.kv.codec import (
    Arg,
    Primary,
    UpstashCommandError,
    UpstashError,
    UpstashRateLimited,
    dumps,
    loads,
    pairs,
)
from lastgood.kv.mirror import MIRROR_COLLECTION, MirrorStore
from lastgood.kv.resync import ResyncReport, copy_back

T = TypeVar("T")

MODE_KV: Final = "kv"
MODE_MONGODB: Final = "mongodb"
MODE_FALLBACK: Final = "fallback"  # neither store can serve: calls raise KVUnavailable
Mode = Literal["kv", "mongodb", "fallback"]

RATE_LIMIT_WARNING = "KV rate limit hit, switching to MongoDB"
UNAVAILABLE_WARNING = "KV unavailable"


class ResilientKV:
    """Upstash primary with a MongoDB mirror/fallback; see the `lastgood.kv` package docstring."""

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
        self.recover_budget_s = recover_budget_s
        self._wall = wall_clock
        self._version_lock = threading.Lock()
        self._last_version = 0
        self._pending_checked = False

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

    # ------------------------------------------------------------------ helpers

    def _next_version(self) -> int:
        with self._version_lock:
            candidate = int(self._wall() * 1e9)
            self._last_version = max(candidate, self._last_version + 1)
            return self._last_version

    def _trip(self, exc: UpstashError) -> None:
        rate_limited = isinstance(exc, UpstashRateLimited)
        reason = "rate_limited" if rate_limited else "unavailable"
        if self.breaker.record_failure(f"{reason}: {exc}"[:300]):
            logger.warning(
                RATE_LIMIT_WARNING if rate_limited else UNAVAILABLE_WARNING,
                extra={"kv_reason": reason, "error": str(exc)[:300], "cooldown_s": self.breaker.cooldown_s},
            )

    def _use_kv(self) -> bool:
        """Should this call go to KV? Runs the half-open probe / first-call resync when due."""
        if self.primary is None:
            return False
        before = self.breaker.state
        if not self.breaker.allow():
            return False
        if before is BreakerState.CLOSED and self._pending_checked:
            return True
        probing = before is not BreakerState.CLOSED or self.breaker.state is BreakerState.HALF_OPEN
        if not probing:
            # First call in this process: another process may have left writes in MongoDB.
            self._pending_checked = True
            if not self.store.has_pending():
                return True
        report = self.resync(budget_s=self.recover_budget_s)
        if not report.ok and self.breaker.state is not BreakerState.OPEN:
            # KV answered but MongoDB did not: KV is the best copy there is, so serve from it.
            self.breaker.record_success()
            return True
        return report.ok and report.complete

    def _kv(self, fn: Callable[[Primary], T]) -> tuple[bool, T | None]:
        """Run `fn` against KV when allowed: (True, result) or (False, None) after a trip."""
        if not self._use_kv():
            return False, None
        assert self.primary is not None
        try:
            result = fn(self.primary)
        except UpstashCommandError:
            raise  # the command itself was wrong (e.g. WRONGTYPE): not an outage
        except UpstashError as exc:
            self._trip(exc)
            return False, None
        if self.breaker.record_success():
            logger.info("KV available again", extra={"kv_mode": MODE_KV})
        return True, result

    # ------------------------------------------------------------------ reads

    def get(self, key: str) -> Any:
        used, reply = self._kv(lambda p: p.command("GET", key))
        if used:
            return loads(reply)
        doc = fallback.read(self.store, "get", key)
        if doc is None or doc.type not in (None, "string"):
            return None
        return doc.logical()

    def hget(self, key: str, name: str) -> Any:
        used, reply = self._kv(lambda p: p.command("HGET", key, name))
        if used:
            return loads(reply)
        doc = fallback.read(self.store, "hget", key)
        if doc is None or doc.type != "hash":
            return None
        return (doc.logical() or {}).get(name)

    def hgetall(self, key: str) -> dict[str, Any]:
        used, reply = self._kv(lambda p: p.command("HGETALL", key))
        if used:
            return pairs(reply)
        doc = fallback.read(self.store, "hgetall", key)
        if doc is None or doc.type != "hash":
            return {}
        return dict(doc.logical() or {})

    def exists(self, key: str) -> bool:
        used, reply = self._kv(lambda p: p.command("EXISTS", key))
        if used:
            return bool(reply)
        return fallback.read(self.store, "exists", key) is not None

    def ttl(self, key: str) -> int | None:
        """Remaining seconds, None for a key without expiry or a missing key."""
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
        if ttl is not None and ttl <= 0:
            raise ValueError("ttl must be a positive number of seconds")
        store = self.store
        text = dumps(value)
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
        fallback.set_value(store, key, text, expires, version)

    def delete(self, key: str) -> bool:
        store = self.store
        version = self._next_version()
        used, reply = self._kv(lambda p: p.command("DEL", key))
        if used:
            store.write(key, version, lambda c: c.delete_one({"_id": key}))
            return bool(reply)

        return fallback.delete(store, key, version)

    def hset(self, key: str, values: Mapping[str, Any]) -> int:
        """HSET key field value [field value ...]; returns the number of new fields."""
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
        return fallback.hset(store, key, values, version)

    def incr(self, key: str, amount: int = 1) -> int:
        store = self.store
        version = self._next_version()
        used, replies = self._kv(lambda p: p.pipeline([["INCRBY", key, int(amount)], ["PTTL", key]]))
        if used and replies is not None:
            value, pttl = replies
            number = int(value) if isinstance(value, int) else int(loads(value))
            doc = store.doc(key, "string", dumps(number), store.expiry(pttl), version, needs_resync=False)
            store.write_doc(key, version, doc)
            return number
        return fallback.incr(store, key, amount, version)

    def expire(self, key: str, seconds: int) -> bool:
        """EXPIRE key seconds; False when the key does not exist."""
        if seconds <= 0:
            raise ValueError("seconds must be positive (use delete to remove a key)")
        store = self.store
        version = self._next_version()
        used, reply = self._kv(lambda p: p.command("EXPIRE", key, int(seconds)))
        expires = store.now() + timedelta(seconds=seconds)
        if used:
            if reply:
                store.write_expiry(key, version, expires)
            return bool(reply)
        return fallback.expire(store, key, expires, version)

    # ------------------------------------------------------------------ resync

    def dirty_keys(self) -> dict[str, int]:
        """Keys whose mirror write failed: in memory plus the KV hash (when KV answers)."""
        return self.store.dirty_keys()

    def pending_count(self) -> int | None:
        """Documents in MongoDB waiting to be copied to KV (None when MongoDB is unreachable)."""
        return self.store.pending_count()

    def resync(self, *, budget_s: float | None = None) -> ResyncReport:
        """Copy pending MongoDB writes to KV, then repair dirty mirror documents from KV.

        Closes the breaker when everything pending was copied; stops early (and
        reports `complete: false`) when `budget_s` runs out.
        """
        report = copy_back(self.store, budget_s=budget_s, on_outage=self._trip)
        if report.ok and report.complete:
            self._pending_checked = True
            if self.breaker.record_success():
                logger.info(
                    "KV available again; resync complete", extra={"kv_mode": MODE_KV, **report.as_dict()}
                )
        elif report.ok:
            self.breaker.record_failure("resync incomplete")  # keep serving from MongoDB until done
        return report

    # ------------------------------------------------------------------ status

    def status(self, *, probe: bool = True) -> dict[str, Any]:
        """The seed-001 health shape plus breaker and resync details."""
        kv_ok = self._probe_kv() if probe else self.breaker.state is BreakerState.CLOSED
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

    def _probe_kv(self) -> bool:
        if self.primary is None:
            return False
        try:
            self.primary.command("PING")
            return True
        except UpstashError as exc:
            self._trip(exc)  # a failed probe is an outage like any other: stop sending traffic
            return False


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
