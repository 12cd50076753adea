"""The MongoDB side of the resilient KV: the `kv_mirror` document model and the mirror operations.

`MirrorStore` is the collaborator `ResilientKV` delegates to for everything
that touches MongoDB: building and reading mirror documents, mirroring a
successful KV write (a failure marks the key dirty instead of failing the
call), serving calls while KV is unreachable (`serve`), optimistic
read-modify-write updates, the dirty-key set and the pending-resync queries.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, TypeVar

from lastgood.core.errors import KVUnavailable
from lastgood.core.observability import logger
from lastgood.kv.breaker import BreakerState, CircuitBreaker
from lastgood.kv.codec import Primary, Reply, UpstashError, pairs

T = TypeVar("T")

MIRROR_COLLECTION = "kv_mirror"
# KV hash of keys whose mirror write failed: field = key, value = version of the KV write.
DIRTY_HASH = "lastgood:kv_dirty"
OCC_RETRIES = 8
_WRITES = frozenset({"set", "delete", "hset", "incr", "expire"})


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


class MirrorMissing(Exception):
    """A mirror update found no document for the key (the mirror never saw it)."""

    def __init__(self, key: str) -> None:
        super().__init__(key)


class MirrorStore:
    """The `kv_mirror` collection (or None) and the dirty-key set, for one ResilientKV.

    `kv_breaker` is the KV (Upstash) breaker: its reason explains a fallback
    failure and its state says whether the dirty hash in KV may be read.
    `breaker` is the separate mirror breaker that stops mirror writes after
    a run of MongoDB failures.
    """

    def __init__(
        self,
        collection: Any | None,
        primary: Primary | None,
        *,
        kv_breaker: CircuitBreaker,
        breaker: CircuitBreaker,
        timeout_s: float,
        fallback_timeout_s: float,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.collection = collection  # a pymongo Collection (kv_mirror)
        self.primary = primary
        self.kv_breaker = kv_breaker
        self.breaker = breaker
        self.timeout_s = timeout_s
        self.fallback_timeout_s = fallback_timeout_s
        self._wall = wall_clock
        self._dirty: dict[str, int] = {}
        self._dirty_lock = threading.Lock()

    # ------------------------------------------------------------------ documents

    def now(self) -> datetime:
        return datetime.fromtimestamp(self._wall(), UTC)

    @contextmanager
    def deadline(self, seconds: float) -> Iterator[None]:
        import pymongo

        with pymongo.timeout(seconds):
            yield

    def doc(
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
            updated_at=self.now(),
            needs_resync=needs_resync,
            deleted=deleted,
        ).to_bson()

    def expiry(self, pttl_ms: Reply) -> datetime | None:
        if isinstance(pttl_ms, int) and pttl_ms >= 0:
            return self.now() + timedelta(milliseconds=pttl_ms)
        return None

    def read_doc(self, coll: Any, key: str) -> MirrorDoc | None:
        raw = coll.find_one({"_id": key})
        if raw is None:
            return None
        doc = MirrorDoc.from_bson(raw)
        return doc if doc.live(self.now()) else None

    def occ_update(
        self, coll: Any, key: str, change: Callable[[MirrorDoc | None], dict[str, Any] | None]
    ) -> None:
        """Read-modify-write one mirror document with an optimistic version check."""
        from pymongo.errors import DuplicateKeyError

        for _ in range(OCC_RETRIES):
            raw = coll.find_one({"_id": key})
            current = MirrorDoc.from_bson(raw) if raw is not None else None
            new = change(current if current is not None and current.live(self.now()) else None)
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

    # ------------------------------------------------------------------ serving and mirroring

    def serve(self, what: str, fn: Callable[[Any], T]) -> T:
        """Serve from MongoDB while KV is unreachable; both down is KVUnavailable."""
        from pymongo.errors import PyMongoError

        why = self.kv_breaker.reason or "KV not configured"
        if self.collection is None:
            raise KVUnavailable(f"{what}: KV unavailable ({why}) and no MongoDB mirror is configured")
        try:
            with self.deadline(self.fallback_timeout_s):
                return fn(self.collection)
        except PyMongoError as exc:
            outcome = "nothing was written" if what in _WRITES else "nothing could be read"
            raise KVUnavailable(
                f"{what}: KV unavailable ({why}) and MongoDB failed ({type(exc).__name__}); {outcome}"
            ) from None

    def write(self, key: str, version: int, fn: Callable[[Any], None]) -> None:
        """Mirror a successful KV write; a failure marks the key dirty instead of failing."""
        if self.collection is None:
            return
        from pymongo.errors import PyMongoError

        if not self.breaker.allow():
            self.mark_dirty(key, version)
            return
        try:
            with self.deadline(self.timeout_s):
                fn(self.collection)
        except PyMongoError as exc:
            if self.breaker.record_failure(type(exc).__name__):
                logger.warning(
                    "MongoDB mirror unavailable, marking keys dirty",
                    extra={"key": key, "error": type(exc).__name__},
                )
            self.mark_dirty(key, version)
            return
        if self.breaker.record_success():
            logger.info("MongoDB mirror available again")

    def write_doc(self, key: str, version: int, doc: dict[str, Any]) -> None:
        """Mirror a KV write that left `doc` as the key's value."""
        self.write(key, version, lambda c: c.replace_one({"_id": key}, doc, upsert=True))

    def write_expiry(self, key: str, version: int, expires: datetime) -> None:
        """Mirror a successful EXPIRE; a key the mirror never saw is marked dirty (repair copies it)."""

        def mirror(c: Any) -> None:
            updated = c.update_one(
                {"_id": key},
                {"$set": {"expires_at": expires, "version": version, "updated_at": self.now()}},
            )
            if updated.matched_count == 0:
                raise MirrorMissing(key)

        try:
            self.write(key, version, mirror)
        except MirrorMissing:
            self.mark_dirty(key, version)

    # ------------------------------------------------------------------ dirty keys and pending writes

    def mark_dirty(self, key: str, version: int) -> None:
        with self._dirty_lock:
            self._dirty[key] = max(version, self._dirty.get(key, 0))
        if self.primary is not None:
            # Still tracked in memory if this fails; the KV write itself succeeded.
            with suppress(UpstashError):
                self.primary.command("HSET", DIRTY_HASH, key, version)

    def clear_dirty(self, key: str) -> None:
        with self._dirty_lock:
            self._dirty.pop(key, None)
        if self.primary is not None:
            self.primary.command("HDEL", DIRTY_HASH, key)

    def local_dirty(self) -> dict[str, int]:
        """The dirty keys this process recorded (a copy)."""
        with self._dirty_lock:
            return dict(self._dirty)

    def dirty_keys(self) -> dict[str, int]:
        """Keys whose mirror write failed: in memory plus the KV hash (when KV answers)."""
        merged = self.local_dirty()
        if self.primary is not None and self.kv_breaker.state is BreakerState.CLOSED:
            try:
                for name, version in pairs(self.primary.command("HGETALL", DIRTY_HASH)).items():
                    merged[name] = max(int(version), merged.get(name, 0))
            except (UpstashError, ValueError, TypeError):
                pass
        return merged

    def has_pending(self) -> bool:
        if self.collection is None:
            return False
        from pymongo.errors import PyMongoError

        try:
            with self.deadline(self.timeout_s):
                self.collection.create_index("needs_resync")  # idempotent; keeps this check cheap
                return self.collection.find_one({"needs_resync": True}, {"_id": 1}) is not None
        except PyMongoError:
            return False

    def pending_count(self) -> int | None:
        """Documents in MongoDB waiting to be copied to KV (None when MongoDB is unreachable)."""
        if self.collection is None:
            return None
        from pymongo.errors import PyMongoError

        try:
            with self.deadline(self.timeout_s):
                return int(self.collection.count_documents({"needs_resync": True}))
        except PyMongoError:
            return None

    def probe(self) -> bool:
        if self.collection is None:
            return False
        from pymongo.errors import PyMongoError

        try:
            with self.deadline(self.timeout_s):
                self.collection.database.command("ping")
            return True
        except PyMongoError:
            return False
