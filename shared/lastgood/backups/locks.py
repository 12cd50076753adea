"""Slot locks: at most one backup run per schedule slot, by conditional writes in the backup bucket.

`locks/<source>/<slot>.lock` (`keys.lock_key`) is created with `IfNoneMatch="*"`;
its JSON body names the run (`backup_id`, `state` running → done) and records
when it started (`acquired_at`) and the lease it claims (`lease_s`). A run that
died leaves a `running` lock: once its lease has passed and with no committed
backup behind it, a retry of the slot takes it over with `IfMatch` on its ETag,
so two retries cannot both take it. A failed run deletes its lock (if that
fails too, in an S3 outage, the lease still frees the slot); a finished one
marks it `done` and keeps it forever.

What a caller that did not get the lock reports (`lastgood.backups.run`):
`skipped` ONLY when the holder's backup is committed (its manifest exists);
otherwise the slot is "in progress" (`SlotInProgress`, exit code 11): not done,
not success — a retry after the lease takes it over.

The lease is `LOCK_LEASE_S` (20 minutes, above Lambda's 15-minute limit), or
`BACKUP_LOCK_LEASE_S` from the environment (seconds; set it above the longest
run, e.g. for a Fargate task).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, ConfigDict, ValidationError

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
MIN_LEASE_S = 60


def lease_seconds() -> int:
    """The slot-lock lease: `BACKUP_LOCK_LEASE_S` (seconds, ≥ 60) or `LOCK_LEASE_S`."""
    raw = os.environ.get("BACKUP_LOCK_LEASE_S", "").strip()
    if not raw:
        return LOCK_LEASE_S
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < MIN_LEASE_S:
        raise ConfigError(f"BACKUP_LOCK_LEASE_S={raw!r}: expected whole seconds, at least {MIN_LEASE_S}")
    return value


class LockRecord(BaseModel):
    """The body of a lock object (slot or prune lock): the one model its writers and readers use."""

    model_config = ConfigDict(extra="allow")

    source: str
    state: Literal["running", "done", "released"] = "running"
    acquired_at: str
    lease_s: int
    slot: str | None = None  # slot locks
    backup_id: str | None = None  # slot locks: the run's backup
    run_id: str | None = None  # prune locks

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)

    @classmethod
    def read(cls, body: bytes) -> dict[str, Any]:
        """A stored lock's fields; an unreadable one reads as `unreadable` (no start, so stale)."""
        try:
            return cls.model_validate_json(body).to_dict()
        except ValidationError:
            return {"state": "unreadable"}


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
    lease_s: int | None = None,
) -> SlotLock:
    """Create `locks/<source>/<slot>.lock` unless it exists (`IfNoneMatch="*"`).

    A lock still `running` past its lease whose backup never committed is a
    dead run's: it is taken over with `IfMatch` on its ETag (so two retries
    cannot both take it). Anything else → `acquired=False` with the holder.
    """
    key = lock_key(source, slot)
    moment = now or datetime.now(UTC)
    lease = lease_s if lease_s is not None else lease_seconds()
    body = LockRecord(
        source=source, slot=iso_z(slot), backup_id=backup_id, acquired_at=iso_z(moment), lease_s=lease
    ).to_dict()
    created, etag, holder = _create_or_read(store, key, body)
    if created:
        return SlotLock(source, slot, key, True, etag=etag, holder=body)
    if holder is None:  # released between our put and get: let the caller retry later
        return SlotLock(source, slot, key, False, holder={"state": "released"})
    if _lock_is_stale(store, source, holder, moment, lease):
        resp = _replace(store, key, body, etag)
        if resp is None:
            return SlotLock(source, slot, key, False, holder=holder)
        logger.warning("took over a stale slot lock", extra={"lock": key, "stale_holder": holder})
        return SlotLock(source, slot, key, True, etag=str(resp.get("ETag", "")), holder=body, taken_over=True)
    return SlotLock(source, slot, key, False, holder=holder)


def _lock_is_stale(
    store: BackupStore, source: str, holder: dict[str, Any], now: datetime, lease_s: int
) -> bool:
    """True when the holder's backup never committed and its run cannot still be going."""
    other = str(holder.get("backup_id", ""))
    if is_backup_id(other) and store.has_manifest(source, other):
        return False  # committed: the slot is done whatever the lock says
    if holder.get("state") != "running":
        return False  # a done slot is never taken over (its backup may have been pruned since)
    try:
        acquired = parse_time(str(holder.get("acquired_at", "")))
    except ConfigError:
        return True
    declared = holder.get("lease_s")
    lease = max(lease_s, int(declared)) if isinstance(declared, int) and declared > 0 else lease_s
    return (now - acquired).total_seconds() >= lease


def holder_committed(store: BackupStore, lock: SlotLock) -> bool:
    """Whether the backup named by a lock's holder is committed (its manifest exists)."""
    other = str(lock.holder.get("backup_id", ""))
    return is_backup_id(other) and store.has_manifest(lock.source, other)


