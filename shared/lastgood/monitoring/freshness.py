"""Freshness checks for the health run: backup age vs RPO, dataset age vs budget, last drill.

`BackupAgeSeconds` (per source) is what the backup-late alarm reads (for a PITR source: the
age of its newest committed change segment, when newer than its base): the alarm
treats missing data as breaching, so a source with no complete backup emits
nothing and still alarms (dead-man's switch). `GoodBackupAgeSeconds` is the age of
the newest *good* one (not suspect, or accepted): the dashboard's "time since last
good backup", which a run of suspect backups does not reset. Pure evaluation is separated
from the S3 reads so it can be unit-tested.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from lastgood.core.config import LastgoodConfig
from lastgood.core.timefmt import iso_z, parse_time


@dataclass
class BackupFreshness:
    source: str
    rpo_seconds: int
    newest_backup_id: str | None
    finished_at: datetime | None
    age_seconds: float | None
    last_drill_passed: bool | None = None
    last_drill_at: str | None = None
    recovery_time_s: float | None = None
    good_age_seconds: float | None = None  # newest complete backup that is not suspect (or accepted)

    @property
    def ok(self) -> bool:
        return self.age_seconds is not None and self.age_seconds <= self.rpo_seconds

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "rpo_seconds": self.rpo_seconds,
            "newest_backup": self.newest_backup_id,
            "finished_at": iso_z(self.finished_at) if self.finished_at else None,
            "age_seconds": None if self.age_seconds is None else round(self.age_seconds, 1),
            "error": None
            if self.ok
            else ("no complete backup" if self.age_seconds is None else "older than RPO"),
            "last_drill": {
                "passed": self.last_drill_passed,
                "at": self.last_drill_at,
                "recovery_time_s": self.recovery_time_s,
            },
        }


@dataclass
class DatasetFreshness:
    dataset: str
    budget_seconds: int
    last_modified: datetime | None
    age_seconds: float | None
    problem: str | None = None  # live's bytes are not what its label says (truncated, replaced)

    @property
    def ok(self) -> bool:
        fresh = self.age_seconds is not None and self.age_seconds <= self.budget_seconds
        return fresh and self.problem is None

    @property
    def error(self) -> str | None:
        if self.problem is not None:
            return f"damaged: {self.problem}"
        if self.age_seconds is None:
            return "not published"
        return None if self.age_seconds <= self.budget_seconds else "stale"

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "budget_seconds": self.budget_seconds,
            "last_modified": iso_z(self.last_modified) if self.last_modified else None,
            "age_seconds": None if self.age_seconds is None else round(self.age_seconds, 1),
            "error": self.error,
        }


def backup_freshness(
    config: LastgoodConfig, now: datetime | None = None, store: Any = None
) -> list[BackupFreshness]:
    """Newest complete backup per configured source, with its last drill result."""
    from lastgood.backups.store import BackupStore

    moment = now or datetime.now(UTC)
    store = store or BackupStore.from_settings()
    out = []
    listings = store.list_backups()
    for source in config.sources:
        mine = [b for b in listings if b.source == source.name and b.committed]
        item = BackupFreshness(source.name, source.rpo_seconds, None, None, None)
        if mine:
            newest = mine[0]
            finished = parse_time(newest.manifest.finished_at) if newest.manifest else newest.created_at
            if source.pitr:  # a PITR source is as fresh as its newest change segment (the RPO)
                from lastgood.pitr.lag import newest_segment_time

                segment = newest_segment_time(store, mine)
                finished = max(finished, segment) if segment else finished
            item.newest_backup_id = newest.backup_id
            item.finished_at = finished
            item.age_seconds = max(0.0, (moment - finished).total_seconds())
        good = next((b for b in mine if not b.suspect), None)
        if good is not None:
            finished = parse_time(good.manifest.finished_at) if good.manifest else good.created_at
            item.good_age_seconds = max(0.0, (moment - finished).total_seconds())
        for listing in mine:  # newest first: the newest verification that was a restore drill
            record = listing.verification
            if record is None or record.drill is None:
                continue
            item.last_drill_passed = record.passed
            item.last_drill_at = iso_z(record.checked_at)
            item.recovery_time_s = record.drill.recovery_time_seconds
            break
        out.append(item)
    return out


def dataset_freshness(
    config: LastgoodConfig, now: datetime | None = None, s3: Any = None
) -> list[DatasetFreshness]:
    """Age of each dataset's live object (by LastModified) against its freshness budget.

    The object is read back and hashed (`SiteStore.inspect`, a GET — same price as a HEAD,
    one small JSON per dataset): a live object whose bytes do not match its `sha256` label
    is reported `damaged`, never fresh.
    """
    from botocore.exceptions import ClientError

    from lastgood.core import aws
    from lastgood.core.settings import get_settings
    from lastgood.site.keys import live_key
    from lastgood.site.publish import SiteStore

    moment = now or datetime.now(UTC)
    bucket = get_settings().require("site_bucket")
    site = SiteStore(bucket, s3 or aws.client("s3", fast=True))
    out = []
    for ds in config.datasets:
        try:
            info = site.inspect(live_key(ds.name))
        except ClientError:
            info = None
        modified = info.last_modified if info is not None else None
        age = None if modified is None else max(0.0, (moment - modified).total_seconds())
        problem = info.problem if info is not None else None
        out.append(DatasetFreshness(ds.name, ds.freshness_seconds, modified, age, problem))
    return out


def emit_freshness_metrics(backups: list[BackupFreshness], datasets: list[DatasetFreshness]) -> None:
    from lastgood.core.observability import emit_metrics

    for b in backups:
        if b.age_seconds is not None:  # none at all: emit nothing, the alarm treats missing as breaching
            values = {"BackupAgeSeconds": ("Seconds", b.age_seconds)}
            if b.good_age_seconds is not None:
                values["GoodBackupAgeSeconds"] = ("Seconds", b.good_age_seconds)
            emit_metrics(values, source=b.source)
    for d in datasets:
        if d.age_seconds is not None:
            emit_metrics({"DatasetAgeSeconds": ("Seconds", d.age_seconds)}, dataset=d.dataset)
