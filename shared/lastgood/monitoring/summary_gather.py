"""Gathering the daily summary's inputs (the I/O half of `lastgood.monitoring.summary`).

Backup manifests and restore-drill records from the backup bucket (through the
catalog and the verification model), dataset freshness from the site bucket, and
fallback counts over the last 24 h from CloudWatch. A part that cannot be read is
shown as unknown with the reason — the summary is still sent, and says so.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from lastgood.backups.verification import VerificationRecord
from lastgood.monitoring.summary import (
    FALLBACK_METRIC,
    WINDOW,
    DatasetStatus,
    DrillStatus,
    PitrDrillStatus,
    SourceStatus,
    SummaryInputs,
    iso_seconds,
)


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


def pitr_drill_from_verification(record: VerificationRecord) -> PitrDrillStatus | None:
    """The point-in-time drill a base's `verification.json` records; None when it has none."""
    pitr = record.pitr
    if pitr is None:
        return None
    error = pitr.error
    if error is None and not pitr.ok:
        error = "failed"
    return PitrDrillStatus(
        backup_id=record.backup_id,
        passed=pitr.ok,
        at=pitr.checked_at,
        recovery_time_s=pitr.recovery_time_seconds,
        last_commit_time=pitr.last_commit_time,
        error=error[:200] if error else None,
    )


def _gather_sources(now: datetime) -> list[SourceStatus]:
    from lastgood.backups.store import BackupStore
    from lastgood.core.config import get_config

    config = get_config()
    out = [SourceStatus(s.name, s.rpo_seconds, s.rto_seconds, pitr=s.pitr) for s in config.sources]
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
        if src.pitr:
            from lastgood.pitr.lag import newest_segment_time

            src.newest_segment_at = newest_segment_time(store, committed)
        for item in committed:  # newest first: the newest verification that was a drill
            record = item.verification
            drill = drill_from_verification(record) if record is not None else None
            if drill is not None:
                src.drill = drill
                break
        if src.pitr:  # and the newest point-in-time drill (on the base it restored)
            for item in committed:
                found = pitr_drill_from_verification(item.verification) if item.verification else None
                if found is not None:
                    src.pitr_drill = found
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
        replica=_gather_replica(moment),
    )


# --- cross-region replica (lastgood.monitoring.replica): never raises, an unreadable replica is a line


def _gather_replica(now: datetime) -> Any:
    from lastgood.core.config import get_config
    from lastgood.monitoring.replica import ReplicaStatus, gather_replica

    config = get_config()
    try:
        return gather_replica(config, now=now)
    except Exception as exc:  # e.g. the replica's store cannot even be built
        replica = config.replica
        assert replica is not None  # gather_replica returns None before anything can raise otherwise
        return ReplicaStatus(replica.bucket, replica.region, error=f"{type(exc).__name__}: {exc}"[:300])


def inputs_as_dict(inputs: SummaryInputs) -> dict[str, Any]:
    """Debug view of the gathered inputs (datetimes as ISO strings)."""
    raw = asdict(inputs)

    def convert(value: Any) -> Any:
        if isinstance(value, datetime):
            return iso_seconds(value)
        if isinstance(value, dict):
            return {k: convert(v) for k, v in value.items()}
        if isinstance(value, list):
            return [convert(v) for v in value]
        return value

    return dict(convert(raw))
