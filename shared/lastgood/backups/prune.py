"""Prune: apply the retention plan to the backup bucket, safely.

For each source: take the source's prune lock (`locks/prune-<source>.lock`, a
conditional create; a second prune of the same source while one runs is refused
with nothing deleted, so two prunes never both act on one listing), list its
backups (status, pinned, verified from the store; a listing that fails half-way
raises before anything is deleted), plan with `lastgood.backups.retention.plan`,
then, unless dry-run, delete the removed backups.

Prune deletes only what it can read and explain: "incomplete" means no manifest
object at all (removed after the grace period); a backup whose manifest exists
but cannot be read (cut JSON, an unknown `format`) is `unreadable`: it never
enters the plan, is always kept, and is counted in the `UnreadableManifest`
metric (alarmed). Pins come from the pin records (`lastgood.backups.pinrecord`),
so a pin survives a broken or deleted manifest; a backup under an Object Lock
legal hold or retention is skipped. The deletes:

1. each removed backup's `manifest.json` goes first, on its own (DeleteObject),
   so a backup whose deletion is interrupted reads as incomplete, never as
   valid; if the manifest cannot be deleted, the backup's data is left alone;
2. then every other object of those backups in batched `DeleteObjects`
   (≤ 1000 keys per request, Quiet mode): N data objects take ⌈N/1000⌉ requests.

Per-key errors are collected: Object Lock refusals are reported as locked
(skipped, not a failure); anything else is a partial failure that names the
keys that remain. Backups whose objects are still under Object Lock retention
are skipped before any delete (in a versioned bucket a delete would only hide
the locked versions behind delete markers). An audit record lists what was
deleted. Metrics per source: PrunedCount, RetainedCount, BackupStorageBytes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from lastgood.backups.keys import is_manifest_key
from lastgood.backups.locks import acquire_prune_lock, release_prune_lock
from lastgood.backups.retention import DEFAULT_GRACE, BackupInfo, RetentionPlan, RetentionPolicy, plan
from lastgood.core.errors import LastgoodError, RetentionError
from lastgood.core.observability import emit_metrics, logger
from lastgood.storage.s3 import error_code, is_object_lock_refusal

MAX_KEYS_PER_REQUEST = 1000


class PrunePartialFailure(LastgoodError):
    """Some objects could not be deleted; the message names the keys that remain."""

    exit_code = 9


class PruneInProgress(RetentionError):
    """Another prune of the same source holds its prune lock: nothing was deleted."""


METRIC_UNREADABLE = "UnreadableManifest"


@dataclass
class DeleteOutcome:
    deleted: int = 0
    requests: int = 0
    locked: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


@dataclass
class PruneResult:
    source: str
    plan: RetentionPlan
    dry_run: bool
    deleted_keys: int = 0
    requests: int = 0  # DeleteObjects requests (data)
    manifest_deletes: int = 0  # DeleteObject requests (one manifest each, sent first)
    pruned: list[str] = field(default_factory=list)  # backups whose every object is gone
    locked: list[str] = field(default_factory=list)
    locked_backups: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    storage_bytes: int = 0
    audit_key: str | None = None
    unreadable: dict[str, str] = field(default_factory=dict)  # backup id → why its manifest is unreadable
    refused: str | None = None  # dry run: why the real run would be refused (without --force)

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "policy": self.plan.policy.as_dict(),
            "dry_run": self.dry_run,
            "refused": self.refused,
            "kept": [d.as_dict() for d in self.plan.keep],
            "removed": [d.as_dict() for d in self.plan.remove],
            "pruned": self.pruned,
            "deleted_keys": self.deleted_keys,
            "delete_requests": self.requests,
            "manifest_deletes": self.manifest_deletes,
            "locked_keys": self.locked,
            "locked_backups": self.locked_backups,
            "failed_keys": self.failed,
            "storage_bytes": self.storage_bytes,
            "audit_key": self.audit_key,
            "unreadable": self.unreadable,
        }


def delete_keys(s3: Any, bucket: str, keys: list[str]) -> tuple[int, int, list[str], dict[str, str]]:
    """DeleteObjects in batches of ≤1000 (Quiet). Returns (deleted, requests, locked, failed)."""
    outcome = DeleteOutcome()
    for start in range(0, len(keys), MAX_KEYS_PER_REQUEST):
        batch = keys[start : start + MAX_KEYS_PER_REQUEST]
        outcome.requests += 1
        try:
            response = s3.delete_objects(
                Bucket=bucket, Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True}
            )
        except Exception as exc:  # the whole request failed: every key in it remains
            for key in batch:
                outcome.failed[key] = f"{error_code(exc) or type(exc).__name__}: {str(exc)[:200]}"
            continue
        errors = response.get("Errors") or []
        for error in errors:
            code = str(error.get("Code", ""))
            if is_object_lock_refusal(code):
                outcome.locked.append(error["Key"])
            else:
                outcome.failed[error["Key"]] = f"{code}: {error.get('Message', '')}"[:200]
        outcome.deleted += len(batch) - len(errors)
    return outcome.deleted, outcome.requests, outcome.locked, outcome.failed


def policy_for(source_name: str, overrides: dict[str, Any] | None) -> RetentionPolicy:
    """The source's configured policy, or the `--keep-*` flags given instead of it (as a whole,
    like restic's flags). Malformed policies raise RetentionError naming the source."""
    from lastgood.core.config import get_config

    configured = dict(get_config().source(source_name).retention)
    if overrides:
        configured = {k: v for k, v in overrides.items() if v is not None}
    try:
        return RetentionPolicy.from_dict(configured)
    except RetentionError as exc:
        origin = "--keep-* flags" if overrides else f"sources.{source_name}.retention"
        raise RetentionError(f"{origin}: {exc}") from None


