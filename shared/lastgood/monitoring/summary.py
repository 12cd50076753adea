"""The daily summary (seed 004: a confirmation that backups ran, even when all is fine).

Two halves. `build_summary(inputs, now)` is pure: it turns what was gathered
into the subject and plain-text message people read, plus the list of issues.
`summary_gather.gather(now)` does the I/O: backup manifests and restore-drill results from the
backup bucket (`lastgood.backups.store`), dataset freshness from the site bucket
(`live/data/<name>.json` LastModified) and fallback counts over the last 24 h
from the CloudWatch metric `FallbackUsed`. A part that cannot be read is shown
as unknown with the reason — the summary is still sent, and says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from lastgood.core import timefmt
from lastgood.core.observability import logger
from lastgood.core.timefmt import human_duration
from lastgood.monitoring.replica import ReplicaStatus, summary_section

FALLBACK_METRIC = "FallbackUsed"
WINDOW = timedelta(hours=24)


# --------------------------------------------------------------------------- inputs


@dataclass
class DrillStatus:
    """The newest restore drill of a source (`verification.json`)."""

    backup_id: str
    passed: bool
    at: datetime | None = None
    recovery_time_s: float | None = None
    error: str | None = None


@dataclass
class PitrDrillStatus(DrillStatus):
    """The newest point-in-time drill of a PITR source (`verification.json` `pitr` of a base)."""

    last_commit_time: str | None = None  # the newest change the drill replayed


@dataclass
class SourceStatus:
    name: str
    rpo_s: int
    rto_s: int
    last_backup_id: str | None = None
    last_backup_at: datetime | None = None
    size_bytes: int | None = None
    duration_s: float | None = None
    backups: int = 0
    drill: DrillStatus | None = None
    error: str | None = None
    # PITR sources (`lastgood.pitr`): the newest committed change segment — their RPO is its age
    pitr: bool = False
    newest_segment_at: datetime | None = None
    pitr_drill: PitrDrillStatus | None = None


@dataclass
class DatasetStatus:
    name: str
    freshness_s: int
    last_modified: datetime | None = None
    error: str | None = None


@dataclass
class SummaryInputs:
    sources: list[SourceStatus] = field(default_factory=list)
    datasets: list[DatasetStatus] = field(default_factory=list)
    # FallbackUsed sums over the window, by dimension label ("" = no dimensions); None = unknown.
    fallbacks: dict[str, int] | None = field(default_factory=dict)
    fallbacks_error: str | None = None
    stage: str = "dev"
    # cross-region replica (lastgood.monitoring.replica); None = no [replica] configured
    replica: ReplicaStatus | None = None


@dataclass
class Summary:
    subject: str
    message: str
    issues: list[str]
    generated_at: datetime
    data: dict[str, Any]

    @property
    def ok(self) -> bool:
        return not self.issues

    def as_dict(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "message": self.message,
            "ok": self.ok,
            "issues": self.issues,
            "generated_at": iso_seconds(self.generated_at),
            **self.data,
        }


# --------------------------------------------------------------------------- pure formatting


def iso_seconds(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def human_bytes(size: int | None) -> str:
    return "?" if size is None else timefmt.human_bytes(size)


def _age(
    row: dict[str, Any], last: datetime, budget_s: float, now: datetime, states: tuple[str, str]
) -> tuple[float, bool]:
    """Age of `last` against its budget, recorded in `row` (`age_s`, `state` over/within)."""
    age = (now - last).total_seconds()
    over = age > budget_s
    row["age_s"] = round(age, 1)
    row["state"] = states[0] if over else states[1]
    return age, over


def _source_line(src: SourceStatus, now: datetime, issues: list[str]) -> tuple[str, dict[str, Any]]:
    row: dict[str, Any] = {
        "source": src.name,
        "rpo_s": src.rpo_s,
        "last_backup_id": src.last_backup_id,
        "last_backup_at": iso_seconds(src.last_backup_at),
        "size_bytes": src.size_bytes,
        "duration_s": src.duration_s,
        "age_s": None,
        "state": "unknown",
    }
    if src.error:
        issues.append(f"{src.name}: backups could not be read ({src.error})")
        return f"  {src.name:<10} UNKNOWN  could not read backups: {src.error}", row
    if src.last_backup_at is None:
        row["state"] = "missing"
        issues.append(f"{src.name}: no complete backup found")
        return f"  {src.name:<10} MISSING  no complete backup found (RPO {human_duration(src.rpo_s)})", row
    if src.pitr:  # the RPO is the newest change segment's age (or the base's, before the first one)
        newest = max(src.newest_segment_at or src.last_backup_at, src.last_backup_at)
        age, late = _age(row, newest, src.rpo_s, now, ("late", "ok"))
        row["pitr_segment_at"] = iso_seconds(src.newest_segment_at)
        what = "newest PITR change segment" if src.newest_segment_at else "newest PITR base (no segment yet)"
    else:
        age, late = _age(row, src.last_backup_at, src.rpo_s, now, ("late", "ok"))
        what = "newest backup"
    if late:
        issues.append(f"{src.name}: {what} is {human_duration(age)} old, RPO is {human_duration(src.rpo_s)}")
    took = f", took {human_duration(src.duration_s)}" if src.duration_s is not None else ""
    segment = (
        f", PITR: newest change segment {human_duration((now - src.newest_segment_at).total_seconds())} ago"
        if src.pitr and src.newest_segment_at
        else (", PITR: no change segment yet" if src.pitr else "")
    )
    return (
        f"  {src.name:<10} {'LATE' if late else 'OK':<8} last {iso_seconds(src.last_backup_at)} "
        f"({human_duration((now - src.last_backup_at).total_seconds())} ago, RPO {human_duration(src.rpo_s)}), "
        f"{human_bytes(src.size_bytes)}{took}, {src.backups} kept{segment}"
    ), row


def _drill_line(src: SourceStatus, issues: list[str]) -> tuple[str, dict[str, Any] | None]:
    drill = src.drill
    if drill is None:
        return f"  {src.name:<10} no restore drill recorded yet", None
    row = {
        "source": src.name,
        "backup_id": drill.backup_id,
        "passed": drill.passed,
        "at": iso_seconds(drill.at),
        "recovery_time_s": drill.recovery_time_s,
        "rto_s": src.rto_s,
        "within_rto": None if drill.recovery_time_s is None else drill.recovery_time_s <= src.rto_s,
    }
    when = iso_seconds(drill.at) or drill.backup_id
    recovery = f"recovery {human_duration(drill.recovery_time_s)} (RTO {human_duration(src.rto_s)})"
    if not drill.passed:
        issues.append(
            f"{src.name}: restore drill of {drill.backup_id} FAILED{': ' + drill.error if drill.error else ''}"
        )
        return f"  {src.name:<10} FAILED   {when}, {recovery}{': ' + drill.error if drill.error else ''}", row
    slow = drill.recovery_time_s is not None and drill.recovery_time_s > src.rto_s
    if slow:
        issues.append(
            f"{src.name}: restore drill took {human_duration(drill.recovery_time_s)}, RTO is {human_duration(src.rto_s)}"
        )
    return f"  {src.name:<10} {'SLOW' if slow else 'PASSED':<8} {when}, {recovery}", row


def _pitr_drill_line(src: SourceStatus, issues: list[str]) -> tuple[str, dict[str, Any] | None]:
    drill = src.pitr_drill
    if drill is None:
        return f"  {src.name:<10} PITR     no point-in-time drill recorded yet", None
    within = None if drill.recovery_time_s is None else drill.recovery_time_s <= src.rto_s
    row = {
        "source": src.name,
        "backup_id": drill.backup_id,
        "passed": drill.passed,
        "at": iso_seconds(drill.at),
        "recovery_time_s": drill.recovery_time_s,
        "rto_s": src.rto_s,
        "within_rto": within,
        "last_commit_time": drill.last_commit_time,
    }
    when = iso_seconds(drill.at) or drill.backup_id
    recovery = f"recovery {human_duration(drill.recovery_time_s)} (RTO {human_duration(src.rto_s)})"
    if not drill.passed:
        why = f": {drill.error}" if drill.error else ""
        issues.append(f"{src.name}: point-in-time drill of {drill.backup_id} FAILED{why}")
        return f"  {src.name:<10} PITR FAILED {when}, {recovery}{why}", row
    to = f", replayed to {drill.last_commit_time}" if drill.last_commit_time else ", no change after the base"
    return f"  {src.name:<10} PITR PASSED {when}, {recovery}{to}", row


def _dataset_line(ds: DatasetStatus, now: datetime, issues: list[str]) -> tuple[str, dict[str, Any]]:
    row: dict[str, Any] = {
        "dataset": ds.name,
        "last_modified": iso_seconds(ds.last_modified),
        "freshness_s": ds.freshness_s,
        "age_s": None,
        "state": "unknown",
    }
    if ds.error:
        issues.append(f"dataset {ds.name}: {ds.error}")
        return f"  {ds.name:<10} UNKNOWN  {ds.error}", row
    if ds.last_modified is None:
        row["state"] = "missing"
        issues.append(f"dataset {ds.name}: never published")
        return f"  {ds.name:<10} MISSING  never published", row
    age, stale = _age(row, ds.last_modified, ds.freshness_s, now, ("stale", "fresh"))
    if stale:
        issues.append(
            f"dataset {ds.name}: last published {human_duration(age)} ago (freshness {human_duration(ds.freshness_s)})"
        )
    return (
        f"  {ds.name:<10} {'STALE' if stale else 'FRESH':<8} updated {iso_seconds(ds.last_modified)} "
        f"({human_duration(age)} ago, freshness {human_duration(ds.freshness_s)})"
    ), row


def build_summary(inputs: SummaryInputs, now: datetime) -> Summary:
    """Subject, message and issues from gathered inputs (pure: no I/O, no clock)."""
    now = now.astimezone(UTC)
    issues: list[str] = []
    backup_lines, backup_rows = [], []
    for src in inputs.sources:
        line, row = _source_line(src, now, issues)
        backup_lines.append(line)
        backup_rows.append(row)
    drill_lines, drill_rows, pitr_drill_rows = [], [], []
    for src in inputs.sources:
        line, drill_row = _drill_line(src, issues)
        drill_lines.append(line)
        if drill_row is not None:
            drill_rows.append(drill_row)
        if src.pitr:  # PITR sources: the newest point-in-time drill too
            line, pitr_row = _pitr_drill_line(src, issues)
            drill_lines.append(line)
            if pitr_row is not None:
                pitr_drill_rows.append(pitr_row)
    dataset_lines, dataset_rows = [], []
    for ds in inputs.datasets:
        line, row = _dataset_line(ds, now, issues)
        dataset_lines.append(line)
        dataset_rows.append(row)

    if inputs.fallbacks is None:
        fallback_total: int | None = None
        fallback_lines = [f"  unknown: {inputs.fallbacks_error or 'metrics could not be read'}"]
    else:
        fallback_total = sum(inputs.fallbacks.values())
        fallback_lines = [f"  total {fallback_total}"]
        fallback_lines += [
            f"  {label or '(no dimensions)'}: {count}"
            for label, count in sorted(inputs.fallbacks.items())
            if count
        ]
        if fallback_total:
            fallback_lines.append("  (served from a fallback layer: check the primary's health)")

    # --- cross-region replica: newest committed copy per source, unreachable, lagging ---
    replica_lines, replica_data = summary_section(inputs.replica, issues)

    day = now.strftime("%Y-%m-%d")
    verdict = "OK" if not issues else f"{len(issues)} issue{'s' if len(issues) != 1 else ''}"
    subject = f"[lastgood {inputs.stage}] Daily summary {day}: {verdict}"
    headline = (
        "All backups are within their RPO and every check passed."
        if not issues
        else "Needs attention:\n" + "\n".join(f"  - {issue}" for issue in issues)
    )
    sections = [
        f"lastgood daily summary for {now.strftime('%Y-%m-%d %H:%M UTC')} (stage {inputs.stage})",
        headline,
        "Backups (newest complete backup per source)",
        *(backup_lines or ["  no sources configured"]),
        "Restore drills (newest verification)",
        *(drill_lines or ["  no sources configured"]),
        "Datasets (live copy)",
        *(dataset_lines or ["  no datasets configured"]),
        "Fallbacks served in the last 24 h",
        *fallback_lines,
        *replica_lines,
    ]
    # Blank line before each section heading (lines that do not start with two spaces).
    message_lines: list[str] = []
    for i, line in enumerate(sections):
        if i > 0 and not line.startswith("  "):
            message_lines.append("")
        message_lines.append(line)
    data = {
        "backups": backup_rows,
        "drills": drill_rows,
        "pitr_drills": pitr_drill_rows,
        "datasets": dataset_rows,
        "fallbacks_24h": {"total": fallback_total, "by_dimension": inputs.fallbacks},
    }
    if replica_data is not None:
        data["replica"] = replica_data
    return Summary(subject, "\n".join(message_lines) + "\n", issues, now, data)


def run(*, publish: bool = True, now: datetime | None = None) -> dict[str, Any]:
    """Gather, build and (optionally) publish the summary; returns it with the SNS message id."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    from lastgood.monitoring.summary_gather import gather

    summary = build_summary(gather(moment), moment)
    result = summary.as_dict()
    result["published"] = False
    if publish:
        from lastgood.monitoring import alerts

        result["message_id"] = alerts.publish(
            summary.subject,
            summary.message,
            severity="info" if summary.ok else "warning",
            attributes={"kind": "daily-summary"},
        )
        result["published"] = True
    logger.info(
        "daily summary built", extra={"issues": len(summary.issues), "published": result["published"]}
    )
    return result
