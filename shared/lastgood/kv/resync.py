"""Resync: copy MongoDB writes made during a KV outage back to KV, then repair dirty mirror documents.

Documents with `needs_resync` are copied to KV in version order (remaining TTL
kept; expired or deleted keys are removed from KV), logging
`Synced <key> from MongoDB to KV`; then dirty keys are copied from KV to
MongoDB. "Newer version wins": a dirty key whose KV version is newer than the
pending document is not overwritten by it. `ResilientKV.resync` runs this and
then moves its breaker.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lastgood.core.observability import logger
from lastgood.kv.codec import Arg, UpstashCommandError, UpstashError, dumps, loads, pairs
from lastgood.kv.mirror import DIRTY_HASH, MirrorDoc, MirrorStore

RESYNC_BATCH = 100  # documents per Upstash pipeline during resync


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


def copy_back(
    store: MirrorStore, *, budget_s: float | None, on_outage: Callable[[UpstashError], None]
) -> ResyncReport:
    """Run one resync against `store` (its primary and collection); stops early when `budget_s` runs out.

    `on_outage` is called with the error when Upstash fails like an outage
    (not for a bad command), so the caller can open its breaker.
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
    try:
        primary.command("PING")
        dirty = store.local_dirty()
        for name, version in pairs(primary.command("HGETALL", DIRTY_HASH)).items():
            dirty[name] = max(int(version), dirty.get(name, 0))
        with store.deadline(max(store.fallback_timeout_s, budget_s or 30.0)):
            pending = [
                MirrorDoc.from_bson(raw) for raw in mirror.find({"needs_resync": True}).sort("version", 1)
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
            _push_batch(store, todo[start : start + RESYNC_BATCH], dirty, report)
        for key, version in sorted(dirty.items()):
            if out_of_time():
                report.complete = False
                break
            _repair_from_kv(store, key, version)
            report.repaired.append(key)
            logger.info(f"Repaired {key} in MongoDB from KV", extra={"key": key})
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
    store.primary.pipeline(commands)
    with store.deadline(store.fallback_timeout_s):
        store.collection.bulk_write(marks, ordered=False)
    for doc in docs:
        live = doc.live(now)
        (report.synced if live else report.removed).append(doc.key)
        logger.info(
            f"Synced {doc.key} from MongoDB to KV",
            extra={"key": doc.key, "version": doc.version, "action": "set" if live else "deleted"},
        )
        if doc.key in dirty:
            store.clear_dirty(doc.key)
            dirty.pop(doc.key)


def _repair_from_kv(store: MirrorStore, key: str, version: int) -> None:
    primary, mirror = store.primary, store.collection
    assert primary is not None and mirror is not None
    kind_reply = primary.command("TYPE", key)
    kind = kind_reply.decode() if isinstance(kind_reply, bytes) else str(kind_reply)
    with store.deadline(store.fallback_timeout_s):
        if kind == "none":
            mirror.delete_one({"_id": key, "needs_resync": {"$ne": True}})
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
            mirror.replace_one({"_id": key}, doc, upsert=True)
    store.clear_dirty(key)
