"""verification.json documents built by their writer (`backups.verify`), never by hand."""

from __future__ import annotations

from datetime import UTC, datetime

from lastgood.backups.restore import RestoreReport, compare_counts
from lastgood.backups.verify import VerificationResult, record_verification


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