def lease_until(lock: SlotLock, lease_s: int | None = None) -> datetime | None:
    """When the holder's lease ends (None if the lock does not say when it started)."""
    from datetime import timedelta

    try:
        acquired = parse_time(str(lock.holder.get("acquired_at", "")))
    except ConfigError:
        return None
    declared = lock.holder.get("lease_s")
    lease = lease_s if lease_s is not None else lease_seconds()
    if isinstance(declared, int) and declared > 0:
        lease = max(lease, declared)
    return acquired + timedelta(seconds=lease)


def complete_slot_lock(store: BackupStore, lock: SlotLock, backup_id: str) -> None:
    """Mark the slot done (kept forever: a later duplicate invocation is skipped)."""
    done = {**lock.holder, "backup_id": backup_id, "state": "done", "done_at": iso_z(datetime.now(UTC))}
    store.put_json(lock.key, LockRecord.model_validate(done).to_dict())


def release_slot_lock(store: BackupStore, lock: SlotLock) -> None:
    """Delete the lock after a failed run so a retry of the slot can run."""
    try:
        store.s3.delete_object(Bucket=store.bucket, Key=lock.key)
    except (ClientError, BotoCoreError) as exc:
        logger.warning("could not release slot lock", extra={"lock": lock.key, "error": str(exc)[:200]})


# --------------------------------------------------------------------------- prune lock

PRUNE_LEASE_S = 20 * 60  # prune runs as a Lambda (15 minutes at most)


@dataclass
class PruneLock:
    source: str
    key: str
    etag: str
    body: dict[str, Any]


def acquire_prune_lock(
    store: BackupStore, source: str, *, run_id: str, now: datetime | None = None, lease_s: int = PRUNE_LEASE_S
) -> PruneLock | dict[str, Any]:
    """One prune of a source at a time: `locks/prune-<source>.lock` (`IfNoneMatch="*"`).

    Returns the lock, or the holder's body when another prune holds it within its
    lease. A released lock, or a holder past its lease (a prune that died), is taken
    over with `IfMatch` on its ETag (two prunes cannot both take it).
    """
    from lastgood.backups.keys import prune_lock_key

    key = prune_lock_key(source)
    moment = now or datetime.now(UTC)
    body = LockRecord(source=source, run_id=run_id, acquired_at=iso_z(moment), lease_s=lease_s).to_dict()
    created, etag, holder = _create_or_read(store, key, body)
    if created:
        return PruneLock(source, key, etag, body)
    if holder is None:  # released between our put and get
        return {"state": "released", "run_id": "?"}
    try:
        started = parse_time(str(holder.get("acquired_at", "")))
        fresh = (moment - started).total_seconds() < lease_s
    except ConfigError:
        fresh = False
    if fresh and holder.get("state") != "released":
        return dict(holder)
    resp = _replace(store, key, body, etag)
    if resp is None:
        return dict(holder)
    logger.warning("took over a stale prune lock", extra={"lock": key, "stale_holder": holder})
    return PruneLock(source, key, str(resp.get("ETag", "")), body)


def release_prune_lock(store: BackupStore, lock: PruneLock) -> None:
    """Mark the prune lock released (a write, not a delete: prune's deletes are its plan's only)."""
    body = LockRecord.model_validate(
        {**lock.body, "state": "released", "released_at": iso_z(datetime.now(UTC))}
    ).to_dict()
    try:
        store.s3.put_object(
            Bucket=store.bucket,
            Key=lock.key,
            Body=json.dumps(body).encode(),
            ContentType="application/json",
            IfMatch=lock.etag,
            **store.sse_args(),
        )
    except (ClientError, BotoCoreError) as exc:  # taken over meanwhile, or an outage: the lease frees it
        logger.warning("could not release the prune lock", extra={"lock": lock.key, "error": str(exc)[:200]})


def _replace(store: BackupStore, key: str, body: dict[str, Any], etag: str) -> dict[str, Any] | None:
    """Overwrite a lock only if it is still the version read (`IfMatch`); None when another run
    changed or removed it first (that run wins)."""
    try:
        resp: dict[str, Any] = store.s3.put_object(
            Bucket=store.bucket,
            Key=key,
            Body=json.dumps(body).encode(),
            ContentType="application/json",
            IfMatch=etag,
            **store.sse_args(),
        )
    except ClientError as exc:
        if is_precondition_failed(exc) or is_not_found(exc):
            return None
        raise
    return resp


def _create_or_read(
    store: BackupStore, key: str, body: dict[str, Any]
) -> tuple[bool, str, dict[str, Any] | None]:
    """Create the lock (`IfNoneMatch="*"`) → (True, etag, body); else read the holder →
    (False, its etag, its fields), or (False, "", None) when it vanished in between."""
    try:
        return True, store.put_json(key, body, if_none_match=True), body
    except ClientError as exc:
        if not is_precondition_failed(exc):
            raise
    try:
        resp = store.s3.get_object(Bucket=store.bucket, Key=key)
        holder = LockRecord.read(resp["Body"].read())
    except ClientError as exc:
        if is_not_found(exc):
            return False, "", None
        raise
    return False, str(resp.get("ETag", "")), holder
