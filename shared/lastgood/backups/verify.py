"""Verification: integrity (restic `check --read-data`) and the restore drill.

Integrity re-reads every object of a backup and compares its size and SHA-256
with the manifest; every bad object is named. The drill restores the backup
into a scratch target (wiped first and after) — never a production database:
`backups.targets.guard_scratch` identifies the target by server before anything
else and refuses it when it is the backup's source or any reachable configured
source, or when it cannot be identified (nothing is wiped) — compares per-table/collection/
key counts with the manifest, and measures the recovery time (integrity check
+ restore: what a real recovery would take) against the source's RTO. The
result is written next to the backup as `verification.json`, so `lastgood list`
shows `verified` and prune keeps the newest verified backup.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from lastgood.backups.keys import verification_key
from lastgood.backups.manifest import BackupManifest
from lastgood.backups.restore import RestoreReport, restore_manifest
from lastgood.backups.selection import Skipped, newest_good
from lastgood.backups.store import BackupStore
from lastgood.backups.target_db import check_target_database
from lastgood.backups.verification import DrillRecord, IntegrityRecord, PitrDrillRecord, VerificationRecord
from lastgood.core.errors import BackupIntegrityError, ConfigError, LastgoodError
from lastgood.core.observability import logger
from lastgood.core.redact import redact_text

METRIC_SUCCESS = "RestoreTestSuccess"
METRIC_RECOVERY = "RecoveryTimeSeconds"
METRIC_INTEGRITY = "IntegrityCheckSuccess"


@dataclass
class VerificationResult:
    source: str
    backup_id: str
    checked_at: datetime
    objects_checked: int = 0
    bytes_checked: int = 0
    bad_objects: dict[str, str] = field(default_factory=dict)
    drill: RestoreReport | None = None
    drill_error: str | None = None
    rto_seconds: int | None = None
    skipped: list[Skipped] = field(default_factory=list)  # newer backups the drill passed over

    @property
    def integrity_ok(self) -> bool:
        return not self.bad_objects

    @property
    def within_rto(self) -> bool | None:
        if self.drill is None or self.rto_seconds is None:
            return None
        return self.drill.total_seconds <= self.rto_seconds

    @property
    def passed(self) -> bool:
        """Integrity ok, and a drill (when run) restored matching counts within the RTO."""
        if not self.integrity_ok or self.drill_error:
            return False
        return self.drill is None or (self.drill.ok and self.within_rto is not False)

    def problems(self) -> list[str]:
        """Why it did not pass, one line each (empty when it passed)."""
        out = [f"{key}: {why}" for key, why in self.bad_objects.items()]
        if self.drill_error:
            out.append(f"restore drill failed: {self.drill_error}")
        if self.drill is not None:
            out += [
                f"{c.name}: manifest has {c.expected}, restored {c.restored}" for c in self.drill.mismatches()
            ]
            if self.within_rto is False:
                out.append(
                    f"recovery time {self.drill.total_seconds:.1f}s exceeds the RTO of {self.rto_seconds}s"
                )
        return out

    def record(self) -> VerificationRecord:
        """The stored document (`verification.json`) for this result."""
        drill = None
        if self.drill is not None or self.drill_error is not None:
            report = self.drill.as_dict() if self.drill else {}
            drill = DrillRecord(
                ok=self.drill.ok if self.drill else False,
                error=self.drill_error,
                rto_seconds=self.rto_seconds,
                within_rto=self.within_rto,
                **{k: v for k, v in report.items() if k in DrillRecord.model_fields and k != "ok"},
            )
        return VerificationRecord(
            source=self.source,
            backup_id=self.backup_id,
            checked_at=self.checked_at,
            passed=self.passed,
            integrity=IntegrityRecord(
                ok=self.integrity_ok,
                objects=self.objects_checked,
                bytes=self.bytes_checked,
                bad_objects=self.bad_objects,
            ),
            drill=drill,
        )

    def as_dict(self) -> dict[str, Any]:
        return self.record().to_dict()


def record_verification(store: BackupStore, result: VerificationResult) -> VerificationRecord:
    """Write `verification.json` next to the backup (the only writer of that document)."""
    doc = result.record()
    store.put_json(verification_key(result.source, result.backup_id), doc.to_dict())
    return doc


def record_pitr_drill(
    store: BackupStore, manifest: BackupManifest, pitr: PitrDrillRecord
) -> VerificationRecord:
    """Add a PITR drill's result to the base's `verification.json` (the snapshot drill wrote it just
    before); a base with no record yet is re-hashed first, so the record's integrity is measured."""
    existing = store.read_verification(manifest.source, manifest.backup_id)
    if existing is None:
        result = VerificationResult(manifest.source, manifest.backup_id, datetime.now(UTC))
        check_integrity(store, manifest, result)
        existing = result.record()
    doc = existing.model_copy(update={"pitr": pitr})
    store.put_json(verification_key(manifest.source, manifest.backup_id), doc.to_dict())
    return doc


