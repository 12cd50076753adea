"""MongoDB mode: the calls `ResilientKV` serves from the mirror while KV is unreachable.

Every write here is stored with `needs_resync: true` so the next resync copies
it to KV; deletes leave a tombstone; a write never replaces a newer version of
its key. Read-modify-write operations (hset, incr, expire) use the store's
optimistic version check. A key whose newer value only KV holds (its mirror
write failed) is refused rather than served stale. Both stores down raises
`KVUnavailable` (from `MirrorStore.serve`). The caller (`ResilientKV`) reports
each landed write to its router, which pushes it to KV itself should the
breaker have closed meanwhile.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from lastgood.kv.codec import UpstashCommandError, dumps
from lastgood.kv.mirror import MirrorDoc, MirrorStore


def read(store: MirrorStore, what: str, key: str) -> MirrorDoc | None:
    """The live mirror document for `key` (None when missing, deleted or expired)."""
    return store.serve(what, lambda c: store.read_current(c, what, key))


def set_value(store: MirrorStore, key: str, text: str, expires: datetime | None, version: int) -> None:
    doc = store.doc(key, "string", text, expires, version, needs_resync=True)
    store.serve("set", lambda c: store.put_doc(c, doc))


def delete(store: MirrorStore, key: str, version: int) -> bool:
    """Leave a tombstone; True when a live key was there."""

    def tombstone(c: Any) -> bool:
        existed = store.read_doc(c, key) is not None
        store.put_doc(c, store.doc(key, None, None, None, version, needs_resync=True, deleted=True))
        return existed

    return store.serve("delete", tombstone)


def hset(store: MirrorStore, key: str, values: Mapping[str, Any], version: int) -> int:
    """Merge `values` into the hash; returns the number of new fields."""
    result = {"added": 0}

    def change(current: MirrorDoc | None) -> dict[str, Any]:
        if current is not None and current.type != "hash":
            raise UpstashCommandError("WRONGTYPE Operation against a key holding the wrong kind of value")
        merged = dict(current.logical() or {}) if current is not None else {}
        result["added"] = sum(1 for name in values if name not in merged)
        merged.update({name: json.loads(dumps(v)) for name, v in values.items()})
        expires = current.expires_at if current is not None else None
        return store.doc(key, "hash", dumps(merged), expires, version, needs_resync=True)

    store.serve("hset", lambda c: store.occ_update(c, key, change, what="hset"))
    return result["added"]


def incr(store: MirrorStore, key: str, amount: int, version: int) -> int:
    """Add `amount` to the counter (a missing key counts from 0); returns the new value."""
    result = {"value": 0}

    def change(current: MirrorDoc | None) -> dict[str, Any]:
        old = current.logical() if current is not None else 0
        if current is not None and (current.type != "string" or not isinstance(old, int)):
            raise UpstashCommandError("ERR value is not an integer or out of range")
        result["value"] = int(old) + int(amount)
        expires = current.expires_at if current is not None else None
        return store.doc(key, "string", dumps(result["value"]), expires, version, needs_resync=True)

    store.serve("incr", lambda c: store.occ_update(c, key, change, what="incr"))
    return result["value"]


def expire(store: MirrorStore, key: str, expires: datetime, version: int) -> bool:
    """Set the key's expiry; False when the key does not exist."""
    found = {"ok": False}

    def change(current: MirrorDoc | None) -> dict[str, Any] | None:
        found["ok"] = current is not None
        if current is None:
            return None
        return store.doc(key, current.type, current.value, expires, version, needs_resync=True)

    store.serve("expire", lambda c: store.occ_update(c, key, change, what="expire"))
    return found["ok"]
