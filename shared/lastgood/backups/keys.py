"""The backup bucket's key layout: the one module that spells a key of `BACKUP_BUCKET`.

::

    backups/<source>/<backup_id>/<relpath>           data objects (streamed, SSE-KMS)
    backups/<source>/<backup_id>/manifest.json       written LAST: the commit marker
    backups/<source>/<backup_id>/verification.json   written by the restore drill (verify)
    backups/<source>/<backup_id>/accepted.json       a person accepted a suspect backup (create-once)
    backups/<source>/<backup_id>/pins/<stamp>.<pin|unpin>.json
                                                     pin records (`lastgood.backups.pinrecord`):
                                                     append-only, the newest one is the pin state
    backups/<source>/<backup_id>/shards/<i>-of-<n>.json
                                                     a Fargate shard's record (`lastgood.backups.shard`),
                                                     create-once, before the shards' manifest exists
    locks/<source>/<slot>.lock                       one per schedule slot (conditional write)
    locks/prune-<source>.lock                        one prune of a source at a time
    audit/<kind>/<YYYY>/<MM>/<DD>/<ts>-<id>.json     the audit trail (`lastgood.storage.audit`)
    status/index.html                                the status page (`lastgood.monitoring.status_page`),
                                                     replaced by every summary run; not a backup

Everything else builds keys with these functions and reads them back with
`parse_key`. The audit trail's layout is the audit module's own (it is shared
with the KV client and lives below `lastgood.storage`); it is re-exported here
so this module shows the whole bucket.

This module imports nothing of `lastgood.backups` at import time (the manifest
module takes its reserved names from here); the id, slot and relpath rules it
applies are the manifest module's, looked up when a key is built or parsed.
"""

from __future__ import annotations

import re
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
    "PINS_DIR",
    "RESERVED_NAMES",
    "SHARDS_DIR",
    "STATUS_PAGE_KEY",
    "VERIFICATION_NAME",
    "BackupKey",
    "acceptance_key",
    "audit_key",
    "backup_prefix",
    "is_acceptance_key",
    "is_lastgood_document",
    "is_manifest_key",
    "is_pin_key",
    "is_shard_key",
    "is_verification_key",
    "lock_key",
    "manifest_key",
    "object_key",
    "parse_key",
    "pin_key",
    "pin_state_from_key",
    "prune_lock_key",
    "shard_record_key",
    "source_from_prefix",
    "source_prefix",
    "status_page_key",
    "verification_key",
]

BACKUPS_PREFIX = "backups/"
LOCKS_PREFIX = "locks/"
MANIFEST_NAME = "manifest.json"
VERIFICATION_NAME = "verification.json"
ACCEPTANCE_NAME = "accepted.json"
# Names that live next to the data objects in a backup prefix and are not data (defined
# where engines validate the paths they write, which may not import backups).
assert {MANIFEST_NAME, VERIFICATION_NAME, ACCEPTANCE_NAME} == RESERVED_NAMES
# Pin records: `pins/<YYYYMMDDTHHMMSS.ffffffZ>-<6 hex>.<pin|unpin>.json` below the backup prefix.
# No engine writes such a name (the writer refuses it too), so they never pass for data.
PINS_DIR = "pins/"
_PIN_RE = re.compile(r"^pins/\d{8}T\d{6}\.\d{6}Z-[0-9a-f]{6}\.(?P<state>pin|unpin)\.json$")
# Shard records: `shards/<i>-of-<n>.json` below the backup prefix (no MongoDB object name ends so).
SHARDS_DIR = "shards/"
_SHARD_RE = re.compile(r"^shards/\d{1,4}-of-\d{1,4}\.json$")


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


def pin_key(source: str, backup_id: str, at: datetime, rand: str, *, pinned: bool) -> str:
    """A new pin record's key; keys of one backup sort by time (the newest is the state)."""
    stamp = at.strftime("%Y%m%dT%H%M%S.%fZ")
    return f"{backup_prefix(source, backup_id)}{PINS_DIR}{stamp}-{rand}.{'pin' if pinned else 'unpin'}.json"


def shard_record_key(source: str, backup_id: str, shard: int, of: int) -> str:
    """Shard `shard` of `of`'s record of one sharded backup (`lastgood.backups.shard`)."""
    return f"{backup_prefix(source, backup_id)}{SHARDS_DIR}{shard}-of-{of}.json"


def is_shard_key(key: str) -> bool:
    """A shard record (`backups/<source>/<id>/shards/<i>-of-<n>.json`, or its relpath)."""
    parsed = parse_key(key)
    return _SHARD_RE.match(parsed.relpath if parsed else key) is not None


def prune_lock_key(source: str) -> str:
    return f"{LOCKS_PREFIX}prune-{source}.lock"


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


def is_pin_key(key: str) -> bool:
    """A pin record: `backups/<source>/<id>/pins/<stamp>.<pin|unpin>.json` (or its relpath)."""
    parsed = parse_key(key)
    return _PIN_RE.match(parsed.relpath if parsed else key) is not None


def pin_state_from_key(key: str) -> bool:
    """Whether a pin record's key says pinned (`.pin.json`) or unpinned (`.unpin.json`)."""
    parsed = parse_key(key)
    match = _PIN_RE.match(parsed.relpath if parsed else key)
    if match is None:
        raise ValueError(f"not a pin record key: {key!r}")
    return match["state"] == "pin"


def is_lastgood_document(relpath: str) -> bool:
    """A name lastgood itself writes next to the data (manifest, verification, pin and shard records).

    Data objects may not use such a name, nor end in `/manifest.json` or `/verification.json`
    (the bucket policy and the health/summary roles match those names under any prefix)."""
    base = relpath.rsplit("/", 1)[-1]
    return (
        relpath in RESERVED_NAMES
        or base in RESERVED_NAMES
        or _PIN_RE.match(relpath) is not None
        or _SHARD_RE.match(relpath) is not None
    )


# The status page (`lastgood.monitoring.status_page`), rewritten by every summary run. Not a
# backup: outside `backups/`, so no retention, prune or immutability rule concerns it; the bucket
# policy exempts exactly this key from the conditional-create rule (it is replaced daily).
STATUS_PAGE_KEY = "status/index.html"


def status_page_key() -> str:
    return STATUS_PAGE_KEY