def check_integrity(store: BackupStore, manifest: BackupManifest, result: VerificationResult) -> None:
    """Re-hash every object; records (not raises) each bad one so all are named."""
    for entry in manifest.objects:
        try:
            store.verify_object(manifest, entry.key)
            result.objects_checked += 1
            result.bytes_checked += entry.bytes
        except BackupIntegrityError as exc:
            where = f"{manifest.source}/{manifest.backup_id}/{entry.key}: "
            result.bad_objects[entry.key] = str(exc).removeprefix(where)


def verify_backup(
    store: BackupStore,
    manifest: BackupManifest,
    *,
    scratch_url: str | None = None,
    token: str | None = None,
    rto_seconds: int | None = None,
    record: bool = True,
    progress: Any = None,
) -> VerificationResult:
    """Integrity check, then (with `scratch_url`) the restore drill; writes verification.json.

    A scratch target that is production, or cannot be identified, raises (UnsafeTarget /
    RestoreError) before anything is read, written or recorded.
    """
    from lastgood.backups.targets import guard_scratch
    from lastgood.engines import get_engine

    if scratch_url:
        guard_scratch(manifest, scratch_url, token)
    result = VerificationResult(
        manifest.source, manifest.backup_id, datetime.now(UTC), rto_seconds=rto_seconds
    )
    check_integrity(store, manifest, result)
    if progress:
        progress(
            f"integrity {'ok' if result.integrity_ok else 'FAILED'}: {result.objects_checked}/"
            f"{len(manifest.objects)} object(s) re-hashed"
        )
    if scratch_url and not result.integrity_ok:
        result.drill_error = (
            "not restored: the integrity check failed (nothing was written to the scratch target)"
        )
    if scratch_url and result.integrity_ok:
        try:  # before any wipe: the scratch URL itself names the database (never the object keys)
            check_target_database(manifest, scratch_url)
        except LastgoodError as exc:
            result.drill_error = f"not restored: {exc}"
    if scratch_url and result.integrity_ok and result.drill_error is None:
        engine = get_engine(manifest.engine)
        try:
            engine.wipe(scratch_url, token=token)
            result.drill = restore_manifest(
                store, manifest, scratch_url, token=token, force=True, progress=progress
            )
        except LastgoodError as exc:
            result.drill_error = str(exc)[:800]
        except Exception as exc:  # the drill's failure is its result, reported and alarmed on
            result.drill_error = redact_text(f"{type(exc).__name__}: {exc}", (scratch_url, token or ""))[:800]
        finally:
            try:
                engine.wipe(scratch_url, token=token)
            except Exception as exc:
                logger.warning("scratch target not wiped", extra={"error": redact_text(str(exc))[:200]})
    if record:
        record_verification(store, result)
    _emit(result)
    from lastgood.storage import audit

    audit.record("verify", result="passed" if result.passed else "failed", **result.as_dict())
    return result


def _emit(result: VerificationResult) -> None:
    from lastgood.core.observability import emit_metrics

    values: dict[str, tuple[str, float]] = {METRIC_INTEGRITY: ("Count", 1 if result.integrity_ok else 0)}
    if result.drill is not None or result.drill_error is not None:
        values[METRIC_SUCCESS] = ("Count", 1 if result.passed else 0)
    if result.drill is not None:
        values[METRIC_RECOVERY] = ("Seconds", result.drill.total_seconds)
    emit_metrics(values, source=result.source)


def record_damaged(store: BackupStore, skipped: list[Skipped]) -> None:
    """A drill that skipped a damaged backup records its failed integrity check (verification.json,
    IntegrityCheckSuccess 0: the integrity alarm fires) instead of passing over it in silence."""
    for item in skipped:
        logger.warning("drill skipped a backup", extra={"skipped": item.line()})
        if item.kind == "damaged" and item.manifest is not None:
            verify_backup(store, item.manifest)


