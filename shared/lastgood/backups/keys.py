"""The backup bucket's key layout: the one module that spells a key of `BACKUP_BUCKET`.

::

    backups/<source>/<backup_id>/<relpath>           data objects (streamed, SSE-KMS)
    backups/<source>/<backup_id>/manifest.json       written LAST: the commit marker
    backups/<source>/<backup_id>/verification.json   written by the restore drill (verify)
    backups/<source>/<backup_id>/accepted.json       a person accepted a suspect backup (create-once)
    locks/<source>/<slot>.lock                       one per schedule slot (conditional write)
    audit/<kind>/<YYYY>/<MM>/<DD>/<ts>-<id>.json     the audit trail (`lastgood.storage.audit`)

Everything else builds keys with these functions and reads them back with
`parse_key`. The audit trail's layout is the audit module's own (it is shared
with the KV client and lives below `lastgood.storage`); it is re-exported here
so this module shows the whole bucket.

This module imports nothing of `lastgood.backups` at import time (the manifest
module takes its reserved names from here); the id, slot and relpath rules it
applies are the manifest module's, looked up when a key is built or parsed.
"""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from lastgood.engines.base import RESERVED_NAMES
from lastgood.storage.audit import AUDIT_PREFIX
from lastgood.storage.audit import record_key as audit_key

__all__ = [
    "ACCEPTANCE_NAME",
    "AUDIT_PREFIX",
    "BACKUPS_PREFIX",
    "LOCKS_PREFIX",
    "MANIFEST_NAME",
    "RESERVED_NAMES",
    "VERIFICATION_NAME",
    "BackupKey",
    "acceptance_key",
    "audit_key",
    "backup_prefix",
    "is_acceptance_key",
    "is_manifest_key",
    "is_verification_key",
    "lock_key",
    "manifest_key",
    "object_key",
    "parse_key",
    "source_from_prefix",
    "source_prefix",
    "verification_key",
]

BACKUPS_PREFIX = "backups/"
LOCKS_PREFIX = "locks/"
MANIFEST_NAME = "manifest.json"
VERIFICATION_NAME = "verification.json"
ACCEPTANCE_NAME = "accepted.json"  # not an engine-reserved name: object_key refuses it below
# Names that live next to the data objects in a backup prefix and are not data (defined
# where engines validate the paths they write, which may not import backups).
assert {MANIFEST_NAME, VERIFICATION_NAME} == RESERVED_NAMES


class BackupKey(NamedTuple):
    """A key under `backups/` read back: `relpath` is the name below the backup prefix."""

    source: str
    backup_id: str
    relpath: str


def source_prefix(source: str) -> str:
    return f"{BACKUPS_PREFIX}{source}/"


def backup_prefix(source: str, backup_id: str) -> str:
    return f"{source_prefix(source)}{backup_id}/"


def object_key(source: str, backup_id: str, relpath: str) -> str:
    from lastgood.backups.manifest import validate_relpath

    if relpath == ACCEPTANCE_NAME:
        raise ValueError(f"invalid backup object path {relpath!r} (reserved for the acceptance record)")
    return backup_prefix(source, backup_id) + validate_relpath(relpath)


def manifest_key(source: str, backup_id: str) -> str:
    return backup_prefix(source, backup_id) + MANIFEST_NAME


def verification_key(source: str, backup_id: str) -> str:
    return backup_prefix(source, backup_id) + VERIFICATION_NAME


def acceptance_key(source: str, backup_id: str) -> str:
    return backup_prefix(source, backup_id) + ACCEPTANCE_NAME


def lock_key(source: str, slot: datetime) -> str:
    from lastgood.backups.manifest import slot_label

    return f"{LOCKS_PREFIX}{source}/{slot_label(slot)}.lock"


def parse_key(key: str) -> BackupKey | None:
    """`backups/<source>/<backup_id>/<relpath>` → its parts; None for any other key."""
    from lastgood.backups.manifest import is_backup_id

    parts = key.split("/", 3)
    if len(parts) < 4 or parts[0] + "/" != BACKUPS_PREFIX or not is_backup_id(parts[2]):
        return None
    return BackupKey(parts[1], parts[2], parts[3])


def source_from_prefix(prefix: str) -> str:
    """The source of a `backups/<source>/` common prefix (a delimiter listing of `backups/`)."""
    return prefix.split("/")[1]


def is_manifest_key(key: str) -> bool:
    return key.endswith("/" + MANIFEST_NAME)


def is_verification_key(key: str) -> bool:
    return key.endswith("/" + VERIFICATION_NAME)


def is_acceptance_key(key: str) -> bool:
    return key.endswith("/" + ACCEPTANCE_NAME)
