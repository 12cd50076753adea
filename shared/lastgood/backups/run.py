"""One backup run: one source, one schedule slot.

    run_backup("postgres")                      # slot = now floored to the source's schedule period
    run_backup("postgres", slot="2025-01-29T02:00:00Z")   # the scheduled time from the event
    run_backup("postgres", on_demand=True, pin=True, reason="before migration 005")
    run_backup("postgres", on_demand=True, pin=True, reason=…, url=target, token=None)  # a safety
        # backup of a restore target, kept under the source's name (`backups.targets`)

Steps: resolve the source's config and secrets → take the slot lock
(`locks/<source>/<slot>.lock`, conditional write; a duplicate or retried
invocation is `skipped` only when the slot's backup is committed; a slot held
by a run within its lease raises `SlotInProgress` (exit 11, not a success); a
dead run's lock is taken over after its lease — `lastgood.backups.locks`) → the engine
streams its dump into a `BackupWriter` → its count and size are compared with
the median of the source's recent good backups (a sharp shrink or an empty
dump is committed marked `suspect`: `lastgood.backups.suspect`) →
`manifest.json` is written last →
the lock is marked done (kept: the slot stays taken). On any failure the open
multipart upload is aborted, the run's finished objects are deleted, no
manifest is written, the lock is released (so a retry of the slot can run),
metrics and the audit record are emitted, and `BackupError` is raised so the
Lambda's on-failure destination and alarm fire. Earlier backups are never
touched.
Engines receive `options` (`EngineOptions`) straight from the source's config.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from lastgood import __version__
from lastgood.backups.estimate import peak_rss_bytes
from lastgood.backups.manifest import BackupManifest
from lastgood.backups.store import BackupStore
from lastgood.core.config import SourceConfig, get_config
from lastgood.core.errors import (
    BackupError,
    BackupSourceUnavailable,
    ConfigError,
    LastgoodError,
    SlotInProgress,
    SourceUnavailable,
)
from lastgood.core.observability import logger
from lastgood.core.redact import redact_text
from lastgood.core.settings import get_secret
from lastgood.core.timefmt import floor_slot, iso_z, parse_time, schedule_period_seconds, to_utc
from lastgood.engines.base import EngineOptions, ServerIdentity

# Metric names (namespace from POWERTOOLS_METRICS_NAMESPACE, dimension `source`).
METRIC_SUCCESS = "BackupSuccess"
METRIC_FAILURE = "BackupFailure"
METRIC_SKIPPED = "BackupSkipped"
METRIC_IN_PROGRESS = "BackupSlotInProgress"
METRIC_BYTES = "BackupBytes"
METRIC_DURATION = "BackupDurationSeconds"
METRIC_DURATION_RATIO = "BackupDurationRatio"
METRIC_SIZE_RATIO = "BackupSizeRatio"
METRIC_COUNT_RATIO = "BackupCountRatio"
METRIC_SUSPECT = "BackupSuspect"  # 1: committed as suspect (lastgood.backups.suspect), else 0
BASELINE_WINDOW = 7  # previous complete backups the baseline is the median of
BASELINE_MIN = 3  # fewer than this: no baseline yet, no ratio emitted


@dataclass
class BackupResult:
    status: Literal["ok", "skipped"]
    source: str
    message: str
    backup_id: str | None = None
    slot: datetime | None = None
    manifest: BackupManifest | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "source": self.source,
            "backup_id": self.backup_id,
            "slot": iso_z(self.slot) if self.slot else None,
            "message": self.message,
            "suspect": bool(self.manifest and self.manifest.suspect),
            "manifest": self.manifest.to_dict() if self.manifest else None,
        }


def resolve_slot(source: SourceConfig, slot: datetime | str | None, now: datetime) -> datetime:
    """The schedule slot: the given time (or now) floored to the source's schedule period."""
    moment = parse_time(slot) if isinstance(slot, str) else to_utc(slot) if slot else now
    return floor_slot(moment, schedule_period_seconds(source.schedule))


