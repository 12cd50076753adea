"""The cross-region replica in health and the daily summary: each source's newest committed copy.

`gather_replica` reads the replica bucket through the same store and catalog as the primary
(`lastgood.backups.replica.replica_store`: the replica's region, its KMS key, short health
timeouts) and, when the primary answers, compares it with the primary's newest committed
backup to see how far replication lags. Per source:

- `age_s` — age of the newest committed copy in the replica (its manifest's `finished_at`);
  over `max_age_s` (`[replica].max_age`, default the source's RPO + 1 h) it is `late`;
- `missing` / `lag_s` — committed primary backups newer than that copy, and how much newer
  the primary's newest is: replication lagging (reported; late once past `max_age_s`).

A replica that cannot be reached (no route, refused, denied, no such bucket) is one reason,
`replica: unreachable: …` — health `degraded`, the summary says so — never a crash, and never
longer than the health client's timeouts and the health run's deadline.

Metrics (scheduled health run, `emit_replica_metrics`): `ReplicaBackupAgeSeconds` and
`ReplicaBackupLate` (1/0) per source, `ReplicaLagSeconds` per source when the primary answered,
`ReplicaReachable` (1/0). The per-source replica alarm reads `ReplicaBackupLate` and treats
missing data as breaching (docs/metrics.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from lastgood.core.config import LastgoodConfig
from lastgood.core.redact import redact_text
from lastgood.core.timefmt import human_duration, iso_z, parse_time


@dataclass
class ReplicaSourceStatus:
    source: str
    max_age_s: int
    newest_backup_id: str | None = None
    finished_at: datetime | None = None
    age_s: float | None = None
    primary_newest_id: str | None = None
    missing: int | None = None  # committed primary backups newer than the replica's newest (None: unknown)
    lag_s: float | None = None

    @property
    def late(self) -> bool:
        return self.age_s is None or self.age_s > self.max_age_s

    @property
    def lagging(self) -> bool:
        return bool(self.missing)

    def reason(self) -> str | None:
        """Why this source's replica is not ok (None when it is)."""
        behind = (
            f"; replication lagging: {self.missing} newer backup(s) of the primary not in the replica"
            if self.lagging
            else ""
        )
        if self.age_s is None:
            return f"{self.source}: no committed copy in the replica{behind}"
        if self.age_s > self.max_age_s:
            return (
                f"{self.source}: newest copy {self.newest_backup_id} is {human_duration(self.age_s)} old, "
                f"limit {human_duration(self.max_age_s)}{behind}"
            )
        return None

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": not self.late,
            "max_age_seconds": self.max_age_s,
            "newest_backup": self.newest_backup_id,
            "finished_at": iso_z(self.finished_at) if self.finished_at else None,
            "age_seconds": None if self.age_s is None else round(self.age_s, 1),
            "primary_newest_backup": self.primary_newest_id,
            "missing_in_replica": self.missing,
            "lag_seconds": None if self.lag_s is None else round(self.lag_s, 1),
            "lagging": self.lagging,
            "error": self.reason(),
        }


@dataclass
class ReplicaStatus:
    bucket: str
    region: str
    sources: list[ReplicaSourceStatus] = field(default_factory=list)
    error: str | None = None  # the replica could not be read at all

    @property
    def ok(self) -> bool:
        return self.error is None and not any(s.late for s in self.sources)

    def reasons(self) -> list[str]:
        if self.error is not None:
            return [f"unreachable: {self.error}"]
        return [r for s in self.sources if (r := s.reason()) is not None]

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "bucket": self.bucket,
            "region": self.region,
            "reachable": self.error is None,
            "error": self.error,
            "reasons": self.reasons(),
            "sources": {s.source: s.as_dict() for s in self.sources},
        }


def _newest(store: Any, source: str) -> tuple[str | None, datetime | None, list[datetime]]:
    """(id, finished_at) of the newest committed backup, and every committed backup's finish time."""
    committed = [b for b in store.list_backups(source) if b.committed]
    times = [parse_time(b.manifest.finished_at) if b.manifest else b.created_at for b in committed]
    if not committed:
        return None, None, []
    return committed[0].backup_id, times[0], times


def _error(exc: BaseException, bucket: str) -> str:
    return f"bucket {bucket}: {type(exc).__name__}: {redact_text(str(exc))}"[:300]


