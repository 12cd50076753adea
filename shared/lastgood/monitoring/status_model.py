"""The status page's typed inputs, built from the stored documents' own models (pure, no I/O).

`status_gather` reads the backup bucket (`BackupStore.list_backups`: manifests, pin records,
acceptance and verification records, as `BackupListing`), the audit trail's failed backup
runs (`AuditRecord`) and the datasets' freshness (`monitoring.freshness.DatasetFreshness`);
this module turns them into what `status_page.render` draws:

- one `BackupMark` per backup in the window, whose `state` is `verified` (a passed
  verification), `complete`, `suspect` (committed marked suspect, not accepted) or `failed`
  (a run the audit trail records as failed — it left no backup — or a backup without a
  readable manifest); `pinned` is a flag on top of the state (a pinned backup keeps its state);
- one `DrillMark` per restore drill (a verification with a drill section) with its recovery
  time against the source's RTO;
- the RPO coverage: the union of `[finished, finished + RPO]` over the good backups (complete
  or verified, not suspect), whose gaps are the times the source was outside its RPO.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal

from lastgood.core.timefmt import human_duration, parse_time, to_utc

if TYPE_CHECKING:
    from lastgood.backups.catalog import BackupListing
    from lastgood.monitoring.freshness import DatasetFreshness
    from lastgood.storage.audit import AuditRecord

WINDOW = timedelta(days=30)
MarkState = Literal["verified", "complete", "suspect", "failed"]
STATES: tuple[MarkState, ...] = ("verified", "complete", "suspect", "failed")
Health = Literal["ok", "attention", "unknown"]


@dataclass(frozen=True)
class BackupMark:
    """One backup (or one failed backup run) on a source's timeline."""

    backup_id: str
    at: datetime  # when it finished (manifest), else when it was started/recorded
    state: MarkState
    pinned: bool = False
    size_bytes: int | None = None
    duration_s: float | None = None
    reason: str | None = None  # suspect reason, failure cause, pin reason

    @property
    def good(self) -> bool:
        """Counts for the RPO: committed and not suspect."""
        return self.state in ("verified", "complete")


@dataclass(frozen=True)
class DrillMark:
    """One restore drill: when it ran, on which backup, and its recovery time against the RTO."""

    backup_id: str
    at: datetime
    passed: bool
    recovery_time_s: float | None
    rto_s: int
    error: str | None = None

    @property
    def over_rto(self) -> bool:
        return self.recovery_time_s is not None and self.recovery_time_s > self.rto_s


