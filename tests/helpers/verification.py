"""verification.json documents built by their writer (`backups.verify`), never by hand."""

from __future__ import annotations

from datetime import UTC, datetime

from lastgood.backups.restore import RestoreReport, compare_counts
from lastgood.backups.verification import VerificationRecord
from lastgood.backups.verify import VerificationResult, record_verification
from lastgood.pitr.drill import PitrDrillOutcome
from lastgood.pitr.replay import Applied
from lastgood.pitr.restore import PitrDrill, PitrRestoreReport


def integrity_only(source: str, backup_id: str, *, ok: bool = True) -> VerificationResult:
    result = VerificationResult(source, backup_id, datetime.now(UTC), objects_checked=1, bytes_checked=1)
    if not ok:
        result.bad_objects = {"data.bin": "SHA-256 differs"}
    return result


def drill(
    source: str,
    backup_id: str,
    *,
    seconds: float = 2.0,
    rto: int | None = 60,
    restored: int = 3,
    checked_at: datetime | None = None,
) -> VerificationResult:
    """A restore drill's result: `seconds` of recovery against `rto`, 3 records expected."""
    report = RestoreReport(source, backup_id, "postgres", "postgresql://scratch/s", 0.5, seconds - 0.5)
    report.checks = compare_counts({"public.t": 3}, {"public.t": restored}, None)
    return VerificationResult(
        source, backup_id, checked_at or datetime.now(UTC), drill=report, rto_seconds=rto, objects_checked=1
    )


def write(store, result: VerificationResult) -> None:
    record_verification(store, result)


def pitr_drill(
    source: str,
    base_id: str,
    *,
    seconds: float = 3.0,
    rto: int = 60,
    stopped: str | None = None,
    last_commit_time: str = "2025-01-28T01:55:00Z",
) -> PitrDrillOutcome:
    """A weekly PITR drill's outcome (`lastgood.pitr.drill`): base restored + 2 transactions replayed."""
    base = RestoreReport(source, base_id, "postgres", "postgresql://scratch/s", 0.5, 1.0)
    base.checks = compare_counts({"public.t": 3}, {"public.t": 3}, None)
    last = Applied(7, "0/16B3748", "0/16B3778", last_commit_time)
    report = PitrRestoreReport(
        source, base_id, "2025-01-28T02:00:00Z", None, base, last, 2, 4, 2, 1, 1.0, stopped
    )
    return PitrDrillOutcome(
        source, datetime(2025, 1, 28, 2, tzinfo=UTC), base_id, drill=PitrDrill(report, seconds, rto)
    )


def with_pitr(result: VerificationResult, outcome: PitrDrillOutcome) -> VerificationRecord:
    """The snapshot drill's record with the PITR drill added, as `record_pitr_drill` stores it."""
    return result.record().model_copy(update={"pitr": outcome.record()})