def gather_replica(
    config: LastgoodConfig,
    *,
    replica: Any = None,
    primary: Any = None,
    now: datetime | None = None,
    health: bool = True,
) -> ReplicaStatus | None:
    """The replica's state per declared source; None when no replica is configured."""
    from lastgood.backups.replica import is_replica_deployment, replica_store

    if config.replica is None:
        return None
    moment = now or datetime.now(UTC)
    if replica is None:
        replica = replica_store(health=health)
    status = ReplicaStatus(replica.bucket, config.replica.region)
    for source in config.sources:
        item = ReplicaSourceStatus(source.name, config.replica.max_age_seconds(source))
        try:
            item.newest_backup_id, item.finished_at, _ = _newest(replica, source.name)
        except Exception as exc:  # unreachable / denied / no bucket: one reason, the others not tried
            status.error = _error(exc, replica.bucket)
            status.sources = []
            return status
        if item.finished_at is not None:
            item.age_s = max(0.0, (moment - item.finished_at).total_seconds())
        status.sources.append(item)
    if primary is None and not is_replica_deployment():
        primary = _primary_store(health)
    if primary is not None:
        _compare_with_primary(status, primary)
    return status


def _primary_store(health: bool) -> Any:
    from lastgood.backups.store import BackupStore
    from lastgood.core import aws
    from lastgood.core.settings import get_settings

    settings = get_settings()
    if not settings.backup_bucket:
        return None
    client = aws.health_client("s3") if health else aws.client("s3")
    return BackupStore(settings.backup_bucket, settings.kms_key_id, client)


def _compare_with_primary(status: ReplicaStatus, primary: Any) -> None:
    """Replication lag per source: what the primary has committed that the replica has not (best effort)."""
    for item in status.sources:
        try:
            newest_id, newest_at, times = _newest(primary, item.source)
        except Exception:  # the primary's own health is the backups check's business
            return
        item.primary_newest_id = newest_id
        if newest_at is None:
            item.missing = 0
            continue
        since = item.finished_at
        item.missing = sum(1 for t in times if since is None or t > since)
        item.lag_s = max(0.0, (newest_at - since).total_seconds()) if since is not None else None


# --------------------------------------------------------------------------- health


def replica_check(scheduled: bool) -> dict[str, Any]:
    """The health check `replica` (`lastgood.monitoring.health`): ok, or a reason per late source."""
    from lastgood.core.config import get_config

    config = get_config()
    if config.replica is None:
        return {"ok": True, "configured": False}
    status = gather_replica(config)
    assert status is not None
    if scheduled:
        emit_replica_metrics(status)
    return status.as_dict()


def emit_replica_metrics(status: ReplicaStatus) -> None:
    from lastgood.core.observability import emit_metrics

    emit_metrics({"ReplicaReachable": ("Count", 0 if status.error else 1)})
    for item in status.sources:
        metrics: dict[str, tuple[str, float]] = {"ReplicaBackupLate": ("Count", 1 if item.late else 0)}
        if item.age_s is not None:
            metrics["ReplicaBackupAgeSeconds"] = ("Seconds", item.age_s)
        if item.lag_s is not None:
            metrics["ReplicaLagSeconds"] = ("Seconds", item.lag_s)
        emit_metrics(metrics, source=item.source)


# --------------------------------------------------------------------------- daily summary (pure)


def summary_section(
    status: ReplicaStatus | None, issues: list[str]
) -> tuple[list[str], dict[str, Any] | None]:
    """The summary's "Replica" lines and data; appends its issues (nothing when not configured)."""
    if status is None:
        return [], None
    lines = [f"Replica (s3://{status.bucket}, {status.region})"]
    if status.error is not None:
        issues.append(f"replica unreachable: {status.error}")
        lines.append(f"  UNREACHABLE  {status.error}")
        return lines, status.as_dict()
    for item in status.sources:
        why = item.reason()
        if why is not None:
            issues.append(f"replica: {why}")
        age = "never" if item.age_s is None else f"{human_duration(item.age_s)} old"
        lag = f", {item.missing} newer in the primary" if item.lagging else ""
        state = "LATE" if item.late else "OK"
        lines.append(
            f"  {item.source:<10} {state:<8} newest copy {item.newest_backup_id or '-'} ({age}, "
            f"limit {human_duration(item.max_age_s)}){lag}"
        )
    return lines, status.as_dict()