def engine_options(source: SourceConfig) -> EngineOptions:
    return EngineOptions(
        source=source.name,
        include=tuple(source.include),
        exclude=tuple(source.exclude),
        pg_dump_args=tuple(source.pg_dump_args),
        database=source.database,
    )


def _identity(source: SourceConfig, url: str, token: str | None, *, own: bool) -> ServerIdentity | None:
    """The dumped server's identity for the manifest; best effort (a drill then relies on the
    configured sources it can reach), never a reason to fail the backup."""
    from lastgood.backups.targets import source_identity

    try:
        return source_identity(source.engine, url, token, database=source.database if own else None)
    except Exception as exc:
        logger.warning(
            "source identity not recorded",
            extra={
                "source": source.name,
                "error": redact_text(f"{type(exc).__name__}: {exc}", (url, token or ""))[:300],
            },
        )
        return None


def _emit(source: str, **values: tuple[str, float]) -> None:
    from lastgood.core.observability import emit_metrics

    emit_metrics(values, source=source)


def baseline_ratios(current: BackupManifest, previous: list[BackupManifest]) -> dict[str, tuple[str, float]]:
    """This backup's duration and size ÷ the median of the previous complete backups (seed 003:
    alert when a backup takes or weighs more than 120 % of its recent baseline). Pure."""
    from statistics import median

    window = [m for m in previous if m.backup_id != current.backup_id][:BASELINE_WINDOW]
    if len(window) < BASELINE_MIN:
        return {}
    ratios: dict[str, tuple[str, float]] = {}
    base_duration = median(m.duration_s for m in window)
    base_bytes = median(m.totals.bytes for m in window)
    base_count = median(m.totals.count for m in window)
    if base_duration > 0:
        ratios[METRIC_DURATION_RATIO] = ("NoUnit", round(current.duration_s / base_duration, 4))
    if base_bytes > 0:
        ratios[METRIC_SIZE_RATIO] = ("NoUnit", round(current.totals.bytes / base_bytes, 4))
    if base_count > 0:
        ratios[METRIC_COUNT_RATIO] = ("NoUnit", round(current.totals.count / base_count, 4))
    return ratios


def _beside_the_dump[T](name: str, fn: Callable[[], T]) -> Future[T]:
    """`fn()` on a thread of its own while the dump runs (off its critical path)."""
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
    try:
        return pool.submit(fn)
    finally:
        pool.shutdown(wait=False)


def _previous_good(store: BackupStore, source: str) -> Future[list[BackupManifest]]:
    """The source's previous good manifests, read while the dump runs."""
    return _beside_the_dump(
        "baseline",
        lambda: [
            item.manifest
            for item in store.list_backups(source)
            if item.manifest is not None and not item.suspect
        ],
    )


def _baseline_ratios(
    previous: Future[list[BackupManifest]], manifest: BackupManifest
) -> dict[str, tuple[str, float]]:
    try:
        return baseline_ratios(manifest, [m for m in previous.result() if m.backup_id != manifest.backup_id])
    except Exception as exc:  # a missing baseline must not fail a committed backup
        logger.warning("backup baseline unavailable", extra={"error": str(exc)[:200]})
        return {}


def _mark_suspect(
    source: SourceConfig,
    manifest: BackupManifest,
    ratios: dict[str, tuple[str, float]],
    engine_counts: dict[str, int] | None,
) -> BackupManifest:
    """The manifest marked `suspect` (with the reason) when it shrank sharply or the engine dumped
    nothing at all (its own counts: no tables / collections / keys)."""
    from lastgood.backups.suspect import suspect_reason

    reason = suspect_reason(
        manifest.engine,
        engine_counts,
        count_ratio=ratios[METRIC_COUNT_RATIO][1] if METRIC_COUNT_RATIO in ratios else None,
        size_ratio=ratios[METRIC_SIZE_RATIO][1] if METRIC_SIZE_RATIO in ratios else None,
        min_count_ratio=source.suspect_min_count_ratio,
        min_size_ratio=source.suspect_min_size_ratio,
    )
    if reason is None:
        return manifest
    return manifest.model_copy(update={"suspect": True, "suspect_reason": reason})


