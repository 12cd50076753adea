"""Resilient KV: Upstash Redis as the primary, MongoDB as a live mirror and fallback (seed 001).

What a caller gets (`get_kv()` returns the process-wide instance)::

    kv = get_kv()
    kv.set("session:42", {"user": 42}, ttl=3600)
    kv.get("session:42")                      # -> {"user": 42}
    kv.hset("user:42", {"plan": "pro"}); kv.hgetall("user:42"); kv.incr("visits")

Values are JSON (anything `json.dumps` accepts); Redis holds their JSON text, so
other Redis clients see readable values and `INCR` works on numbers.

Write path. Every write goes to Upstash first and is then mirrored, inside the
call, to the MongoDB collection `kv_mirror` (one document per key, see
`MirrorDoc` below) with a short timeout. A failed mirror write never fails the
user's write: the key is recorded as *dirty* (in memory and in the KV hash
`lastgood:kv_dirty`, field = key, value = the write's version) and repaired
from KV by the next resync. A run of mirror failures opens a separate mirror
breaker, so a dead MongoDB costs one timeout, not one per write.

Failure detection. HTTP 429, 5xx, timeouts and connection errors from Upstash
open the circuit breaker (warnings `KV rate limit hit, switching to MongoDB` /
`KV unavailable`). While it is open, reads and writes go to MongoDB and written
documents carry `needs_resync: true`. After the cool-down (`KV_BREAKER_COOLDOWN_S`)
the next call is a half-open probe: it PINGs Upstash and copies pending keys
back (bounded by `KV_RECOVER_BUDGET_S`) before closing the breaker, so a read
after recovery never sees a stale KV value. Both stores down → `KVUnavailable`.

Resync (`ResilientKV.resync`, run by the scheduled health check and by
`lastgood kv resync`): documents with `needs_resync` are copied to KV in
version order (remaining TTL kept; expired or deleted keys are removed from KV),
logging `Synced <key> from MongoDB to KV`; then dirty keys are copied from KV
to MongoDB. "Newer version wins": a dirty key whose KV version is newer than
the pending document is not overwritten by it.

Where the breaker state lives. Breakers are module-level, one per Upstash URL,
so warm invocations of one Lambda process share them; each new process starts
closed. What must survive a process is persisted: `needs_resync` flags in
MongoDB and the dirty set in KV. A fresh process checks MongoDB once for
pending documents before its first KV call and resyncs them first, and the
scheduled health run resyncs whatever any process left behind.

Limits (documented, not hidden): while one process serves from MongoDB (its
breaker open), another process whose KV calls succeed reads KV, so it sees
the first one's outage writes only after a resync (the half-open probe after
the cool-down, or the next scheduled health run). The mirror is written after the KV write, so
two processes writing the same key at the same moment can leave the mirror one
version behind KV until that key's next write; read-modify-write operations in
MongoDB mode (hset/incr/expire) use an optimistic version check and retry.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from typing import Any, Final, Literal, Protocol, TypeVar

from lastgood.core.errors import KVUnavailable
from lastgood.core.observability import logger
from lastgood.engines.upstash_rest import Arg, Reply, UpstashCommandError, UpstashError, UpstashRateLimited

T = TypeVar("T")

MIRROR_COLLECTION = "kv_mirror"
# KV hash of keys whose mirror write failed: field = key, value = version of the KV write.
DIRTY_HASH = "lastgood:kv_dirty"
MODE_KV: Final = "kv"
MODE_MONGODB: Final = "mongodb"
MODE_FALLBACK: Final = "fallback"  # neither store can serve: calls raise KVUnavailable
Mode = Literal["kv", "mongodb", "fallback"]

RATE_LIMIT_WARNING = "KV rate limit hit, switching to MongoDB"
UNAVAILABLE_WARNING = "KV unavailable"
_OCC_RETRIES = 8
RESYNC_BATCH = 100  # documents per Upstash pipeline during resync
_WRITES = frozenset({"set", "delete", "hset", "incr", "expire"})


# --------------------------------------------------------------------------- circuit breaker


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """Closed → open on failure → half-open after `cooldown_s` → closed on success.

    Pure state machine with an injectable monotonic clock. In the half-open
    state one caller probes; others keep using the fallback until the probe
    reports (or until another cool-down passes, should the prober die).
    """

    def __init__(self, *, cooldown_s: float = 30.0, clock: Callable[[], float] = time.monotonic) -> None:
        if cooldown_s < 0:
            raise ValueError("cooldown_s must be >= 0")
        self.cooldown_s = cooldown_s
        self._clock = clock
        self._lock = threading.Lock()
        self._state = BreakerState.CLOSED
        self._changed_at = clock()
        self._first_opened_at: float | None = None
        self.reason: str | None = None
        self.trips = 0

    @property
    def state(self) -> BreakerState:
        return self._state

    def allow(self) -> bool:
        """May the caller use the primary now? (moves open → half-open after the cool-down)."""
        with self._lock:
            if self._state is BreakerState.CLOSED:
                return True
            if self._clock() - self._changed_at >= self.cooldown_s:
                self._state = BreakerState.HALF_OPEN
                self._changed_at = self._clock()
                return True
            return False

    def record_success(self) -> bool:
        """The primary answered; returns True when this closed an open breaker."""
        with self._lock:
            was_open = self._state is not BreakerState.CLOSED
            self._state = BreakerState.CLOSED
            self._changed_at = self._clock()
            self._first_opened_at = None
            self.reason = None
            return was_open

    def record_failure(self, reason: str) -> bool:
        """The primary failed; returns True when this opened a closed breaker (a new trip)."""
        with self._lock:
            now = self._clock()
            tripped = self._state is BreakerState.CLOSED
            if tripped:
                self._first_opened_at = now
                self.trips += 1
            self._state = BreakerState.OPEN
            self._changed_at = now
            self.reason = reason
            return tripped

    def open_age_s(self) -> float | None:
        """Seconds since the breaker first opened in this outage (None when closed)."""
        first = self._first_opened_at
        return None if first is None else max(0.0, self._clock() - first)

    def snapshot(self) -> dict[str, Any]:
        age = self.open_age_s()
        return {
            "state": self._state.value,
            "open_age_s": None if age is None else round(age, 3),
            "reason": self.reason,
            "trips": self.trips,
            "cooldown_s": self.cooldown_s,
        }


# --------------------------------------------------------------------------- values and documents


class Primary(Protocol):
    """What ResilientKV needs from the Upstash client (`UpstashRest`)."""

    def command(self, *args: Arg) -> Reply: ...

    def pipeline(self, commands: Any, *, raise_on_error: bool = True) -> list[Reply]: ...


def dumps(value: Any) -> str:
    """The JSON text stored for a value (compact, stable key order, UTF-8)."""
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def loads(raw: Reply) -> Any:
    if raw is None:
        return None
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8")
    if isinstance(raw, int):
        return raw
    if isinstance(raw, list):
        raise TypeError("expected a scalar reply")
    try:
        return json.loads(raw)
    except ValueError:
        return raw  # a value written by another client that is not JSON: hand back the text


def _pairs(reply: Reply) -> dict[str, Any]:
    items = reply if isinstance(reply, list) else []
    out: dict[str, Any] = {}
    for name, value in zip(items[0::2], items[1::2], strict=True):
        out[name.decode("utf-8") if isinstance(name, bytes) else str(name)] = loads(value)
    return out


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@dataclass
class MirrorDoc:
    """One key in `kv_mirror`.

    `value` is the JSON text of the logical value (a hash: a JSON object of
    field → value), so any key name or value survives MongoDB's field rules.
    `version` is monotonic per process (nanoseconds since the epoch, bumped on
    ties). `needs_resync`: written while KV was unreachable, newer than KV.
    `dirty`: always false when written; a key whose mirror write failed is
    tracked in KV (`lastgood:kv_dirty`) because MongoDB could not be written.
    `deleted`: a tombstone for a delete made while KV was unreachable.
    """

    key: str
    type: Literal["string", "hash"] | None
    value: str | None
    expires_at: datetime | None
    version: int
    updated_at: datetime
    needs_resync: bool = False
    deleted: bool = False
    dirty: bool = False

    def to_bson(self) -> dict[str, Any]:
        return {
            "_id": self.key,
            "type": self.type,
            "value": self.value,
            "expires_at": self.expires_at,
            "version": self.version,
            "updated_at": self.updated_at,
            "needs_resync": self.needs_resync,
            "deleted": self.deleted,
            "dirty": self.dirty,
        }

    @classmethod
    def from_bson(cls, doc: Mapping[str, Any]) -> MirrorDoc:
        return cls(
            key=str(doc["_id"]),
            type=doc.get("type"),
            value=doc.get("value"),
            expires_at=_utc(doc.get("expires_at")),
            version=int(doc.get("version") or 0),
            updated_at=_utc(doc.get("updated_at")) or datetime.fromtimestamp(0, UTC),
            needs_resync=bool(doc.get("needs_resync")),
            deleted=bool(doc.get("deleted")),
            dirty=bool(doc.get("dirty")),
        )

    def live(self, now: datetime) -> bool:
        """Present, not a tombstone, not expired."""
        return not self.deleted and (self.expires_at is None or self.expires_at > now)

    def logical(self) -> Any:
        return None if self.value is None else json.loads(self.value)


@dataclass
class ResyncReport:
    """What one resync did."""

    ok: bool = True
    complete: bool = True
    synced: list[str] = field(default_factory=list)  # MongoDB → KV
    removed: list[str] = field(default_factory=list)  # deleted/expired in MongoDB → DEL in KV
    repaired: list[str] = field(default_factory=list)  # dirty keys: KV → MongoDB
    skipped: list[str] = field(default_factory=list)  # KV had a newer version
    error: str | None = None
    duration_s: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "complete": self.complete,
            "synced": len(self.synced),
            "removed": len(self.removed),
            "repaired": len(self.repaired),
            "skipped": len(self.skipped),
            "keys": {
                "synced": self.synced[:50],
                "repaired": self.repaired[:50],
                "removed": self.removed[:50],
            },
            "error": self.error,
            "duration_s": round(self.duration_s, 3),
        }


# --------------------------------------------------------------------------- the KV


class ResilientKV:
    """Upstash primary with a MongoDB mirror/fallback; see the module docstring."""

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
        self.primary = primary
        self.mirror = mirror  # a pymongo Collection (kv_mirror)
        self.breaker = breaker or CircuitBreaker()
        self.mirror_breaker = mirror_breaker or CircuitBreaker(cooldown_s=5.0)
        self.mirror_timeout_s = mirror_timeout_s
        self.fallback_timeout_s = fallback_timeout_s
        self.recover_budget_s = recover_budget_s
        self._wall = wall_clock
        self._dirty: dict[str, int] = {}
        self._dirty_lock = threading.Lock()
        self._version_lock = threading.Lock()
        self._last_version = 0
        self._pending_checked = False

    # ------------------------------------------------------------------ helpers

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._wall(), UTC)

    def _next_version(self) -> int:
        with self._version_lock:
            candidate = int(self._wall() * 1e9)
            self._last_version = max(candidate, self._last_version + 1)
            return self._last_version

    @contextmanager
    def _mongo_deadline(self, seconds: float) -> Iterator[None]:
        import pymongo

        with pymongo.timeout(seconds):
            yield

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
            if not self._has_pending():
                return True
        report = self.resync(budget_s=self.recover_budget_s)
        if not report.ok and self.breaker.state is not BreakerState.OPEN:
            # KV answered but MongoDB did not: KV is the best copy there is, so serve from it.
            self.breaker.record_success()
            return True
        return report.ok and report.complete

    def _has_pending(self) -> bool:
        if self.mirror is None:
            return False
        from pymongo.errors import PyMongoError

        try:
            with self._mongo_deadline(self.mirror_timeout_s):
                self.mirror.create_index("needs_resync")  # idempotent; keeps this check cheap
                return self.mirror.find_one({"needs_resync": True}, {"_id": 1}) is not None
        except PyMongoError:
            return False

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

    def _fallback(self, what: str, fn: Callable[[Any], T]) -> T:
        """Serve from MongoDB while KV is unreachable; both down is KVUnavailable."""
        from pymongo.errors import PyMongoError

        why = self.breaker.reason or "KV not configured"
        if self.mirror is None:
            raise KVUnavailable(f"{what}: KV unavailable ({why}) and no MongoDB mirror is configured")
        try:
            with self._mongo_deadline(self.fallback_timeout_s):
                return fn(self.mirror)
        except PyMongoError as exc:
            outcome = "nothing was written" if what in _WRITES else "nothing could be read"
            raise KVUnavailable(
                f"{what}: KV unavailable ({why}) and MongoDB failed ({type(exc).__name__}); {outcome}"
            ) from None

    def _mirror_write(self, key: str, version: int, fn: Callable[[Any], None]) -> None:
        """Mirror a successful KV write; a failure marks the key dirty instead of failing."""
        if self.mirror is None:
            return
        from pymongo.errors import PyMongoError

        if not self.mirror_breaker.allow():
            self._mark_dirty(key, version)
            return
        try:
            with self._mongo_deadline(self.mirror_timeout_s):
                fn(self.mirror)
        except PyMongoError as exc:
            if self.mirror_breaker.record_failure(type(exc).__name__):
                logger.warning(
                    "MongoDB mirror unavailable, marking keys dirty",
                    extra={"key": key, "error": type(exc).__name__},
                )
            self._mark_dirty(key, version)
            return
        if self.mirror_breaker.record_success():
            logger.info("MongoDB mirror available again")

    def _mark_dirty(self, key: str, version: int) -> None:
        with self._dirty_lock:
            self._dirty[key] = max(version, self._dirty.get(key, 0))
        if self.primary is not None:
            # Still tracked in memory if this fails; the KV write itself succeeded.
            with suppress(UpstashError):
                self.primary.command("HSET", DIRTY_HASH, key, version)

    def _doc(
        self,
        key: str,
        kind: Literal["string", "hash"] | None,
        value_text: str | None,
        expires_at: datetime | None,
        version: int,
        *,
        needs_resync: bool,
        deleted: bool = False,
    ) -> dict[str, Any]:
        return MirrorDoc(
            key=key,
            type=kind,
            value=value_text,
            expires_at=expires_at,
            version=version,
            updated_at=self._now(),
            needs_resync=needs_resync,
            deleted=deleted,
        ).to_bson()

    def _expiry(self, pttl_ms: Reply) -> datetime | None:
        if isinstance(pttl_ms, int) and pttl_ms >= 0:
            return self._now() + timedelta(milliseconds=pttl_ms)
        return None

    def _read_doc(self, coll: Any, key: str) -> MirrorDoc | None:
        raw = coll.find_one({"_id": key})
        if raw is None:
            return None
        doc = MirrorDoc.from_bson(raw)
        return doc if doc.live(self._now()) else None

    def _occ_update(
        self, coll: Any, key: str, change: Callable[[MirrorDoc | None], dict[str, Any] | None]
    ) -> None:
        """Read-modify-write one mirror document with an optimistic version check."""
        from pymongo.errors import DuplicateKeyError

        for _ in range(_OCC_RETRIES):
            raw = coll.find_one({"_id": key})
            current = MirrorDoc.from_bson(raw) if raw is not None else None
            new = change(current if current is not None and current.live(self._now()) else None)
            if new is None:
                return
            if raw is None:
                try:
                    coll.insert_one(new)
                    return
                except DuplicateKeyError:
                    continue
            if coll.replace_one({"_id": key, "version": raw.get("version")}, new).matched_count == 1:
                return
        raise KVUnavailable(f"could not update {key!r} in MongoDB: too many concurrent writers")

    # ------------------------------------------------------------------ reads

    def get(self, key: str) -> Any:
        used, reply = self._kv(lambda p: p.command("GET", key))
        if used:
            return loads(reply)
        doc = self._fallback("get", lambda c: self._read_doc(c, key))
        if doc is None or doc.type not in (None, "string"):
            return None
        return doc.logical()

    def hget(self, key: str, name: str) -> Any:
        used, reply = self._kv(lambda p: p.command("HGET", key, name))
        if used:
            return loads(reply)
        doc = self._fallback("hget", lambda c: self._read_doc(c, key))
        if doc is None or doc.type != "hash":
            return None
        return (doc.logical() or {}).get(name)

    def hgetall(self, key: str) -> dict[str, Any]:
        used, reply = self._kv(lambda p: p.command("HGETALL", key))
        if used:
            return _pairs(reply)
        doc = self._fallback("hgetall", lambda c: self._read_doc(c, key))
        if doc is None or doc.type != "hash":
            return {}
        return dict(doc.logical() or {})

    def exists(self, key: str) -> bool:
        used, reply = self._kv(lambda p: p.command("EXISTS", key))
        if used:
            return bool(reply)
        return self._fallback("exists", lambda c: self._read_doc(c, key)) is not None

    def ttl(self, key: str) -> int | None:
        """Remaining seconds, None for a key without expiry or a missing key."""
        used, reply = self._kv(lambda p: p.command("PTTL", key))
        if used:
            return None if not isinstance(reply, int) or reply < 0 else max(0, (reply + 999) // 1000)
        doc = self._fallback("ttl", lambda c: self._read_doc(c, key))
        if doc is None or doc.expires_at is None:
            return None
        return max(0, int((doc.expires_at - self._now()).total_seconds() + 0.999))

    # ------------------------------------------------------------------ writes

    def set(self, key: str, value: Any, *, ttl: int | None = None) -> None:
        """SET key value [EX ttl] (ttl in seconds, > 0)."""
        if ttl is not None and ttl <= 0:
            raise ValueError("ttl must be a positive number of seconds")
        text = dumps(value)
        version = self._next_version()
        args: list[Arg] = ["SET", key, text]
        if ttl:
            args += ["EX", int(ttl)]
        used, _ = self._kv(lambda p: p.command(*args))
        expires = self._now() + timedelta(seconds=ttl) if ttl else None
        if used:
            doc = self._doc(key, "string", text, expires, version, needs_resync=False)
            self._mirror_write(key, version, lambda c: c.replace_one({"_id": key}, doc, upsert=True))
            return
        doc = self._doc(key, "string", text, expires, version, needs_resync=True)
        self._fallback("set", lambda c: c.replace_one({"_id": key}, doc, upsert=True))

    def delete(self, key: str) -> bool:
        version = self._next_version()
        used, reply = self._kv(lambda p: p.command("DEL", key))
        if used:
            self._mirror_write(key, version, lambda c: c.delete_one({"_id": key}))
            return bool(reply)

        def tombstone(c: Any) -> bool:
            existed = self._read_doc(c, key) is not None
            c.replace_one(
                {"_id": key},
                self._doc(key, None, None, None, version, needs_resync=True, deleted=True),
                upsert=True,
            )
            return existed

        return self._fallback("delete", tombstone)

    def hset(self, key: str, values: Mapping[str, Any]) -> int:
        """HSET key field value [field value ...]; returns the number of new fields."""
        if not values:
            raise ValueError("hset needs at least one field")
        version = self._next_version()
        flat: list[Arg] = ["HSET", key]
        for name, value in values.items():
            flat += [name, dumps(value)]
        used, replies = self._kv(lambda p: p.pipeline([flat, ["HGETALL", key], ["PTTL", key]]))
        if used and replies is not None:
            added, full, pttl = replies
            doc = self._doc(key, "hash", dumps(_pairs(full)), self._expiry(pttl), version, needs_resync=False)
            self._mirror_write(key, version, lambda c: c.replace_one({"_id": key}, doc, upsert=True))
            return int(added) if isinstance(added, int) else 0
        result = {"added": 0}

        def change(current: MirrorDoc | None) -> dict[str, Any]:
            if current is not None and current.type != "hash":
                raise UpstashCommandError("WRONGTYPE Operation against a key holding the wrong kind of value")
            merged = dict(current.logical() or {}) if current is not None else {}
            result["added"] = sum(1 for name in values if name not in merged)
            merged.update({name: json.loads(dumps(v)) for name, v in values.items()})
            expires = current.expires_at if current is not None else None
            return self._doc(key, "hash", dumps(merged), expires, version, needs_resync=True)

        self._fallback("hset", lambda c: self._occ_update(c, key, change))
        return result["added"]

    def incr(self, key: str, amount: int = 1) -> int:
        version = self._next_version()
        used, replies = self._kv(lambda p: p.pipeline([["INCRBY", key, int(amount)], ["PTTL", key]]))
        if used and replies is not None:
            value, pttl = replies
            number = int(value) if isinstance(value, int) else int(loads(value))
            doc = self._doc(key, "string", dumps(number), self._expiry(pttl), version, needs_resync=False)
            self._mirror_write(key, version, lambda c: c.replace_one({"_id": key}, doc, upsert=True))
            return number
        result = {"value": 0}

        def change(current: MirrorDoc | None) -> dict[str, Any]:
            old = current.logical() if current is not None else 0
            if current is not None and (current.type != "string" or not isinstance(old, int)):
                raise UpstashCommandError("ERR value is not an integer or out of range")
            result["value"] = int(old) + int(amount)
            expires = current.expires_at if current is not None else None
            return self._doc(key, "string", dumps(result["value"]), expires, version, needs_resync=True)

        self._fallback("incr", lambda c: self._occ_update(c, key, change))
        return result["value"]

    def expire(self, key: str, seconds: int) -> bool:
        """EXPIRE key seconds; False when the key does not exist."""
        if seconds <= 0:
            raise ValueError("seconds must be positive (use delete to remove a key)")
        version = self._next_version()
        used, reply = self._kv(lambda p: p.command("EXPIRE", key, int(seconds)))
        expires = self._now() + timedelta(seconds=seconds)
        if used:
            if reply:

                def mirror(c: Any) -> None:
                    updated = c.update_one(
                        {"_id": key},
                        {"$set": {"expires_at": expires, "version": version, "updated_at": self._now()}},
                    )
                    if updated.matched_count == 0:
                        raise _MirrorMissing(key)

                try:
                    self._mirror_write(key, version, mirror)
                except _MirrorMissing:
                    self._mark_dirty(key, version)  # the mirror never saw this key: repair copies it from KV
            return bool(reply)
        found = {"ok": False}

        def change(current: MirrorDoc | None) -> dict[str, Any] | None:
            found["ok"] = current is not None
            if current is None:
                return None
            return self._doc(key, current.type, current.value, expires, version, needs_resync=True)

        self._fallback("expire", lambda c: self._occ_update(c, key, change))
        return found["ok"]

    # ------------------------------------------------------------------ resync

    def dirty_keys(self) -> dict[str, int]:
        """Keys whose mirror write failed: in memory plus the KV hash (when KV answers)."""
        with self._dirty_lock:
            merged = dict(self._dirty)
        if self.primary is not None and self.breaker.state is BreakerState.CLOSED:
            try:
                for name, version in _pairs(self.primary.command("HGETALL", DIRTY_HASH)).items():
                    merged[name] = max(int(version), merged.get(name, 0))
            except (UpstashError, ValueError, TypeError):
                pass
        return merged

    def pending_count(self) -> int | None:
        """Documents in MongoDB waiting to be copied to KV (None when MongoDB is unreachable)."""
        if self.mirror is None:
            return None
        from pymongo.errors import PyMongoError

        try:
            with self._mongo_deadline(self.mirror_timeout_s):
                return int(self.mirror.count_documents({"needs_resync": True}))
        except PyMongoError:
            return None

    def resync(self, *, budget_s: float | None = None) -> ResyncReport:
        """Copy pending MongoDB writes to KV, then repair dirty mirror documents from KV.

        Closes the breaker when everything pending was copied; stops early (and
        reports `complete: false`) when `budget_s` runs out.
        """
        from pymongo.errors import PyMongoError

        started = time.monotonic()
        report = ResyncReport()

        def out_of_time() -> bool:
            return budget_s is not None and time.monotonic() - started > budget_s

        if self.primary is None or self.mirror is None:
            report.ok = False
            report.complete = False
            report.error = "KV primary or MongoDB mirror not configured"
            return report
        try:
            self.primary.command("PING")
            with self._dirty_lock:
                dirty = dict(self._dirty)
            for name, version in _pairs(self.primary.command("HGETALL", DIRTY_HASH)).items():
                dirty[name] = max(int(version), dirty.get(name, 0))
            with self._mongo_deadline(max(self.fallback_timeout_s, budget_s or 30.0)):
                pending = [
                    MirrorDoc.from_bson(raw)
                    for raw in self.mirror.find({"needs_resync": True}).sort("version", 1)
                ]
            todo: list[MirrorDoc] = []
            for doc in pending:
                if dirty.get(doc.key, 0) > doc.version:
                    report.skipped.append(doc.key)  # KV holds a newer write; the repair below keeps it
                else:
                    todo.append(doc)
            for start in range(0, len(todo), RESYNC_BATCH):
                if out_of_time():
                    report.complete = False
                    break
                self._push_batch(todo[start : start + RESYNC_BATCH], dirty, report)
            for key, version in sorted(dirty.items()):
                if out_of_time():
                    report.complete = False
                    break
                self._repair_from_kv(key, version)
                report.repaired.append(key)
                logger.info(f"Repaired {key} in MongoDB from KV", extra={"key": key})
        except UpstashCommandError as exc:
            report.ok = False
            report.complete = False
            report.error = f"{type(exc).__name__}: {exc}"[:300]
        except UpstashError as exc:
            self._trip(exc)
            report.ok = False
            report.complete = False
            report.error = f"KV: {type(exc).__name__}: {exc}"[:300]
        except PyMongoError as exc:
            report.ok = False
            report.complete = False
            report.error = f"MongoDB: {type(exc).__name__}"
        report.duration_s = time.monotonic() - started
        if report.ok and report.complete:
            self._pending_checked = True
            if self.breaker.record_success():
                logger.info(
                    "KV available again; resync complete", extra={"kv_mode": MODE_KV, **report.as_dict()}
                )
        elif report.ok:
            self.breaker.record_failure("resync incomplete")  # keep serving from MongoDB until done
        return report

    def _push_batch(self, docs: list[MirrorDoc], dirty: dict[str, int], report: ResyncReport) -> None:
        """Copy pending documents to KV in one pipeline, then clear their flags (version-checked)."""
        from pymongo import DeleteOne, UpdateOne

        assert self.primary is not None and self.mirror is not None
        now = self._now()
        commands: list[list[Arg]] = []
        marks: list[Any] = []
        for doc in docs:
            commands.append(["DEL", doc.key])
            if not doc.live(now):
                marks.append(DeleteOne({"_id": doc.key, "version": doc.version}))
                continue
            if doc.type == "hash":
                fields = doc.logical() or {}
                if fields:
                    flat: list[Arg] = ["HSET", doc.key]
                    for name, value in fields.items():
                        flat += [name, dumps(value)]
                    commands.append(flat)
            else:
                commands.append(["SET", doc.key, doc.value or "null"])
            if doc.expires_at is not None:
                remaining_ms = max(1, int((doc.expires_at - now).total_seconds() * 1000))
                commands.append(["PEXPIRE", doc.key, remaining_ms])
            marks.append(
                UpdateOne(
                    {"_id": doc.key, "version": doc.version},
                    {"$set": {"needs_resync": False, "dirty": False}},
                )
            )
        self.primary.pipeline(commands)
        with self._mongo_deadline(self.fallback_timeout_s):
            self.mirror.bulk_write(marks, ordered=False)
        for doc in docs:
            live = doc.live(now)
            (report.synced if live else report.removed).append(doc.key)
            logger.info(
                f"Synced {doc.key} from MongoDB to KV",
                extra={"key": doc.key, "version": doc.version, "action": "set" if live else "deleted"},
            )
            if doc.key in dirty:
                self._clear_dirty(doc.key)
                dirty.pop(doc.key)

    def _repair_from_kv(self, key: str, version: int) -> None:
        assert self.primary is not None and self.mirror is not None
        kind_reply = self.primary.command("TYPE", key)
        kind = kind_reply.decode() if isinstance(kind_reply, bytes) else str(kind_reply)
        with self._mongo_deadline(self.fallback_timeout_s):
            if kind == "none":
                self.mirror.delete_one({"_id": key, "needs_resync": {"$ne": True}})
            else:
                if kind == "hash":
                    full, pttl = self.primary.pipeline([["HGETALL", key], ["PTTL", key]])
                    doc = self._doc(
                        key, "hash", dumps(_pairs(full)), self._expiry(pttl), version, needs_resync=False
                    )
                else:
                    raw, pttl = self.primary.pipeline([["GET", key], ["PTTL", key]])
                    doc = self._doc(
                        key, "string", dumps(loads(raw)), self._expiry(pttl), version, needs_resync=False
                    )
                self.mirror.replace_one({"_id": key}, doc, upsert=True)
        self._clear_dirty(key)

    def _clear_dirty(self, key: str) -> None:
        with self._dirty_lock:
            self._dirty.pop(key, None)
        if self.primary is not None:
            self.primary.command("HDEL", DIRTY_HASH, key)

    # ------------------------------------------------------------------ status

    def status(self, *, probe: bool = True) -> dict[str, Any]:
        """The seed-001 health shape plus breaker and resync details."""
        kv_ok = self._probe_kv() if probe else self.breaker.state is BreakerState.CLOSED
        mongo_ok = self._probe_mongo() if probe else self.mirror is not None
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

    def _probe_mongo(self) -> bool:
        if self.mirror is None:
            return False
        from pymongo.errors import PyMongoError

        try:
            with self._mongo_deadline(self.mirror_timeout_s):
                self.mirror.database.command("ping")
            return True
        except PyMongoError:
            return False


class _MirrorMissing(Exception):
    def __init__(self, key: str) -> None:
        super().__init__(key)


# --------------------------------------------------------------------------- process-wide instance

_BREAKERS: dict[str, CircuitBreaker] = {}
_BREAKERS_LOCK = threading.Lock()


def breaker_for(name: str, cooldown_s: float) -> CircuitBreaker:
    """The module-level breaker for one Upstash URL (shared by warm invocations)."""
    with _BREAKERS_LOCK:
        breaker = _BREAKERS.get(name)
        if breaker is None or breaker.cooldown_s != cooldown_s:
            breaker = _BREAKERS[name] = CircuitBreaker(cooldown_s=cooldown_s)
        return breaker


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
    with _BREAKERS_LOCK:
        _BREAKERS.clear()


# --------------------------------------------------------------------------- health integration


def mongo_connections_used_ratio(mirror: Any) -> float | None:
    """`connections.current / (current + available)` from serverStatus; None where not permitted/supported."""
    if mirror is None:
        return None
    from pymongo.errors import PyMongoError

    try:
        import pymongo

        with pymongo.timeout(1.0):
            status = mirror.database.client.admin.command("serverStatus")
    except PyMongoError:
        return None  # e.g. Atlas shared tiers without the clusterMonitor role
    connections = status.get("connections") if isinstance(status, dict) else None
    if not isinstance(connections, dict):
        return None
    current, available = connections.get("current"), connections.get("available")
    if (
        not isinstance(current, int | float)
        or not isinstance(available, int | float)
        or current + available <= 0
    ):
        return None
    return round(float(current) / float(current + available), 4)


def health_status(scheduled: bool = False, *, emit_metrics: bool | None = None) -> dict[str, Any]:
    """The `kv` entry of the health report; a scheduled run also drives the resync.

    Shape (seed 001 plus details): `status` kv | mongodb | fallback, `health`,
    `kv.configured/available/circuit`, `mongodb.configured/available`,
    `open_circuit_age_s`, `dirty_keys`, `pending_resync`, `mongodb.connections_used_ratio`
    (a number, or "unknown" where serverStatus is not permitted) and, on scheduled
    runs, `resync`. `ok` is false only when neither store can serve.
    Metrics (scheduled runs): KVFallbackActive (1 while not in kv mode), KVDirtyKeys,
    KVPendingResync, MongoConnectionsUsedRatio (percent, only when known) — see docs/metrics.md.
    The health module calls this (`lastgood.monitoring.health`, check `kv`).
    """
    kv = get_kv()
    report: ResyncReport | None = None
    if scheduled and kv.primary is not None and kv.mirror is not None:
        report = kv.resync()
        if report.synced or report.repaired or report.removed:
            from lastgood.storage import audit

            audit.record("kv-resync", result="ok" if report.complete else "incomplete", **report.as_dict())
    status = kv.status()
    ratio = mongo_connections_used_ratio(kv.mirror) if status["health"]["mongodb"] else None
    status["mongodb"]["connections_used_ratio"] = "unknown" if ratio is None else ratio
    if report is not None:
        status["resync"] = report.as_dict()
    status["ok"] = status["status"] != MODE_FALLBACK
    if emit_metrics if emit_metrics is not None else scheduled:
        from aws_lambda_powertools.metrics import MetricUnit

        from lastgood.core.observability import metrics

        metrics.add_metric(
            name="KVFallbackActive", unit=MetricUnit.Count, value=0 if status["status"] == MODE_KV else 1
        )
        metrics.add_metric(name="KVDirtyKeys", unit=MetricUnit.Count, value=status["dirty_keys"])
        if isinstance(status["pending_resync"], int):
            metrics.add_metric(name="KVPendingResync", unit=MetricUnit.Count, value=status["pending_resync"])
        if ratio is not None:
            metrics.add_metric(name="MongoConnectionsUsedRatio", unit=MetricUnit.Percent, value=ratio * 100)
    return status


health_check = health_status  # the name the check registry and older callers use
