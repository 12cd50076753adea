"""Pin and unpin backups: a pinned backup is kept by every retention policy.

A pin lives apart from the manifest, so it survives a manifest that is cut,
from a newer lastgood, or deleted:

1. a pin record (`lastgood.backups.pinrecord`): `lastgood pin` / `backup --pin`
   / migrate's safety backup create `pins/<stamp>.pin.json`, `lastgood unpin`
   creates `pins/<stamp>.unpin.json`; the newest record is the state. Records
   are conditional creates, never rewritten or deleted by pin/unpin: the bucket
   policy lets only the prune role delete under `backups/` and requires
   `If-None-Match` for every other write there (so unpin is a record too,
   not a delete);
2. where the bucket has S3 Object Lock enabled, a legal hold on every object of
   the backup (released by unpin), so not even a delete outside lastgood
   removes it. Prune skips a backup with a legal hold.

The manifest is never rewritten by a pin: its object list, sizes and checksums
are what was committed. Its own `pinned` flag (set at commit by `backup --pin`)
is only the fallback when a backup has no pin record.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from lastgood.backups.catalog import BackupListing
from lastgood.backups.manifest import is_backup_id
from lastgood.backups.pinrecord import PinResult, legal_hold, protect, write_pin_record
from lastgood.backups.store import BackupStore
from lastgood.core.errors import BackupIntegrityError, BackupNotFound, ConfigError, LastgoodError
from lastgood.storage.s3 import error_code


def _find(store: BackupStore, backup_id: str) -> BackupListing:
    if not is_backup_id(backup_id):
        raise BackupNotFound(f"unknown backup id {backup_id!r} (expected YYYYMMDDTHHMMSSZ-xxxxxx)")
    for name in store.list_sources():
        for item in store.list_backups(name, with_details=False):
            if item.backup_id == backup_id:
                if item.status == "incomplete":
                    raise BackupIntegrityError(
                        f"backup {name}/{backup_id} is incomplete (no manifest.json): there is nothing to pin"
                    )
                return item
    raise BackupNotFound(f"unknown backup id {backup_id!r}: no source has it (see `lastgood list`)")


def set_pinned(
    backup_id: str, pinned: bool, *, reason: str | None = None, store: BackupStore | None = None
) -> PinResult:
    if pinned and not reason:
        raise ConfigError("pinning needs --reason (what this backup protects)")
    store = store or BackupStore.from_settings()
    found = _find(store, backup_id)  # unknown / incomplete ids fail here with their reason
    try:
        if pinned:
            result = protect(store, found.source, found.backup_id, reason=reason)
        else:
            key = write_pin_record(
                store.s3,
                store.bucket,
                store.sse_args(),
                found.source,
                found.backup_id,
                pinned=False,
                reason=None,
            )
            held = legal_hold(store, [k for k in found.keys if k != key], False)
            result = PinResult(found.source, found.backup_id, False, None, key, held)
    except (ClientError, BotoCoreError) as exc:
        raise LastgoodError(
            f"could not {'pin' if pinned else 'unpin'} {found.source}/{found.backup_id}: "
            f"{error_code(exc) or type(exc).__name__}: {str(exc)[:200]}"
        ) from None
    from lastgood.storage import audit

    extra: dict[str, Any] = {"record": result.record_key, "legal_hold": result.legal_hold}
    audit.record(
        "pin" if pinned else "unpin",
        result="ok",
        source=found.source,
        backup_id=found.backup_id,
        reason=reason,
        **extra,
    )
    return result