def prune_source(
    source_name: str,
    *,
    store: Any = None,
    policy: RetentionPolicy | None = None,
    dry_run: bool = False,
    force: bool = False,
    now: datetime | None = None,
    grace: timedelta = DEFAULT_GRACE,
    max_remove_share: float | None = None,
) -> PruneResult:
    from lastgood.backups.store import BackupStore

    policy = policy or policy_for(source_name, None)
    share = max_remove_share if max_remove_share is not None else max_share_from_env()
    store = store or BackupStore.from_settings()
    moment = now or datetime.now(UTC)
    lock = None
    if not dry_run:
        import secrets

        held = acquire_prune_lock(store, source_name, run_id=secrets.token_hex(6), now=moment)
        if isinstance(held, dict):
            raise PruneInProgress(
                f"prune {source_name}: another prune of this source is running (run {held.get('run_id', '?')}, "
                f"started {held.get('acquired_at', '?')}); nothing was deleted, run again after it finishes"
            )
        lock = held
    try:
        result = _prune_locked(store, source_name, policy, dry_run, force, moment, grace, share)
    finally:
        if lock is not None:
            release_prune_lock(store, lock)
    return result


def _prune_locked(
    store: Any,
    source_name: str,
    policy: RetentionPolicy,
    dry_run: bool,
    force: bool,
    moment: datetime,
    grace: timedelta,
    share: float,
) -> PruneResult:
    listings = store.list_backups(source_name)  # raises on a failed listing: nothing deleted
    by_id = {item.backup_id: item for item in listings}
    # An unreadable manifest is never planned: kept, whatever the policy, the pins or its age.
    unreadable = {
        item.backup_id: item.unreadable_reason or "manifest unreadable"
        for item in listings
        if item.status == "unreadable"
    }
    infos = [
        BackupInfo(
            backup_id=item.backup_id,
            time=item.created_at,
            complete=item.status != "incomplete",
            pinned=item.pinned,
            pin_reason=item.pin_reason,
            verified=item.status == "verified",
            suspect=item.suspect,
        )
        for item in listings
        if item.backup_id not in unreadable
    ]
    refused: str | None = None
    try:
        result_plan = plan(infos, policy, moment, grace=grace, max_remove_share=share, force=force)
    except RetentionError as exc:
        if not dry_run:
            raise RetentionError(f"prune {source_name}: {exc}") from None
        # A dry run deletes nothing: show the plan, and say that the real run would be refused.
        refused = f"prune {source_name}: {exc}"
        result_plan = plan(infos, policy, moment, grace=grace, max_remove_share=share, force=True)
    result = PruneResult(source_name, result_plan, dry_run, unreadable=unreadable, refused=refused)
    result.storage_bytes = sum(item.size for item in listings)
    if unreadable:
        logger.error(
            "unreadable manifests kept (not pruned): fix or remove them by hand",
            extra={"source": source_name, "backups": unreadable},
        )
    if not dry_run and result_plan.remove:
        _delete_backups(store, result, by_id, moment)
        result.audit_key = _audit(store, result)
    emit_metrics(
        {
            "PrunedCount": ("Count", len(result.pruned)),
            "RetainedCount": ("Count", len(infos) - len(result.pruned)),
            "BackupStorageBytes": ("Bytes", max(0, result.storage_bytes)),
            METRIC_UNREADABLE: ("Count", len(unreadable)),
        },
        source=source_name,
    )
    logger.info(
        "prune planned" if dry_run else "prune finished",
        extra={
            "source": source_name,
            "policy": policy.as_dict(),
            "kept": len(result_plan.keep),
            "removed": len(result_plan.remove),
            "unreadable": len(unreadable),
            "pruned": len(result.pruned),
            "locked": len(result.locked) + len(result.locked_backups),
            "failed": len(result.failed),
        },
    )
    if result.failed:
        remaining = sorted(result.failed)
        raise PrunePartialFailure(
            f"prune {source_name}: {len(remaining)} key(s) could not be deleted and remain: "
            + ", ".join(remaining[:20])
            + (f" (+{len(remaining) - 20} more)" if len(remaining) > 20 else "")
            + f"; first error: {result.failed[remaining[0]]}"
        )
    return result