def _record_pin(store: BackupStore, manifest: BackupManifest, reason: str | None) -> None:
    """The pin record (and legal hold) of a pinned backup; its manifest's flag is the fallback."""
    from lastgood.backups.pinrecord import protect

    try:
        protect(store, manifest.source, manifest.backup_id, reason=reason)
    except Exception as exc:  # the manifest says pinned: prune keeps it without a record too
        logger.error("pin record not written", extra={"backup": manifest.backup_id, "error": str(exc)[:300]})


def _audit(store: BackupStore, record: dict[str, Any]) -> None:
    from lastgood.storage import audit

    try:
        audit.append(
            store.bucket, {"operation": "backup", **record}, s3_client=store.s3, kms_key_id=store.kms_key_id
        )
    except Exception as exc:  # the audit trail must not turn a good backup into a failed one
        logger.error("audit record not written", extra={"error": str(exc)[:300]})


def _not_acquired(store: BackupStore, lock: Any, log_extra: dict[str, Any]) -> BackupResult:
    """`skipped` when the holder's backup is committed; otherwise the slot is in progress (raise)."""
    from lastgood.backups.locks import holder_committed, lease_until

    holder = lock.holder
    other = holder.get("backup_id", "?")
    if holder_committed(store, lock):
        message = f"skipped (slot {iso_z(lock.slot)} is done: backup {other} is committed)"
        logger.info(message, extra=log_extra)
        _emit(lock.source, **{METRIC_SKIPPED: ("Count", 1)})
        return BackupResult("skipped", lock.source, message, backup_id=other, slot=lock.slot)
    _emit(lock.source, **{METRIC_IN_PROGRESS: ("Count", 1)})
    if holder.get("state") == "done":
        raise SlotInProgress(
            f"slot {iso_z(lock.slot)} of {lock.source!r} was done by backup {other}, which is no longer "
            "committed (pruned?); not skipped and not re-run: take an on-demand backup instead"
        )
    until = lease_until(lock)
    message = (
        f"slot {iso_z(lock.slot)} of {lock.source!r} is in progress, not done: backup {other} "
        f"({holder.get('state', '?')}, started {holder.get('acquired_at', '?')}) has not committed"
        + (f"; a retry after {iso_z(until)} takes the slot over" if until else "")
    )
    logger.warning(message, extra=log_extra)
    raise SlotInProgress(message)