@dataclass
class SourceTimeline:
    name: str
    engine: str
    rpo_s: int
    rto_s: int
    marks: list[BackupMark] = field(default_factory=list)  # oldest first
    drills: list[DrillMark] = field(default_factory=list)  # oldest first
    error: str | None = None  # the source's backups could not be read

    @property
    def newest_good(self) -> BackupMark | None:
        good = [m for m in self.marks if m.good]
        return good[-1] if good else None

    def counts(self) -> dict[MarkState, int]:
        out: dict[MarkState, int] = dict.fromkeys(STATES, 0)
        for mark in self.marks:
            out[mark.state] += 1
        return out

    def coverage(self, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
        """Merged `[finished, finished + RPO]` intervals of good backups, clipped to [start, end]."""
        spans: list[tuple[datetime, datetime]] = []
        rpo = timedelta(seconds=self.rpo_s)
        for mark in sorted((m for m in self.marks if m.good), key=lambda m: m.at):
            lo, hi = max(mark.at, start), min(mark.at + rpo, end)
            if hi <= lo:
                continue
            if spans and lo <= spans[-1][1]:
                spans[-1] = (spans[-1][0], max(spans[-1][1], hi))
            else:
                spans.append((lo, hi))
        return spans

    def issues(self, now: datetime) -> list[str]:
        if self.error:
            return [f"{self.name}: backups could not be read ({self.error})"]
        out: list[str] = []
        newest = self.newest_good
        if newest is None:
            out.append(f"{self.name}: no good backup in the last {WINDOW.days} days")
        elif (age := (now - newest.at).total_seconds()) > self.rpo_s:
            out.append(
                f"{self.name}: newest good backup is {human_duration(age)} old, "
                f"RPO is {human_duration(self.rpo_s)}"
            )
        if self.drills:
            last = self.drills[-1]
            if not last.passed:
                out.append(f"{self.name}: last restore drill FAILED ({last.error or 'see the record'})")
            elif last.over_rto:
                out.append(
                    f"{self.name}: last restore drill took {human_duration(last.recovery_time_s)}, "
                    f"RTO is {human_duration(self.rto_s)}"
                )
        return out


@dataclass(frozen=True)
class DatasetRow:
    name: str
    freshness_s: int
    last_modified: datetime | None
    age_s: float | None
    error: str | None  # "not published", "stale", "damaged: …", or why it could not be read

    @property
    def ok(self) -> bool:
        return self.error is None

    @classmethod
    def of(cls, item: DatasetFreshness) -> DatasetRow:
        return cls(item.dataset, item.budget_seconds, item.last_modified, item.age_seconds, item.error)


@dataclass
class StatusInputs:
    stage: str
    generated_at: datetime
    sources: list[SourceTimeline] = field(default_factory=list)
    datasets: list[DatasetRow] = field(default_factory=list)
    datasets_error: str | None = None
    notes: list[str] = field(default_factory=list)  # parts that could not be read (not issues)

    @property
    def window_start(self) -> datetime:
        return self.generated_at - WINDOW

    def issues(self) -> list[str]:
        out = [issue for src in self.sources for issue in src.issues(self.generated_at)]
        if self.datasets_error:
            out.append(f"datasets could not be read ({self.datasets_error})")
        out += [f"dataset {d.name}: {d.error}" for d in self.datasets if d.error]
        return out

    @property
    def health(self) -> Health:
        if not self.sources and not self.datasets:
            return "unknown"
        return "attention" if self.issues() else "ok"


# --------------------------------------------------------------------------- from the stored models


def _finished(item: BackupListing) -> datetime:
    if item.manifest is not None:
        return to_utc(parse_time(item.manifest.finished_at))
    return to_utc(item.created_at)


def mark_from_listing(item: BackupListing) -> BackupMark:
    """A listed backup as a timeline mark (state from its status, suspect flag and verification)."""
    manifest = item.manifest
    reason: str | None = item.pin_reason if item.pinned else None
    state: MarkState
    if item.status == "verified":
        state = "verified"
    elif item.status == "complete":
        state = "suspect" if item.suspect else "complete"
        if item.suspect and manifest is not None:
            reason = manifest.suspect_reason
    elif item.status == "unreadable":
        state, reason = "failed", item.unreadable_reason or "manifest unreadable"
    else:
        state, reason = "failed", "no manifest: the run did not commit (failed, or still running)"
    return BackupMark(
        backup_id=item.backup_id,
        at=_finished(item),
        state=state,
        pinned=item.pinned,
        size_bytes=manifest.totals.bytes if manifest is not None else item.size,
        duration_s=manifest.duration_s if manifest is not None else None,
        reason=reason,
    )


def drill_from_listing(item: BackupListing, rto_s: int) -> DrillMark | None:
    """The restore drill a listed backup's verification records; None if it was not a drill."""
    from lastgood.monitoring.summary_gather import drill_from_verification

    record = item.verification
    if record is None or record.drill is None:
        return None
    drill = drill_from_verification(record)
    if drill is None or drill.at is None:  # pragma: no cover - a drill record always has checked_at
        return None
    return DrillMark(
        backup_id=drill.backup_id,
        at=to_utc(drill.at),
        passed=drill.passed,
        recovery_time_s=drill.recovery_time_s,
        rto_s=record.drill.rto_seconds or rto_s,
        error=drill.error,
    )


def mark_from_failed_run(record: AuditRecord) -> BackupMark | None:
    """A backup run the audit trail records as failed (it committed nothing); None otherwise."""
    extra = record.model_extra or {}
    if record.result != "failed" or record.kind != "backup":
        return None
    return BackupMark(
        backup_id=str(extra.get("backup_id") or record.id),
        at=to_utc(parse_time(record.at)),
        state="failed",
        reason=str(extra.get("error") or "backup run failed")[:300],
    )


def build_timeline(
    name: str,
    engine: str,
    rpo_s: int,
    rto_s: int,
    listings: list[BackupListing],
    failed_runs: list[AuditRecord],
    *,
    now: datetime,
) -> SourceTimeline:
    """One source's timeline over the window ending at `now` from its listings and failed runs."""
    start = now - WINDOW
    timeline = SourceTimeline(name, engine, rpo_s, rto_s)
    seen: set[str] = set()
    marks: list[BackupMark] = []
    for item in listings:
        mark = mark_from_listing(item)
        if start <= mark.at <= now + timedelta(minutes=5):
            marks.append(mark)
            seen.add(item.backup_id)
        drill = drill_from_listing(item, rto_s)
        if drill is not None and start <= drill.at:
            timeline.drills.append(drill)
    for record in failed_runs:
        failed = mark_from_failed_run(record)
        # A failed run's objects are normally deleted; if they were left, the listing shows it already.
        if failed is not None and failed.backup_id not in seen and start <= failed.at <= now:
            marks.append(failed)
            seen.add(failed.backup_id)
    timeline.marks = sorted(marks, key=lambda m: (m.at, m.backup_id))
    timeline.drills.sort(key=lambda d: d.at)
    return timeline
