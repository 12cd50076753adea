"""The `kv_mirror` document (one per key) and the only way a key is put into a MongoDB query.

`MirrorDoc` is the one model for the stored document: `MirrorStore` writes it,
the fallback and the resync read it. `key_filter` is an exact `str` match; a
caller's object (a `{"$regex": ...}` key) is refused before MongoDB sees it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal


def key_filter(key: object) -> dict[str, str]:
    """The query for one key: an exact string match (anything else is refused before MongoDB sees it)."""
    if not isinstance(key, str):
        raise TypeError(f"kv_mirror keys are exact strings, not {type(key).__name__}: not sent to MongoDB")
    return {"_id": key}


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
