"""The MongoDB side of the resilient KV: the mirror operations on `kv_mirror` (model: `kv.document`).

`MirrorStore` is the collaborator `ResilientKV` delegates to for everything
that touches MongoDB: building and reading mirror documents, mirroring a
successful KV write (a failure marks the key dirty instead of failing the
call), serving calls while KV is unreachable (`serve`), optimistic
read-modify-write updates, the dirty-key set and the pending-resync queries.

Every query names its key through `key_filter`: an exact `str` match, never a
caller's object (a `{"$regex": ...}` key is a TypeError, not a query operator).
Versions in the mirror only go up (`put_doc`): a write never replaces a newer
version of its key, so "applied" can mean "this version" (`needs_resync` is
cleared with a version check).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, TypeVar

from lastgood.core.errors import KVUnavailable
from lastgood.core.observability import logger
from lastgood.kv.breaker import BreakerState, CircuitBreaker
from lastgood.kv.codec import Primary, Reply, UpstashError, pairs
from lastgood.kv.document import MirrorDoc, key_filter

__all__ = ["DIRTY_HASH", "MIRROR_COLLECTION", "MirrorDoc", "MirrorMissing", "MirrorStore", "key_filter"]

T = TypeVar("T")

MIRROR_COLLECTION = "kv_mirror"
# KV hash of keys whose mirror write failed: field = key, value = version of the KV write.
DIRTY_HASH = "lastgood:kv_dirty"
OCC_RETRIES = 8
_WRITES = frozenset({"set", "delete", "hset", "incr", "expire"})


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
        # Keys this process wrote to MongoDB during an outage, not yet applied to KV (key -> version).
        self._unapplied: dict[str, int] = {}
        # Closing the KV breaker (under `gate`) vs. a fallback write checking it after landing.
        self.gate = threading.Lock()
        # One copy-back (resync or single-key push) at a time: an older copy never lands after a newer.
        self.sync_lock = threading.RLock()

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
        raw = coll.find_one(key_filter(key))
        if raw is None:
            return None
        doc = MirrorDoc.from_bson(raw)
        return doc if doc.live(self.now()) else None

    def read_current(self, coll: Any, what: str, key: str) -> MirrorDoc | None:
        """Like `read_doc` for serving a call, but refuses a copy older than a write KV acknowledged."""
        raw = coll.find_one(key_filter(key))
        self.refuse_stale(what, key, None if raw is None else int(raw.get("version") or 0))
        if raw is None:
            return None
        doc = MirrorDoc.from_bson(raw)
        return doc if doc.live(self.now()) else None

    def refuse_stale(self, what: str, key: str, version: int | None) -> None:
        """KVUnavailable when this process knows KV holds a newer write of `key` than the mirror."""
        if self.local_dirty().get(key, 0) > (version or 0):
            raise KVUnavailable(
                f"{what}: KV unavailable ({self.kv_breaker.reason or 'KV not configured'}) and MongoDB's copy "
                f"of {key!r} is older than a write KV acknowledged (its mirror write failed); "
                "not serving a stale value"
            )

    def put_doc(self, coll: Any, doc: dict[str, Any]) -> bool:
        """Store `doc` unless the mirror holds a newer version of its key; False when it did."""
        from pymongo.errors import DuplicateKeyError

        key, version = doc["_id"], int(doc["version"])
        for _ in range(OCC_RETRIES):
            if coll.replace_one({**key_filter(key), "version": {"$lte": version}}, doc).matched_count:
                return True
            try:
                coll.insert_one(doc)
                return True
            except DuplicateKeyError:
                if coll.find_one({**key_filter(key), "version": {"$gt": version}}, {"_id": 1}) is not None:
                    return False  # a newer write of this key is already there: it wins
        raise KVUnavailable(f"could not write {key!r} to MongoDB: too many concurrent writers")

    def occ_update(
        self,
        coll: Any,
        key: str,
        change: Callable[[MirrorDoc | None], dict[str, Any] | None],
        *,
        what: str = "update",
    ) -> None:
        """Read-modify-write one mirror document with an optimistic version check."""
        from pymongo.errors import DuplicateKeyError

        for _ in range(OCC_RETRIES):
            raw = coll.find_one(key_filter(key))
            self.refuse_stale(what, key, None if raw is None else int(raw.get("version") or 0))
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
            if coll.replace_one({**key_filter(key), "version": raw.get("version")}, new).matched_count == 1:
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

    def write(self, key: str, version: int, fn: Callable[[Any], object]) -> None:
        """Mirror a successful KV write; a failure marks the key dirty instead of failing."""
        self.applied(key, version)  # KV holds this write: nothing older of this key is owed to KV
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
        """Mirror a KV write that left `doc` as the key's value (a newer mirror version is kept)."""
        self.write(key, version, lambda c: self.put_doc(c, doc))

    def write_expiry(self, key: str, version: int, expires: datetime) -> None:
        """Mirror a successful EXPIRE; a key the mirror never saw is marked dirty (repair copies it)."""

        def mirror(c: Any) -> None:
            updated = c.update_one(
                {**key_filter(key), "version": {"$lte": version}},
                {"$set": {"expires_at": expires, "version": version, "updated_at": self.now()}},
            )
            if updated.matched_count == 0:
                raise MirrorMissing(key)

        try:
            self.write(key, version, mirror)
        except MirrorMissing:
            self.mark_dirty(key, version)

    # ------------------------------------------------------------------ dirty keys and pending writes

    def unapplied(self, key: str, version: int) -> None:
        """This process wrote `key` (at `version`) to MongoDB while KV was unreachable."""
        with self._dirty_lock:
            self._unapplied[key] = max(version, self._unapplied.get(key, 0))

    def applied(self, key: str, version: int) -> None:
        """KV now holds `key` at `version` or newer."""
        with self._dirty_lock:
            if self._unapplied.get(key, 0) <= version:
                self._unapplied.pop(key, None)

    def owes_kv(self) -> bool:
        """Did this process leave MongoDB writes that KV has not been given yet?"""
        with self._dirty_lock:
            return bool(self._unapplied)

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