def scratch_target(source_name: str) -> tuple[str, str | None]:
    """(scratch URL, token) for a source's drill, from its config. The token is the scratch's own
    (`scratch_token_secret`), never the source's; whether the target is production is decided by
    server identity in `verify_backup` (`backups.targets`), not by comparing URL strings."""
    from lastgood.backups.targets import target_token
    from lastgood.core.config import get_config
    from lastgood.core.settings import get_secret

    source = get_config().source(source_name)
    if not source.scratch_url_secret:
        raise ConfigError(f"source {source.name!r} has no scratch_url_secret for the restore drill")
    scratch_url = str(get_secret(source.scratch_url_secret))
    token = target_token(
        scratch_url,
        source.scratch_token_secret,
        how=f"set scratch_token_secret in source {source.name!r}'s config",
    )
    return scratch_url, token


def run_drill(
    source_name: str,
    *,
    scratch_url: str | None = None,
    store: BackupStore | None = None,
    progress: Any = None,
) -> VerificationResult:
    """The weekly drill for one source: newest good backup → its scratch target (from config)."""
    from lastgood.core.config import get_config

    source = get_config().source(source_name)
    store = store or BackupStore.from_settings()
    # the newest GOOD backup: a damaged, unreadable or suspect newer one is skipped (and named)
    choice = newest_good(store, source.name)
    record_damaged(store, choice.skipped)
    manifest = choice.manifest
    token: str | None = None
    if scratch_url is None:
        scratch_url, token = scratch_target(source.name)
    started = time.perf_counter()
    result = verify_backup(
        store,
        manifest,
        scratch_url=scratch_url,
        token=token,
        rto_seconds=source.rto_seconds,
        progress=progress,
    )
    result.skipped = choice.skipped
    logger.info(
        "restore drill finished",
        extra={
            "source": source.name,
            "backup_id": manifest.backup_id,
            "skipped": [s.line() for s in choice.skipped],
            "passed": result.passed,
            "recovery_time_seconds": round(result.drill.total_seconds, 3) if result.drill else None,
            "rto_seconds": source.rto_seconds,
            "seconds": round(time.perf_counter() - started, 3),
        },
    )
    return result


@dataclass
class DrillOutcome:
    """One source's drill in a scheduled run: its result, or why it could not run."""

    source: str
    result: VerificationResult | None = None
    error: str | None = None

    @property
    def damaged(self) -> list[str]:
        """Newer backups the drill skipped as damaged: the drill of the source fails on them."""
        skipped = self.result.skipped if self.result is not None else []
        return [s.line() for s in skipped if s.kind != "suspect"]

    @property
    def passed(self) -> bool:
        return self.result is not None and self.result.passed and not self.damaged

    def as_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"source": self.source, "passed": self.passed, "error": self.error}
        if self.result is not None:
            doc |= {
                "backup_id": self.result.backup_id,
                "recovery_time_seconds": round(self.result.drill.total_seconds, 3)
                if self.result.drill
                else None,
                "rto_seconds": self.result.rto_seconds,
                "problems": self.damaged + self.result.problems(),
                "skipped": [s.line() for s in self.result.skipped],
            }
        return doc


def run_drills(source_names: list[str] | None = None, *, progress: Any = None) -> list[DrillOutcome]:
    """Drill every named source (all configured ones by default); one failing never stops the others."""
    from lastgood.core.config import get_config

    names = source_names or [s.name for s in get_config().sources]
    outcomes = []
    for name in names:
        try:
            outcomes.append(DrillOutcome(name, result=run_drill(name, progress=progress)))
        except LastgoodError as exc:
            outcomes.append(DrillOutcome(name, error=str(exc)[:800]))
        except Exception as exc:  # the drill's failure is its result; the caller raises after all ran
            outcomes.append(DrillOutcome(name, error=redact_text(f"{type(exc).__name__}: {exc}")[:800]))
        if outcomes[-1].error is not None:
            logger.error("restore drill could not run", extra={"source": name, "error": outcomes[-1].error})
            from lastgood.core.observability import emit_metrics

            emit_metrics({METRIC_SUCCESS: ("Count", 0)}, source=name)
    return outcomes
