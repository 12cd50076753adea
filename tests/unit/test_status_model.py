"""The status page's inputs from the stored documents' own models: states, drills, failed runs, RPO."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from lastgood.backups.acceptance import AcceptanceRecord
from lastgood.backups.catalog import BackupListing
from lastgood.backups.manifest import BackupManifest, ObjectEntry, new_backup_id
from lastgood.monitoring.status_model import WINDOW, build_timeline, mark_from_listing
from lastgood.storage.audit import AuditRecord, build_record

from tests.helpers import verification

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def _listing(finished: datetime, *, suspect: bool = False, pinned: bool = False) -> BackupListing:
    backup_id = new_backup_id(finished - timedelta(seconds=30))
    manifest = BackupManifest.build(
        backup_id=backup_id,
        source="pg",
        engine="postgres",
        started_at=finished - timedelta(seconds=30),
        finished_at=finished,
        objects=[ObjectEntry(key="dump.pgc", bytes=4096, sha256="0" * 64, count=10)],
        pinned=pinned,
        pin_reason="deploy 4f2a" if pinned else None,
    )
    if suspect:
        manifest = manifest.model_copy(
            update={"suspect": True, "suspect_reason": "the dump has no tables at all"}
        )
    listing = BackupListing("pg", backup_id, finished, "complete", 4096, 1, manifest=manifest)
    listing.pinned, listing.pin_reason = pinned, manifest.pin_reason
    return listing


def _failed_run(at: datetime) -> AuditRecord:
    doc = build_record(
        {
            "operation": "backup",
            "source": "pg",
            "backup_id": new_backup_id(at),
            "result": "failed",
            "error": "down",
        },
        now=at,
    )
    return AuditRecord.model_validate(doc)


def test_each_listing_state_maps_to_its_mark():
    complete = _listing(NOW - timedelta(hours=3))
    suspect = _listing(NOW - timedelta(hours=2), suspect=True)
    pinned = _listing(NOW - timedelta(hours=1), pinned=True)
    verified = _listing(NOW - timedelta(minutes=30))
    verified.status = "verified"
    accepted = _listing(NOW - timedelta(minutes=20), suspect=True)
    accepted.acceptance = AcceptanceRecord(source="pg", backup_id=accepted.backup_id, accepted_at=NOW)
    unreadable = BackupListing(
        "pg", new_backup_id(NOW), NOW, "unreadable", 1, 1, unreadable_reason="cut JSON"
    )
    marks = [mark_from_listing(item) for item in (complete, suspect, pinned, verified, accepted, unreadable)]
    assert [m.state for m in marks] == ["complete", "suspect", "complete", "verified", "complete", "failed"]
    assert marks[1].reason == "the dump has no tables at all"
    assert marks[2].pinned and marks[2].reason == "deploy 4f2a"
    assert marks[5].reason == "cut JSON"
    assert marks[0].at == NOW - timedelta(hours=3)  # the manifest's finish time


def test_timeline_has_drills_from_verification_records_and_failed_runs_from_the_audit_trail():
    good = _listing(NOW - timedelta(hours=5))
    slow = verification.drill("pg", good.backup_id, seconds=120, rto=60, checked_at=NOW - timedelta(hours=4))
    good.verification = slow.record()
    old = _listing(NOW - WINDOW - timedelta(days=1))  # outside the window: not drawn
    runs = [_failed_run(NOW - timedelta(hours=2)), _failed_run(NOW - timedelta(hours=1))]
    timeline = build_timeline("pg", "postgres", 3600, 60, [good, old], runs, now=NOW)
    assert [m.state for m in timeline.marks] == ["complete", "failed", "failed"]
    assert [m.reason for m in timeline.marks[1:]] == ["down", "down"]
    (drill,) = timeline.drills
    assert drill.backup_id == good.backup_id and drill.recovery_time_s == 120 and drill.over_rto
    issues = timeline.issues(NOW)
    assert "pg: newest good backup is 5h old, RPO is 1h" in issues
    assert any("drill FAILED (recovery time 120" in i and "exceeds the RTO of 60s" in i for i in issues), (
        issues
    )


def test_rpo_coverage_is_the_union_of_good_backups_plus_rpo_and_ignores_suspect_and_failed():
    items = [_listing(NOW - timedelta(hours=h)) for h in (10, 9.5, 5)]
    items.append(_listing(NOW - timedelta(hours=3), suspect=True))
    timeline = build_timeline(
        "pg", "postgres", 3600, 60, items, [_failed_run(NOW - timedelta(hours=2))], now=NOW
    )
    spans = timeline.coverage(NOW - WINDOW, NOW)
    assert spans == [
        (NOW - timedelta(hours=10), NOW - timedelta(hours=8.5)),
        (NOW - timedelta(hours=5), NOW - timedelta(hours=4)),
    ]
