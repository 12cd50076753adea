"""The daily summary (seed 004: a confirmation that backups ran, even when all is fine).

Two halves. `build_summary(inputs, now)` is pure: it turns what was gathered
into the subject and plain-text message people read, plus the list of issues.
`gather(now)` does the I/O: backup manifests and restore-drill results from the
backup bucket (`lastgood.backups.store`), dataset freshness from the site bucket
(`live/data/<name>.json` LastModified) and fallback counts over the last 24 h
from the CloudWatch metric `FallbackUsed`. A part that cannot be read is shown
as unknown with the reason — the summary is still sent, and says so.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from lastgood.backups.verification import VerificationRecord
from lastgood.core.observability import logger

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
            "generated_at": _iso(self.generated_at),
            **self.data,
        }


# --------------------------------------------------------------------------- pure formatting


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def human_duration(seconds: float | None) -> str:
    """`45s`, `12m`, `3h 05m`, `2d 4h` (None → `?`)."""
    if seconds is None:
        return "?"
    total = max(0, round(seconds))
    if total < 60:
        return f"{total}s"
    minutes, _ = divmod(total, 60)
    if minutes < 60:
        return f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h {minutes:02d}m" if minutes else f"{hours}h"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours}h" if hours else f"{days}d"


def human_bytes(size: int | None) -> str:
    if size is None:
        return "?"
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"  # pragma: no cover


def _source_line(src: SourceStatus, now: datetime, issues: list[str]) -> tuple[str, dict[str, Any]]:
    row: dict[str, Any] = {
        "source": src.name,
        "rpo_s": src.rpo_s,
        "last_backup_id": src.last_backup_id,
        "last_backup_at": _iso(src.last_backup_at),
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
    age = (now - src.last_backup_at).total_seconds()
    row["age_s"] = round(age, 1)
    late = age > src.rpo_s
    row["state"] = "late" if late else "ok"
    if late:
        issues.append(
            f"{src.name}: newest backup is {human_duration(age)} old, RPO is {human_duration(src.rpo_s)}"
        )
    took = f", took {human_duration(src.duration_s)}" if src.duration_s is not None else ""
    return (
        f"  {src.name:<10} {'LATE' if late else 'OK':<8} last {_iso(src.last_backup_at)} "
        f"({human_duration(age)} ago, RPO {human_duration(src.rpo_s)}), "
        f"{human_bytes(src.size_bytes)}{took}, {src.backups} kept"
    ), row


def _drill_line(src: SourceStatus, issues: list[str]) -> tuple[str, dict[str, Any] | None]:
    drill = src.drill
    if drill is None:
        return f"  {src.name:<10} no restore drill recorded yet", None
    row = {
        "source": src.name,
        "backup_id": drill.backup_id,
        "passed": drill.passed,
        "at": _iso(drill.at),
        "recovery_time_s": drill.recovery_time_s,
        "rto_s": src.rto_s,
        "within_rto": None if drill.recovery_time_s is None else drill.recovery_time_s <= src.rto_s,
    }
    when = _iso(drill.at) or drill.backup_id
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


def _dataset_line(ds: DatasetStatus, now: datetime, issues: list[str]) -> tuple[str, dict[str, Any]]:
    row: dict[str, Any] = {
        "dataset": ds.name,
        "last_modified": _iso(ds.last_modified),
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
    age = (now - ds.last_modified).total_seconds()
    row["age_s"] = round(age, 1)
    stale = age > ds.freshness_s
    row["state"] = "stale" if stale else "fresh"
    if stale:
        issues.append(
            f"dataset {ds.name}: last published {human_duration(age)} ago (freshness {human_duration(ds.freshness_s)})"
        )
    return (
        f"  {ds.name:<10} {'STALE' if stale else 'FRESH':<8} updated {_iso(ds.last_modified)} "
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
    drill_lines, drill_rows = [], []
    for src in inputs.sources:
        line, drill_row = _drill_line(src, issues)
        drill_lines.append(line)
        if drill_row is not None:
            drill_rows.append(drill_row)
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
        "datasets": dataset_rows,
        "fallbacks_24h": {"total": fallback_total, "by_dimension": inputs.fallbacks},
    }
    return Summary(subject, "\n".join(message_lines) + "\n", issues, now, data)


# --------------------------------------------------------------------------- gathering (I/O)


def drill_from_verification(record: VerificationRecord) -> DrillStatus | None:
    """The drill a `verification.json` records; None for an integrity-only verify (not a drill)."""
    if record.drill is None:
        return None
    drill = record.drill
    error = drill.error
    if error is None and not record.integrity.ok:
        error = "integrity check failed: " + ", ".join(sorted(record.integrity.bad_objects))
    if error is None and record.over_rto:
        error = f"recovery time {drill.recovery_time_seconds}s exceeds the RTO of {drill.rto_seconds}s"
    if error is None and not drill.ok:
        error = "restored counts differ: " + ", ".join(
            f"{name} expected {c.expected}, restored {c.restored}"
            for name, c in drill.counts.items()
            if c.expected != c.restored
        )
    return DrillStatus(
        backup_id=record.backup_id,
        passed=record.passed,
        at=record.checked_at,
        recovery_time_s=drill.recovery_time_seconds,
        error=error[:200] if error else None,
    )


def _gather_sources(now: datetime) -> list[SourceStatus]:
    from lastgood.backups.store import BackupStore
    from lastgood.core.config import get_config

    config = get_config()
    out = [SourceStatus(s.name, s.rpo_seconds, s.rto_seconds) for s in config.sources]
    try:
        store = BackupStore.from_settings()
    except Exception as exc:
        for src in out:
            src.error = f"{type(exc).__name__}: {exc}"[:200]
        return out
    for src in out:
        try:
            listings = store.list_backups(src.name)
        except Exception as exc:  # one unreadable source must not hide the others
            src.error = f"{type(exc).__name__}: {exc}"[:200]
            continue
        committed = [b for b in listings if b.committed]
        src.backups = len(committed)
        if committed:
            newest = committed[0]
            src.last_backup_id = newest.backup_id
            src.last_backup_at = (
                datetime.fromisoformat(newest.manifest.finished_at.replace("Z", "+00:00"))
                if newest.manifest is not None
                else newest.created_at
            )
            src.size_bytes = newest.manifest.totals.bytes if newest.manifest is not None else newest.size
            src.duration_s = newest.manifest.duration_s if newest.manifest is not None else None
        for item in committed:  # newest first: the newest verification that was a drill
            record = item.verification
            drill = drill_from_verification(record) if record is not None else None
            if drill is not None:
                src.drill = drill
                break
    return out


def _gather_datasets() -> list[DatasetStatus]:
    from botocore.exceptions import BotoCoreError, ClientError

    from lastgood.core import aws
    from lastgood.core.config import get_config
    from lastgood.core.settings import get_settings
    from lastgood.site.keys import live_key
    from lastgood.storage.s3 import error_code, is_not_found

    config = get_config()
    out = [DatasetStatus(d.name, d.freshness_seconds) for d in config.datasets]
    bucket = get_settings().site_bucket
    for ds in out:
        if not bucket:
            ds.error = "SITE_BUCKET is not set"
            continue
        try:
            head = aws.client("s3").head_object(Bucket=bucket, Key=live_key(ds.name))
            ds.last_modified = head["LastModified"]
        except ClientError as exc:
            if not is_not_found(exc):
                ds.error = f"S3 {error_code(exc)}"
        except BotoCoreError as exc:
            ds.error = type(exc).__name__
    return out


def _gather_fallbacks(now: datetime) -> tuple[dict[str, int] | None, str | None]:
    from botocore.exceptions import BotoCoreError, ClientError

    from lastgood.core import aws
    from lastgood.core.observability import NAMESPACE

    try:
        cloudwatch = aws.client("cloudwatch")
        found: list[list[dict[str, str]]] = []
        for page in cloudwatch.get_paginator("list_metrics").paginate(
            Namespace=NAMESPACE, MetricName=FALLBACK_METRIC
        ):
            found.extend(m.get("Dimensions", []) for m in page.get("Metrics", []))
        counts: dict[str, int] = {}
        for dims in found or [[]]:
            stats = cloudwatch.get_metric_statistics(
                Namespace=NAMESPACE,
                MetricName=FALLBACK_METRIC,
                Dimensions=dims,
                StartTime=now - WINDOW,
                EndTime=now,
                Period=int(WINDOW.total_seconds()),
                Statistics=["Sum"],
            )
            total = sum(float(p.get("Sum", 0)) for p in stats.get("Datapoints", []))
            label = ",".join(f"{d['Name']}={d['Value']}" for d in dims if d.get("Name") != "service")
            counts[label] = counts.get(label, 0) + round(total)
        return counts, None
    except (BotoCoreError, ClientError) as exc:
        return None, type(exc).__name__


def gather(now: datetime | None = None) -> SummaryInputs:
    """Read everything the summary reports; failures become per-part errors."""
    from lastgood.core.settings import get_settings

    moment = (now or datetime.now(UTC)).astimezone(UTC)
    fallbacks, fallbacks_error = _gather_fallbacks(moment)
    return SummaryInputs(
        sources=_gather_sources(moment),
        datasets=_gather_datasets(),
        fallbacks=fallbacks,
        fallbacks_error=fallbacks_error,
        stage=get_settings().stage,
    )


def run(*, publish: bool = True, now: datetime | None = None) -> dict[str, Any]:
    """Gather, build and (optionally) publish the summary; returns it with the SNS message id."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
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


def inputs_as_dict(inputs: SummaryInputs) -> dict[str, Any]:
    """Debug view of the gathered inputs (datetimes as ISO strings)."""
    raw = asdict(inputs)

    def convert(value: Any) -> Any:
        if isinstance(value, datetime):
            return _iso(value)
        if isinstance(value, dict):
            return {k: convert(v) for k, v in value.items()}
        if isinstance(value, list):
            return [convert(v) for v in value]
        return value

    return dict(convert(raw))
