"""Slot locks: at most one backup run per schedule slot, by conditional writes in the backup bucket.

`locks/<source>/<slot>.lock` (`keys.lock_key`) is created with `IfNoneMatch="*"`;
its JSON body names the run (`backup_id`, `state` running → done). A run that
died leaves a `running` lock: once older than the lease and with no committed
backup behind it, a retry of the slot takes it over with `IfMatch` on its ETag,
so two retries cannot both take it. A failed run deletes its lock; a finished
one marks it `done` and keeps it forever (a later duplicate invocation skips).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from lastgood.backups.keys import lock_key
from lastgood.backups.manifest import is_backup_id
from lastgood.core.errors import ConfigError
from lastgood.core.observability import logger
from lastgood.core.timefmt import iso_z, parse_time
from lastgood.storage.s3 import is_not_found, is_precondition_failed

if TYPE_CHECKING:
    from lastgood.backups.store import BackupStore

# A lock older than this whose backup never committed belongs to a run that died
# (Lambda's hard limit is 15 minutes); a retry of the slot may take it over.
LOCK_LEASE_S = 20 * 60


@dataclass
class SlotLock:
    """Result of `acquire_slot_lock`: `acquired` or held by `holder` (the lock's JSON body)."""

    source: str
    slot: datetime
    key: str
    acquired: bool
    etag: str | None = None
    holder: dict[str, Any] = field(default_factory=dict)
    taken_over: bool = False


def acquire_slot_lock(
    store: BackupStore,
    source: str,
    slot: datetime,
    *,
    backup_id: str,
    now: datetime | None = None,
    lease_s: int = LOCK_LEASE_S,
) -> SlotLock:
    """Create `locks/<source>/<slot>.lock` unless it exists (`IfNoneMatch="*"`).

    A lock still `running` after `lease_s` whose backup never committed is a
    dead run's: it is taken over with `IfMatch` on its ETag (so two retries
    cannot both take it). Anything else → `acquired=False` with the holder.
    """
    key = lock_key(source, slot)
    moment = now or datetime.now(UTC)
    body = {
        "source": source,
        "slot": iso_z(slot),
        "backup_id": backup_id,
        "state": "running",
        "acquired_at": iso_z(moment),
    }
    try:
        etag = store.put_json(key, body, if_none_match=True)
        return SlotLock(source, slot, key, True, etag=etag, holder=body)
    except ClientError as exc:
        if not is_precondition_failed(exc):
            raise
    try:
        resp = store.s3.get_object(Bucket=store.bucket, Key=key)
        holder = json.loads(resp["Body"].read())
        etag = str(resp.get("ETag", ""))
    except ClientError as exc:
        if is_not_found(exc):  # released between our put and get: let the caller retry later
            return SlotLock(source, slot, key, False, holder={"state": "released"})
        raise
    if holder.get("state") == "running" and _lock_is_stale(store, source, holder, moment, lease_s):
        try:
            resp = store.s3.put_object(
                Bucket=store.bucket,
                Key=key,
                Body=json.dumps(body).encode(),
                ContentType="application/json",
                IfMatch=etag,
                **store.sse_args(),
            )
        except ClientError as exc:
            if is_precondition_failed(exc) or is_not_found(exc):
                return SlotLock(source, slot, key, False, holder=holder)
            raise
        logger.warning("took over a stale slot lock", extra={"lock": key, "stale_holder": holder})
        return SlotLock(source, slot, key, True, etag=str(resp.get("ETag", "")), holder=body, taken_over=True)
    return SlotLock(source, slot, key, False, holder=holder)


def _lock_is_stale(
    store: BackupStore, source: str, holder: dict[str, Any], now: datetime, lease_s: int
) -> bool:
    try:
        acquired = parse_time(str(holder.get("acquired_at", "")))
    except ConfigError:
        return True
    if (now - acquired).total_seconds() < lease_s:
        return False
    other = str(holder.get("backup_id", ""))
    return not (is_backup_id(other) and store.has_manifest(source, other))


def complete_slot_lock(store: BackupStore, lock: SlotLock, backup_id: str) -> None:
    """Mark the slot done (kept forever: a later duplicate invocation is skipped)."""
    store.put_json(
        lock.key,
        {**lock.holder, "backup_id": backup_id, "state": "done", "done_at": iso_z(datetime.now(UTC))},
    )


def release_slot_lock(store: BackupStore, lock: SlotLock) -> None:
    """Delete the lock after a failed run so a retry of the slot can run."""
    try:
        store.s3.delete_object(Bucket=store.bucket, Key=lock.key)
    except (ClientError, BotoCoreError) as exc:
        logger.warning("could not release slot lock", extra={"lock": lock.key, "error": str(exc)[:200]})
