"""The weekly scheduled drill (the verify function): snapshot drills, and point in time for PITR sources.

    run_weekly_drills()            # every configured source; run_weekly_drills(["orders"]) only those

Each source gets its snapshot drill (`lastgood.backups.verify.run_drills`: newest good backup →
scratch target, counts, RTO, `verification.json`). A source with `pitr = true` then gets a PITR
drill to now (`lastgood.pitr.restore.drill_to`): the newest base restored into the same scratch
target and its change log replayed up to the newest committed change, timed against the RTO.
Its result is added to that base's `verification.json` (`PitrDrillRecord`, so the daily summary
reports it) and emitted as `PitrDrillSuccess` / `PitrRecoveryTimeSeconds` (dimension `source`).
A cut change log (a damaged or missing segment) fails the drill with where it stopped. One
source failing never stops the others; the handler raises after all ran.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from lastgood.backups.restore import ProgressFn
from lastgood.backups.store import BackupStore
from lastgood.backups.verification import PitrDrillRecord
from lastgood.backups.verify import DrillOutcome, record_pitr_drill, run_drills
from lastgood.core.errors import LastgoodError
from lastgood.core.observability import emit_metrics, logger
from lastgood.core.redact import redact_text
from lastgood.core.timefmt import iso_z

if TYPE_CHECKING:  # the replay machinery is imported by a PITR drill, not by every verify cold start
    from lastgood.pitr.restore import PitrDrill

METRIC_SUCCESS = "PitrDrillSuccess"
METRIC_RECOVERY = "PitrRecoveryTimeSeconds"


@dataclass
class PitrDrillOutcome:
    """One PITR source's point-in-time drill: its result, or why it could not run."""

    source: str
    to_time: datetime
    base_id: str | None = None
    drill: PitrDrill | None = None
    error: str | None = None

    @property
    def passed(self) -> bool:
        return self.error is None and self.drill is not None and self.drill.passed

    def problems(self) -> list[str]:
        """Why it did not pass, one line each (empty when it passed)."""
        if self.error is not None:
            return [f"PITR drill failed: {self.error}"]
        if self.drill is None:
            return ["PITR drill did not run"]
        out = []
        report = self.drill.report
        if report.stopped:
            out.append(f"PITR drill: the change log was cut: {report.stopped}")
        if not report.base.ok:
            out += [
                f"PITR drill base {c.name}: manifest has {c.expected}, restored {c.restored}"
                for c in report.base.mismatches()
            ]
        if self.drill.recovery_time_s > self.drill.rto_s:
            out.append(
                f"PITR recovery time {self.drill.recovery_time_s:.1f}s exceeds the RTO of {self.drill.rto_s}s"
            )
        return out

    def record(self) -> PitrDrillRecord:
        """What the base's `verification.json` stores of this drill."""
        problems = self.problems()
        if self.drill is None:
            return PitrDrillRecord(
                ok=False, checked_at=datetime.now(UTC), to_time=iso_z(self.to_time), error=problems[0]
            )
        report, last = self.drill.report, self.drill.report.last
        return PitrDrillRecord(
            ok=self.passed,
            checked_at=datetime.now(UTC),
            to_time=report.target_time,
            error="; ".join(problems)[:800] or None,
            stopped=report.stopped,
            last_commit_time=last.commit_time if last else None,
            last_commit_lsn=last.commit_lsn if last else None,
            transactions=report.transactions,
            changes=report.changes,
            segments=report.segments,
            recovery_time_seconds=round(self.drill.recovery_time_s, 3),
            rto_seconds=self.drill.rto_s,
            within_rto=self.drill.recovery_time_s <= self.drill.rto_s,
        )

    def as_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "passed": self.passed,
            "to_time": iso_z(self.to_time),
            "base_id": self.base_id,
            "error": self.error,
            "problems": self.problems(),
        }
        if self.drill is not None:
            last = self.drill.report.last
            doc |= {
                "recovery_time_seconds": round(self.drill.recovery_time_s, 3),
                "rto_seconds": self.drill.rto_s,
                "last_transaction": last.as_dict() if last else None,
                "transactions": self.drill.report.transactions,
                "changes": self.drill.report.changes,
                "segments": self.drill.report.segments,
                "stopped": self.drill.report.stopped,
            }
        return doc


@dataclass
class WeeklyOutcome:
    """A source's scheduled drill: the snapshot drill, and the PITR drill for a PITR source."""

    snapshot: DrillOutcome
    pitr: PitrDrillOutcome | None = None  # None: not a PITR source

    @property
    def source(self) -> str:
        return self.snapshot.source

    @property
    def passed(self) -> bool:
        return self.snapshot.passed and (self.pitr is None or self.pitr.passed)

    def as_dict(self) -> dict[str, Any]:
        doc = self.snapshot.as_dict()
        return doc | {
            "passed": self.passed,
            "snapshot_passed": self.snapshot.passed,
            "pitr": self.pitr.as_dict() if self.pitr is not None else None,
        }


def run_pitr_drill(
    source: str, *, store: BackupStore | None = None, progress: ProgressFn | None = None
) -> PitrDrillOutcome:
    """A PITR drill to now into the source's scratch target; recorded on the base it restored."""
    from lastgood.pitr.restore import choose_base, drill_to

    store = store or BackupStore.from_settings()
    outcome = PitrDrillOutcome(source, to_time=datetime.now(UTC))
    manifest = None
    try:
        manifest, _ = choose_base(store, source, to_time=outcome.to_time, to_lsn=None)
        outcome.base_id = manifest.backup_id
        outcome.drill = drill_to(source, to_time=outcome.to_time, store=store, progress=progress)
    except LastgoodError as exc:
        outcome.error = str(exc)[:800]
    except Exception as exc:  # the drill's failure is its result; the caller raises after all ran
        outcome.error = redact_text(f"{type(exc).__name__}: {exc}")[:800]
    if manifest is not None:
        try:
            record_pitr_drill(store, manifest, outcome.record())
        except Exception as exc:  # an unrecorded drill fails: the summary could not report it
            outcome.error = redact_text(f"not recorded: {type(exc).__name__}: {exc}")[:800]
    values: dict[str, tuple[str, float]] = {METRIC_SUCCESS: ("Count", 1 if outcome.passed else 0)}
    if outcome.drill is not None:
        values[METRIC_RECOVERY] = ("Seconds", outcome.drill.recovery_time_s)
    emit_metrics(values, source=source)
    log = logger.info if outcome.passed else logger.error
    log("PITR drill finished", extra={"source": source, **outcome.as_dict()})
    return outcome


def run_weekly_drills(
    source_names: list[str] | None = None, *, progress: ProgressFn | None = None
) -> list[WeeklyOutcome]:
    """Every named source (all configured ones by default): its snapshot drill, then for a PITR
    source its point-in-time drill; one failing never stops the others."""
    from lastgood.core.config import get_config

    config = get_config()
    pitr_sources = {s.name for s in config.sources if s.pitr}
    outcomes: list[WeeklyOutcome] = []
    for name in source_names or [s.name for s in config.sources]:
        (snapshot,) = run_drills([name], progress=progress)
        outcome = WeeklyOutcome(snapshot)
        if name in pitr_sources:
            outcome.pitr = run_pitr_drill(name, progress=progress)
        outcomes.append(outcome)
    return outcomes