def _delete_backups(store: Any, result: PruneResult, by_id: dict[str, Any], moment: datetime) -> None:
    data: list[str] = []
    data_owner: dict[str, str] = {}
    candidates: list[str] = []
    for decision in result.plan.remove:
        item = by_id[decision.backup.backup_id]
        held, until = _object_lock(store, item.keys)
        if held:
            result.locked_backups.append(item.backup_id)
            decision.reasons.append("Object Lock legal hold: not deleted")
            continue
        if until is not None and until > moment:
            result.locked_backups.append(item.backup_id)
            decision.reasons.append(f"Object Lock until {until:%Y-%m-%dT%H:%M:%SZ}: not deleted")
            continue
        manifest = next((k for k in item.keys if is_manifest_key(k)), None)
        if manifest is not None:
            result.manifest_deletes += 1
            try:
                store.s3.delete_object(Bucket=store.bucket, Key=manifest)
            except Exception as exc:  # the backup stays whole (still valid): nothing else of it goes
                code = error_code(exc)
                if is_object_lock_refusal(code):
                    result.locked.append(manifest)
                    result.locked_backups.append(item.backup_id)
                else:
                    for key in item.keys:
                        result.failed[key] = f"{code or type(exc).__name__}: manifest not deleted"
                continue
            result.deleted_keys += 1
        candidates.append(item.backup_id)
        for key in item.keys:
            if key != manifest:
                data.append(key)
                data_owner[key] = item.backup_id
    deleted, result.requests, locked, failed = delete_keys(store.s3, store.bucket, data)
    result.deleted_keys += deleted
    result.locked.extend(locked)
    result.failed.update(failed)
    left_behind = {data_owner[k] for k in (*locked, *failed)}
    result.pruned = [b for b in candidates if b not in left_behind]
    result.storage_bytes -= sum(by_id[b].size for b in result.pruned)


def _object_lock(store: Any, keys: list[str]) -> tuple[bool, datetime | None]:
    """(legal hold on?, retain-until date) of a backup, read from its manifest (or first object)."""
    probe = next((k for k in keys if is_manifest_key(k)), keys[0] if keys else None)
    if probe is None:
        return False, None
    try:
        head = store.s3.head_object(Bucket=store.bucket, Key=probe)
    except Exception:  # unreadable here: the delete itself reports what happens
        return False, None
    held = str(head.get("ObjectLockLegalHoldStatus", "")) == "ON"
    until = head.get("ObjectLockRetainUntilDate")
    if isinstance(until, datetime):
        return held, until if until.tzinfo else until.replace(tzinfo=UTC)
    return held, None


def max_share_from_env() -> float:
    raw = os.environ.get("PRUNE_MAX_REMOVE_SHARE", "0.5")
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 < value <= 1:
        raise RetentionError(f"PRUNE_MAX_REMOVE_SHARE={raw!r}: expected a fraction in (0, 1]")
    return value


def _audit(store: Any, result: PruneResult) -> str | None:
    """`audit/prune/…` in the backup bucket: what was deleted, skipped and left behind."""
    from lastgood.storage import audit

    record = {
        "kind": "prune",
        "result": "partial" if result.failed else "ok",
        "source": result.source,
        "policy": result.plan.policy.as_dict(),
        "pruned": result.pruned,
        "deleted_keys": result.deleted_keys,
        "delete_requests": result.requests,
        "locked_backups": result.locked_backups,
        "locked_keys": result.locked,
        "failed_keys": sorted(result.failed),
        "kept": [d.backup.backup_id for d in result.plan.keep],
        "unreadable_kept": sorted(result.unreadable),
    }
    try:
        return audit.append(store.bucket, record, s3_client=store.s3, kms_key_id=store.kms_key_id)
    except Exception as exc:  # the deletes happened: a missing audit record is logged, not raised
        logger.error("prune audit record not written", extra={"error": str(exc)[:300]})
        return None


def simulate(times: list[datetime], policy: RetentionPolicy, now: datetime) -> RetentionPlan:
    """The policy explainer: plan for bare timestamps (all complete), no bucket access, no guards."""
    infos = [BackupInfo(backup_id=f"#{i}", time=t) for i, t in enumerate(times, 1)]  # #N: Nth time
    return plan(infos, policy, now, force=True, max_remove_share=1.0) if infos else RetentionPlan(policy, [])
