"""After a backup's manifest is committed: pin record, slot lock marked done, metrics, audit, logs.

Shared by the single-process run (`lastgood.backups.run.run_backup`) and the commit of a
sharded Fargate backup (`lastgood.backups.shard_commit`), so both emit the same metrics and
audit records for a committed backup.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from lastgood.backups.locks import SlotLock
from lastgood.backups.manifest import BackupManifest
from lastgood.backups.run import (
    METRIC_BYTES,
    METRIC_DURATION,
    METRIC_SUCCESS,
    METRIC_SUSPECT,
    BackupResult,
    _audit,
    _emit,
    _record_pin,
)
from lastgood.backups.store import BackupStore
from lastgood.core.observability import logger


def finish_committed(
    store: BackupStore,
    manifest: BackupManifest,
    *,
    lock: SlotLock | None,
    slot_time: datetime | None,
    ratios: dict[str, tuple[str, float]],
    log_extra: dict[str, Any],
    pin: bool = False,
    reason: str | None = None,
) -> BackupResult:
    """Everything a committed backup still needs (none of it can un-commit it); its result."""
    source_name, backup_id = manifest.source, manifest.backup_id
    if pin:
        _record_pin(store, manifest, reason)
    if lock is not None:
        try:
            store.complete_slot_lock(lock, backup_id)
        except Exception as exc:  # the backup is committed; a 'running' lock only blocks this slot
            logger.warning("could not mark the slot lock done", extra={**log_extra, "error": str(exc)[:200]})
    values: dict[str, tuple[str, float]] = {
        METRIC_SUCCESS: ("Count", 1),
        METRIC_BYTES: ("Bytes", manifest.totals.bytes),
        METRIC_DURATION: ("Seconds", manifest.duration_s),
    }
    values.update(ratios)
    values[METRIC_SUSPECT] = ("Count", 1 if manifest.suspect else 0)
    _emit(source_name, **values)
    _audit(
        store,
        {
            "source": source_name,
            "backup_id": backup_id,
            "result": "ok",
            "bytes": manifest.totals.bytes,
            "count": manifest.totals.count,
            "pinned": pin,
            "pin_reason": reason,
            "suspect": manifest.suspect,
            "suspect_reason": manifest.suspect_reason,
        },
    )
    if manifest.suspect:
        logger.warning("backup committed as suspect", extra={**log_extra, "reason": manifest.suspect_reason})
    logger.info(
        "backup committed", extra={**log_extra, "bytes": manifest.totals.bytes, "s": manifest.duration_s}
    )
    return BackupResult(
        "ok", source_name, manifest.summary(), backup_id=backup_id, slot=slot_time, manifest=manifest
    )
