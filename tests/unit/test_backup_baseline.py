"""Seed 003: a backup 20 % slower or larger than its recent baseline raises an alarm.

The backup run emits BackupDurationRatio / BackupSizeRatio = this run ÷ the median of
up to 7 previous complete backups; the template alarms on > 1.2.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from lastgood.backups.manifest import BackupManifest, ObjectEntry
from lastgood.backups.run import baseline_ratios


def _manifest(n: int, *, seconds: float, size: int) -> BackupManifest:
    start = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(hours=n)
    return BackupManifest.build(
        backup_id=start.strftime("%Y%m%dT%H%M%SZ") + f"-{n:06x}",
        source="postgres",
        engine="postgres",
        started_at=start,
        finished_at=start + timedelta(seconds=seconds),
        objects=[ObjectEntry(key="app.dump", bytes=size, sha256="0" * 64)],
    )


def test_no_ratio_until_three_previous_backups_exist() -> None:
    # Given two earlier backups only
    previous = [_manifest(i, seconds=10, size=100) for i in range(2)]
    # When / Then: no baseline yet, so nothing to alarm on
    assert baseline_ratios(_manifest(9, seconds=50, size=500), previous) == {}


def test_ratio_is_against_the_median_of_the_recent_window() -> None:
    # Given seven typical backups and one outlier older than the window
    previous = [_manifest(i, seconds=10, size=100) for i in range(7)] + [_manifest(20, seconds=1000, size=1)]
    # When a run takes 13 s and weighs 125 bytes
    ratios = baseline_ratios(_manifest(30, seconds=13, size=125), previous)
    # Then both ratios exceed the 1.2 alarm threshold, the outlier ignored
    assert ratios["BackupDurationRatio"][1] == 1.3
    assert ratios["BackupSizeRatio"][1] == 1.25
