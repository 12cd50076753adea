"""Resync: copy MongoDB writes made during a KV outage back to KV, repair dirty mirror documents, and
close the breaker only once nothing acknowledged from MongoDB is missing from KV.

One copy-back at a time per process (`MirrorStore.sync_lock`), so an older copy never lands in KV
after a newer one. In order:

1. Passes: documents with `needs_resync` are copied to KV in version order (remaining TTL kept;
   expired or deleted keys are removed from KV), logging `Synced <key> from MongoDB to KV`. A
   document's flag is cleared only while its version is still the one copied ("applied" means
   "this version"), so a write landing during the copy stays pending for the next pass; up to
   `MAX_PASSES` while writes keep landing.
2. Dirty keys (their mirror write failed) are copied from KV to MongoDB. "Newer version wins": a
   pending document older than the dirty KV write is not copied over it, and the repair never
   replaces a newer document.
3. Under `MirrorStore.gate`: a last pass over everything still pending, then `close` (the caller
   closes its breaker). A write served from MongoDB checks the breaker under the same gate after
   it landed: either this last pass saw its document, or it sees the breaker closed and copies
   its key itself (`push_key`) before it is acknowledged. Either way no read that goes to KV
   after the breaker closed misses a write acknowledged before it.

`ResilientKV.resync` (through `lastgood.kv.routing.Router`) runs this.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lastgood.core.observability import logger
from lastgood.kv.codec import Arg, UpstashCommandError, UpstashError, dumps, loads, pairs
from lastgood.kv.mirror import DIRTY_HASH, MirrorDoc, MirrorStore, key_filter

RESYNC_BATCH = 100  # documents per Upstash pipeline during resync
MAX_PASSES = 3  # passes while writes keep landing, before the last one under the gate


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


def _note(names: list[str], key: str) -> None:
    if key not in names:
        names.append(key)


def copy_back(
    store: MirrorStore,
    *,
    budget_s: float | None,
    on_outage: Callable[[UpstashError], None],
    close: Callable[[ResyncReport], None] | None = None,
) -> ResyncReport:
    """Run one resync against `store` (its primary and collection); stops early when `budget_s` runs out.

    `on_outage` is called with the error when Upstash fails like an outage
    (not for a bad command), so the caller can open its breaker. `close` is
    called under the gate once everything pending is in KV (not when the
    resync is incomplete or failed).
    """
    from pymongo.errors import PyMongoError

    started = time.monotonic()
    report = ResyncReport()

    def out_of_time() -> bool:
        return budget_s is not None and time.monotonic() - started > budget_s

    primary, mirror = store.primary, store.collection
    if primary is None or mirror is None:
        report.ok = False
        report.complete = False
        report.error = "KV primary or MongoDB mirror not configured"
        return report
    find_s = max(store.fallback_timeout_s, budget_s or 30.0)
    with store.sync_lock:
        try:
            primary.command("PING")
            dirty = store.local_dirty()
            for name, version in pairs(primary.command("HGETALL", DIRTY_HASH)).items():
                dirty[name] = max(int(version), dirty.get(name, 0))
            for _ in range(MAX_PASSES):
                if not _pass(store, dirty, report, out_of_time, find_s):
                    break
            for key, version in sorted(dirty.items()) if report.complete else []:
                if out_of_time():
                    report.complete = False
                    break
                _repair_from_kv(store, key, version)
                _note(report.repaired, key)
                logger.info(f"Repaired {key} in MongoDB from KV", extra={"key": key})
            if report.complete:
                with store.gate:
                    _pass(store, dirty, report, None, find_s)  # no budget: everything still pending
                    report.duration_s = time.monotonic() - started
                    if close is not None:
                        close(report)
        except UpstashCommandError as exc:
            report.ok = False
            report.complete = False
            report.error = f"{type(exc).__name__}: {exc}"[:300]
        except UpstashError as exc:
            on_outage(exc)
            report.ok = False
            report.complete = False
            report.error = f"KV: {type(exc).__name__}: {exc}"[:300]
        except PyMongoError as exc:
            report.ok = False
            report.complete = False
            report.error = f"MongoDB: {type(exc).__name__}"
    report.duration_s = time.monotonic() - started
    return report


def push_key(store: MirrorStore, key: str) -> None:
    """Copy one key's pending MongoDB write to KV now (Upstash and MongoDB errors are the caller's)."""
    assert store.collection is not None
    with store.sync_lock:
        with store.deadline(store.fallback_timeout_s):
            raw = store.collection.find_one(key_filter(key))
        if raw is None:
            return
        doc = MirrorDoc.from_bson(raw)
        if doc.needs_resync and store.local_dirty().get(key, 0) <= doc.version:
            _push_batch(store, [doc], {}, ResyncReport())


def _pass(
    store: MirrorStore,
    dirty: dict[str, int],
    report: ResyncReport,
    out_of_time: Callable[[], bool] | None,
    find_s: float,
) -> int:
    """Copy every pending document to KV; how many were copied (0: none pending, or out of time)."""
    assert store.collection is not None
    with store.deadline(find_s):
        pending = [
            MirrorDoc.from_bson(raw)
            for raw in store.collection.find({"needs_resync": True}).sort("version", 1)
        ]
    todo: list[MirrorDoc] = []
    for doc in pending:
        if dirty.get(doc.key, 0) > doc.version:
            _note(report.skipped, doc.key)  # KV holds a newer write; the repair keeps it
        else:
            todo.append(doc)
    for start in range(0, len(todo), RESYNC_BATCH):
        if out_of_time is not None and out_of_time():
            report.complete = False
            return 0
        _push_batch(store, todo[start : start + RESYNC_BATCH], dirty, report)
    return len(todo)


def _push_batch(
    store: MirrorStore, docs: list[MirrorDoc], dirty: dict[str, int], report: ResyncReport
) -> None:
    """Copy pending documents to KV in one pipeline, then clear their flags (version-checked)."""
    from pymongo import DeleteOne, UpdateOne

    assert store.primary is not None and store.collection is not None
    now = store.now()
    commands: list[list[Arg]] = []
    marks: list[Any] = []
    for doc in docs:
        applied_here = {**key_filter(doc.key), "version": doc.version}
        if not doc.live(now):
            commands.append(["DEL", doc.key])
            marks.append(DeleteOne(applied_here))
            continue
        remaining_ms = (
            None if doc.expires_at is None else max(1, int((doc.expires_at - now).total_seconds() * 1000))
        )
        if doc.type == "hash":
            commands.append(["DEL", doc.key])
            fields = doc.logical() or {}
            if fields:
                flat: list[Arg] = ["HSET", doc.key]
                for name, value in fields.items():
                    flat += [name, dumps(value)]
                commands.append(flat)
            if remaining_ms is not None:
                commands.append(["PEXPIRE", doc.key, remaining_ms])
        else:  # one SET replaces the value, its type and its TTL at once: no moment without the key
            ttl: list[Arg] = [] if remaining_ms is None else ["PX", remaining_ms]
            commands.append(["SET", doc.key, doc.value or "null", *ttl])
        marks.append(UpdateOne(applied_here, {"$set": {"needs_resync": False, "dirty": False}}))
    store.primary.pipeline(commands)
    with store.deadline(store.fallback_timeout_s):
        store.collection.bulk_write(marks, ordered=False)
    for doc in docs:
        live = doc.live(now)
        store.applied(doc.key, doc.version)
        _note(report.synced if live else report.removed, doc.key)
        logger.info(
            f"Synced {doc.key} from MongoDB to KV",
            extra={"key": doc.key, "version": doc.version, "action": "set" if live else "deleted"},
        )
        if doc.key in dirty:
            store.clear_dirty(doc.key)
            dirty.pop(doc.key)


def _repair_from_kv(store: MirrorStore, key: str, version: int) -> None:
    """Copy a dirty key from KV to MongoDB, as `version`; a newer mirror document is kept."""
    primary, mirror = store.primary, store.collection
    assert primary is not None and mirror is not None
    kind_reply = primary.command("TYPE", key)
    kind = kind_reply.decode() if isinstance(kind_reply, bytes) else str(kind_reply)
    with store.deadline(store.fallback_timeout_s):
        if kind == "none":
            mirror.delete_one({**key_filter(key), "version": {"$lte": version}})
        else:
            if kind == "hash":
                full, pttl = primary.pipeline([["HGETALL", key], ["PTTL", key]])
                doc = store.doc(
                    key, "hash", dumps(pairs(full)), store.expiry(pttl), version, needs_resync=False
                )
            else:
                raw, pttl = primary.pipeline([["GET", key], ["PTTL", key]])
                doc = store.doc(
                    key, "string", dumps(loads(raw)), store.expiry(pttl), version, needs_resync=False
                )
            store.put_doc(mirror, doc)
    store.clear_dirty(key)