def run_backup(
    source_name: str,
    *,
    slot: datetime | str | None = None,
    on_demand: bool = False,
    pin: bool = False,
    reason: str | None = None,
    store: BackupStore | None = None,
    now: datetime | None = None,
    deadline: float | None = None,
    url: str | None = None,
    token: str | None = None,
    snapshot: str | None = None,
    extra: dict[str, Any] | None = None,
) -> BackupResult:
    """Back up `source_name` once for its slot (see the module docstring). Raises BackupError on failure.

    `url` / `token`: dump that database instead of the source's own (on demand only: the safety
    backup of a restore target), everything in it (the source's include/exclude do not apply).

    `deadline` (a `time.monotonic()` value; the handler derives it from the Lambda's
    remaining time) makes a run that would be killed mid-upload stop cleanly first.

    `snapshot` / `extra` (PITR bases, `lastgood.pitr.base`): dump in that exported snapshot and
    record `extra` in the manifest's `extra`.
    """
    if reason and not pin:
        raise ConfigError("--reason is only meaningful with --pin")
    if pin and not reason:
        raise ConfigError("a pinned backup needs a reason (what it protects, e.g. 'before migration 005')")
    if url is not None and not on_demand:
        raise ConfigError("a backup of another URL than the source's is on demand only")
    source = get_config().source(source_name)
    store = store or BackupStore.from_settings()
    started = to_utc(now) if now else datetime.now(UTC)
    backup_id = store.new_backup_id(started)
    slot_time = None if on_demand else resolve_slot(source, slot, started)
    log_extra = {
        "source": source.name,
        "backup_id": backup_id,
        "slot": iso_z(slot_time) if slot_time else None,
    }

    lock = None
    if slot_time is not None:
        lock = store.acquire_slot_lock(source.name, slot_time, backup_id=backup_id, now=started)
        if not lock.acquired:
            return _not_acquired(store, lock, log_extra)

    from lastgood.engines import get_engine

    previous = _previous_good(store, source.name)
    own = url is None
    secrets: tuple[str, ...] = ()
    writer = store.writer(
        source.name, backup_id, client_side_encryption=source.client_side_encryption, deadline=deadline
    )
    try:
        if own:
            url = str(get_secret(source.url_secret))
            token = get_secret(source.token_secret) if source.token_secret else None
        dump_url = str(url)
        secrets = tuple(s for s in (dump_url, token) if s)
        engine = get_engine(source.engine)
        logger.info("backup started", extra=log_extra)
        # best effort, never raises: asked on its own connection while pg_dump/mongodump runs
        identity_lookup = _beside_the_dump("identity", lambda: _identity(source, dump_url, token, own=own))
        options = engine_options(source) if own else EngineOptions(source=source.name)
        if snapshot:
            options = options.model_copy(update={"snapshot": snapshot})
        dumped = engine.dump(dump_url, writer, options=options, token=token)
        finished = datetime.now(UTC)
        identity = identity_lookup.result()
        counts = dumped.extra.get("counts")
        manifest = BackupManifest.build(
            backup_id=backup_id,
            source=source.name,
            engine=source.engine,
            started_at=started,
            finished_at=finished,
            objects=writer.entries,
            server_version=dumped.server_version,
            slot=slot_time,
            counts=counts if isinstance(counts, dict) else None,
            tool_versions={"lastgood": __version__, **dumped.tool_versions},
            pinned=pin,
            pin_reason=reason,
            kms_key_id=store.kms_key_id,
            client_side=source.client_side_encryption,
            # A safety backup of a restore target is not the source's server: its identity is kept
            # for information only, so restoring the safety backup back is not taken for production.
            source_identity=identity if own else None,
            peak_rss_bytes=peak_rss_bytes(),
            extra={k: v for k, v in dumped.extra.items() if k != "counts"}
            | ({} if own or identity is None else {"dumped_identity": identity.model_dump(mode="json")})
            | dict(extra or {}),
        )
        ratios = _baseline_ratios(previous, manifest)  # against recent good backups only
        manifest = _mark_suspect(source, manifest, ratios, counts if isinstance(counts, dict) else None)
        writer.commit(manifest)
    except BaseException as exc:
        writer.discard()
        if lock is not None:
            store.release_slot_lock(lock)
        duration = (datetime.now(UTC) - started).total_seconds()
        cause = redact_text(f"{type(exc).__name__}: {exc}", secrets)[:1500]
        logger.error("backup failed", extra={**log_extra, "error": cause})
        _emit(source.name, **{METRIC_FAILURE: ("Count", 1), METRIC_DURATION: ("Seconds", duration)})
        _audit(store, {"source": source.name, "backup_id": backup_id, "result": "failed", "error": cause})
        if isinstance(exc, SourceUnavailable):  # exit 4: the database, not the backup, is the problem
            raise BackupSourceUnavailable(
                f"backup of {source.name!r} failed: the source is unavailable; nothing was committed: {cause}"
            ) from None
        if isinstance(exc, ConfigError | BackupError):
            raise
        if isinstance(exc, LastgoodError | Exception):
            raise BackupError(f"backup of {source.name!r} failed; nothing was committed: {cause}") from None
        raise

    from lastgood.backups.finish import finish_committed  # (imports this module)

    return finish_committed(
        store,
        manifest,
        lock=lock,
        slot_time=slot_time,
        ratios=ratios,
        log_extra=log_extra,
        pin=pin,
        reason=reason,
    )
