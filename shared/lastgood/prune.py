"""Prune: apply the retention plan to the backup bucket, safely.

For each source: list its backups (status, pinned, verified from the store),
plan with `lastgood.retention.plan`, then (unless dry-run) delete the removed
backups with batched `DeleteObjects` (≤ 1000 keys per request). Every removed
backup's `manifest.json` is put first in the key stream, so a backup whose
deletion is interrupted reads as incomplete, never as valid — and the
manifests and data share the batches, so N objects take ⌈N/1000⌉ requests.
Per-key errors are collected: object-lock refusals are reported as `locked`
(skipped, not a failure); anything else is a partial failure listing the keys
that remain. A listing that fails half-way deletes nothing. An audit record
lists what was deleted. Metrics: PrunedCount, RetainedCount, BackupStorageBytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from lastgood.errors import LastgoodError, RetentionError
from lastgood.observability import emit_metrics, logger
from lastgood.retention import DEFAULT_GRACE, BackupInfo, RetentionPlan, RetentionPolicy, plan

MAX_KEYS_PER_REQUEST = 1000
LOCKED_CODES = {"AccessDenied", "ObjectLocked", "InvalidRequest"}


class PrunePartialFailure(LastgoodError):
    exit_code = 9


@dataclass
class PruneResult:
    source: str
    plan: RetentionPlan
    dry_run: bool
    deleted_keys: int = 0
    requests: int = 0
    locked: list[str] = field(default_factory=list)
    locked_backups: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    storage_bytes: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "policy": self.plan.policy.as_dict(),
            "dry_run": self.dry_run,
            "kept": [d.as_dict() for d in self.plan.keep],
            "removed": [d.as_dict() for d in self.plan.remove],
            "deleted_keys": self.deleted_keys,
            "delete_requests": self.requests,
            "locked_keys": self.locked,
            "locked_backups": self.locked_backups,
            "failed_keys": self.failed,
            "storage_bytes": self.storage_bytes,
        }


def delete_keys(s3: Any, bucket: str, keys: list[str]) -> tuple[int, int, list[str], dict[str, str]]:
    """DeleteObjects in batches of ≤1000 (Quiet). Returns (deleted, requests, locked, failed)."""
    deleted = requests = 0
    locked: list[str] = []
    failed: dict[str, str] = {}
    for start in range(0, len(keys), MAX_KEYS_PER_REQUEST):
        batch = keys[start : start + MAX_KEYS_PER_REQUEST]
        requests += 1
        try:
            response = s3.delete_objects(
                Bucket=bucket, Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True}
            )
        except Exception as exc:  # the whole request failed: every key in it remains
            for key in batch:
                failed[key] = f"{type(exc).__name__}: {str(exc)[:200]}"
            continue
        errors = response.get("Errors") or []
        for error in errors:
            code = str(error.get("Code", ""))
            if code in LOCKED_CODES:
                locked.append(error["Key"])
            else:
                failed[error["Key"]] = f"{code}: {error.get('Message', '')}"[:200]
        deleted += len(batch) - len(errors)
    return deleted, requests, locked, failed


def policy_for(source_name: str, overrides: dict[str, Any] | None) -> RetentionPolicy:
    from lastgood.config import get_config

    configured = dict(get_config().source(source_name).retention)
    if overrides:
        # flags given on the command line replace the configured policy as a whole (like restic)
        configured = {k: v for k, v in overrides.items() if v is not None}
    return RetentionPolicy.from_dict(configured)


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
    from lastgood.store import BackupStore

    store = store or BackupStore.from_settings()
    policy = policy or policy_for(source_name, None)
    listings = store.list_backups(source_name)  # raises on a failed listing: nothing deleted
    infos = []
    by_id = {}
    for item in listings:
        info = BackupInfo(
            backup_id=item.backup_id,
            time=item.created_at,
            complete=item.status != "incomplete",
            pinned=item.pinned,
            pin_reason=item.pin_reason,
            verified=item.status == "verified",
        )
        infos.append(info)
        by_id[item.backup_id] = item
    share = max_remove_share if max_remove_share is not None else _max_share()
    result_plan = plan(
        infos, policy, now or datetime.now(UTC), grace=grace, max_remove_share=share, force=force
    )
    result = PruneResult(source_name, result_plan, dry_run)
    result.storage_bytes = sum(item.size for item in listings)
    if not dry_run and result_plan.remove:
        manifests: list[str] = []
        data: list[str] = []
        moment = now or datetime.now(UTC)
        for decision in result_plan.remove:
            item = by_id[decision.backup.backup_id]
            until = _retained_until(store, item.keys)
            if until is not None and until > moment:
                # Object Lock: in a versioned bucket a delete would only hide the locked versions
                # behind delete markers; the backup is skipped and reported instead.
                result.locked_backups.append(item.backup_id)
                decision.reasons.append(f"object lock until {until:%Y-%m-%dT%H:%M:%SZ} (not deleted)")
                continue
            for key in item.keys:
                (manifests if key.endswith("/manifest.json") else data).append(key)
        result.deleted_keys, result.requests, result.locked, result.failed = delete_keys(
            store.s3, store.bucket, manifests + data
        )
        gone = {d.backup.backup_id for d in result_plan.remove} - set(result.locked_backups)
        removed_bytes = sum(by_id[i].size for i in gone)
        result.storage_bytes -= removed_bytes
        _audit(result)
    emit_metrics(
        {
            "PrunedCount": ("Count", 0 if dry_run else len(result_plan.remove)),
            "RetainedCount": ("Count", len(result_plan.keep)),
            "BackupStorageBytes": ("Bytes", max(0, result.storage_bytes)),
        },
        source=source_name,
    )
    logger.info(
        "prune planned" if dry_run else "prune finished",
        extra={
            "source": source_name,
            "kept": len(result_plan.keep),
            "removed": len(result_plan.remove),
            "locked": len(result.locked) + len(result.locked_backups),
            "failed": len(result.failed),
        },
    )
    if result.failed:
        raise PrunePartialFailure(
            f"prune of {source_name}: {len(result.failed)} key(s) could not be deleted and remain: "
            + ", ".join(sorted(result.failed)[:20])
        )
    return result


def _retained_until(store: Any, keys: list[str]) -> datetime | None:
    """The Object Lock retain-until date of a backup (read from its manifest, or first object)."""
    probe = next((k for k in keys if k.endswith("/manifest.json")), keys[0] if keys else None)
    if probe is None:
        return None
    try:
        head = store.s3.head_object(Bucket=store.bucket, Key=probe)
    except Exception:  # unreadable: let the delete itself report what happens
        return None
    until = head.get("ObjectLockRetainUntilDate")
    if isinstance(until, datetime):
        return until if until.tzinfo else until.replace(tzinfo=UTC)
    return None


def _max_share() -> float:
    import os

    raw = os.environ.get("PRUNE_MAX_REMOVE_SHARE", "0.5")
    try:
        value = float(raw)
    except ValueError:
        raise RetentionError(f"PRUNE_MAX_REMOVE_SHARE={raw!r}: expected a fraction between 0 and 1") from None
    if not 0 < value <= 1:
        raise RetentionError(f"PRUNE_MAX_REMOVE_SHARE={raw!r}: expected a fraction between 0 and 1")
    return value


def _audit(result: PruneResult) -> None:
    from lastgood import audit

    audit.record(
        "prune",
        result="partial" if result.failed else "ok",
        source=result.source,
        policy=result.plan.policy.as_dict(),
        removed=[d.backup.backup_id for d in result.plan.remove],
        deleted_keys=result.deleted_keys,
        locked_keys=result.locked,
        locked_backups=result.locked_backups,
        failed_keys=sorted(result.failed),
    )


def simulate(times: list[datetime], policy: RetentionPolicy, now: datetime) -> RetentionPlan:
    """The policy explainer: plan for bare timestamps (all complete), no bucket access, no guards."""
    infos = [BackupInfo(backup_id=f"#{i}", time=t) for i, t in enumerate(times)]
    return plan(infos, policy, now, force=True, max_remove_share=1.0) if infos else RetentionPlan(policy, [])
