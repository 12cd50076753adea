"""Listing the backup bucket: which sources and backups exist, grouped from one key listing each.

A backup is every key under `backups/<source>/<backup_id>/`; its status here is
`incomplete` (no `manifest.json` object at all) or `complete`. The store
(`BackupStore.list_backups`) then reads manifests, pin records and
`verification.json` documents for pinned flags, totals and the `verified`
status; a manifest that exists but cannot be read (cut JSON, an unknown
`format` from a newer lastgood, a mismatched id) makes the backup `unreadable`:
never restored, never counted as fresh, and never deleted by prune.
For a suspect backup the store also reads its `accepted.json` (`lastgood.backups.acceptance`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from lastgood.backups import keys
from lastgood.backups.acceptance import AcceptanceRecord
from lastgood.backups.manifest import BackupManifest, backup_id_time
from lastgood.backups.verification import VerificationRecord
from lastgood.core.timefmt import iso_z

BackupStatus = Literal["complete", "incomplete", "unreadable", "verified"]
COMMITTED: frozenset[str] = frozenset({"complete", "verified"})


@dataclass
class BackupListing:
    """One backup as `lastgood list` / prune / health see it."""

    source: str
    backup_id: str
    created_at: datetime
    status: BackupStatus
    size: int  # bytes of the backup's data objects (what `list` shows; records beside them excluded)
    objects: int  # data objects stored (manifest/verification excluded)
    pinned: bool = False
    pin_reason: str | None = None
    manifest: BackupManifest | None = None
    verification: VerificationRecord | None = None
    acceptance: AcceptanceRecord | None = None  # read only for a suspect backup
    keys: list[str] = field(default_factory=list)  # every S3 key under the prefix
    last_modified: datetime | None = None
    unreadable_reason: str | None = None  # why the manifest could not be read (status unreadable)

    @property
    def committed(self) -> bool:
        """A readable committed backup (complete or verified): usable for restore and freshness."""
        return self.status in COMMITTED

    @property
    def suspect(self) -> bool:
        """Marked suspect by its backup run and not accepted by a person: satisfies no rule."""
        return bool(self.manifest and self.manifest.suspect and self.acceptance is None)

    @property
    def accepted(self) -> bool:
        return bool(self.manifest and self.manifest.suspect and self.acceptance is not None)

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "backup_id": self.backup_id,
            "time": iso_z(self.created_at),
            "status": self.status,
            "size": self.size,
            "objects": self.objects,
            "pinned": self.pinned,
            "pin_reason": self.pin_reason,
            "suspect": self.suspect,
            "suspect_reason": self.manifest.suspect_reason if self.manifest else None,
            "accepted": self.accepted,
            "count": self.manifest.totals.count if self.manifest else None,
            "duration_s": self.manifest.duration_s if self.manifest else None,
            "unreadable_reason": self.unreadable_reason,
        }


def list_sources(s3: Any, bucket: str) -> list[str]:
    """Source names that have anything under `backups/`."""
    names: list[str] = []
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=keys.BACKUPS_PREFIX, Delimiter="/"):
        for common in page.get("CommonPrefixes", []):
            names.append(keys.source_from_prefix(common["Prefix"]))
    return sorted(names)


def list_source(s3: Any, bucket: str, source: str) -> list[BackupListing]:
    """Every backup of `source` (unordered), status `complete` or `incomplete`, no documents read."""
    grouped: dict[str, BackupListing] = {}
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=keys.source_prefix(source)):
        for obj in page.get("Contents", []):
            parsed = keys.parse_key(obj["Key"])
            if parsed is None:
                continue
            backup_id, name = parsed.backup_id, parsed.relpath
            item = grouped.get(backup_id)
            if item is None:
                item = BackupListing(source, backup_id, backup_id_time(backup_id), "incomplete", 0, 0)
                grouped[backup_id] = item
            item.keys.append(obj["Key"])
            modified = obj.get("LastModified")
            if modified is not None and (item.last_modified is None or modified > item.last_modified):
                item.last_modified = modified
            if name == keys.MANIFEST_NAME:
                item.status = "complete"
            elif name not in (keys.VERIFICATION_NAME, keys.ACCEPTANCE_NAME) and not (
                keys.is_pin_key(name) or keys.is_shard_key(name)
            ):
                item.objects += 1
                item.size += int(obj.get("Size", 0))
    return list(grouped.values())


def newest_first(listings: list[BackupListing]) -> list[BackupListing]:
    return sorted(listings, key=lambda item: (item.created_at, item.backup_id), reverse=True)
