"""Retention with suspect backups, and the mass-deletion guard for any count (issue 13)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from lastgood.backups.acceptance import AcceptanceRecord
from lastgood.backups.catalog import BackupListing
from lastgood.backups.manifest import BackupManifest
from lastgood.backups.retention import BackupInfo, RetentionPolicy, plan
from lastgood.core.errors import RetentionError

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
DEFAULT = RetentionPolicy.from_dict(
    {"keep_hourly": 24, "keep_daily": 30, "keep_weekly": 13, "keep_monthly": 12}
)


def hourly(n: int, **kw) -> list[BackupInfo]:
    return [BackupInfo(f"h{i:03d}", NOW - timedelta(hours=i), **kw) for i in range(n)]


def reasons(result) -> dict[str, list[str]]:
    return {d.backup.backup_id: d.reasons for d in result.keep}


def test_a_suspect_backup_is_not_the_hourly_copy_and_the_good_one_before_it_is_kept():
    # Given hourly backups whose newest is suspect (an emptied source)
    items = hourly(5)
    items[0].suspect = True
    # When the default policy plans
    kept = reasons(plan(items, DEFAULT, NOW))
    # Then the suspect one takes no rule's slot; the newest good one is kept, saying why
    assert not any(r.endswith("snapshot") for r in kept["h000"])
    assert kept["h000"] == ["newest backup, suspect (awaiting `lastgood accept`)"]
    assert "hourly snapshot" in kept["h001"] and "daily snapshot" in kept["h001"]
    assert "newest good backup before suspect h000" in kept["h001"]


def test_with_keep_last_1_the_good_backup_survives_a_run_of_suspect_ones():
    # Given three suspect backups in a row after two good ones
    items = hourly(5)
    for item in items[:3]:
        item.suspect = True
    result = plan(items, RetentionPolicy.from_dict({"keep_last": 1}), NOW, force=True)
    kept = reasons(result)
    # Then the newest suspect (newest data) and the newest good backup stay; older suspects go
    assert set(kept) == {"h000", "h003"}
    assert kept["h003"] == ["last snapshot", "newest good backup before suspect h000"]
    assert {d.backup.backup_id: d.removal for d in result.remove}["h001"] == "suspect: satisfies no rule"


def test_an_accepted_suspect_backup_counts_as_normal():
    # Given a suspect backup a person accepted: the listing reports it as not suspect
    manifest = BackupManifest.build(
        backup_id="20260601T120000Z-aaaaaa",
        source="pg",
        engine="postgres",
        started_at=NOW,
        finished_at=NOW,
        objects=[],
    ).model_copy(update={"suspect": True, "suspect_reason": "the dump has no tables at all"})
    listing = BackupListing("pg", manifest.backup_id, NOW, "complete", 0, 0, manifest=manifest)
    assert listing.suspect and not listing.accepted
    listing.acceptance = AcceptanceRecord(source="pg", backup_id=manifest.backup_id, accepted_at=NOW)
    assert not listing.suspect and listing.accepted and listing.as_dict()["accepted"] is True
    items = hourly(3)
    kept = reasons(plan(items, RetentionPolicy.from_dict({"keep_last": 1}), NOW, force=True))
    # Then it is the last snapshot again and nothing is kept "before" it
    assert kept == {"h000": ["last snapshot"]}


def test_a_suspect_backup_older_than_a_good_one_is_not_kept_for_itself():
    # Given the source recovered: a good backup after the suspect one
    items = hourly(4)
    items[1].suspect = True
    kept = reasons(plan(items, RetentionPolicy.from_dict({"keep_last": 1}), NOW))
    # Then the suspect one satisfies nothing; the good one before it stays while it exists
    assert "h001" not in kept
    assert kept["h002"] == ["newest good backup before suspect h001"]


def test_a_suspect_backup_is_never_the_newest_verified_one():
    items = hourly(3, verified=True)
    items[0].suspect = True
    kept = reasons(plan(items, RetentionPolicy.from_dict({"keep_last": 1}), NOW))
    assert "newest verified backup" in kept["h001"] and "newest verified backup" not in kept["h000"]


@pytest.mark.parametrize(("total", "keep"), [(9, 1), (3, 1), (5, 2)])
def test_removing_more_than_the_share_is_refused_at_any_count(total, keep):
    # Given a few backups (fewer than the old 10-removal threshold)
    with pytest.raises(RetentionError) as err:
        plan(hourly(total), RetentionPolicy.from_dict({"keep_last": keep}), NOW)
    # Then the refusal names the count, the share and --force
    removed = total - keep
    assert f"refusing to remove {removed} of {total}" in str(err.value)
    assert f"{removed / total:.0%}" in str(err.value) and "50%" in str(err.value)
    assert "--force" in str(err.value)
    assert (
        len(plan(hourly(total), RetentionPolicy.from_dict({"keep_last": keep}), NOW, force=True).remove)
        == removed
    )


def test_removing_exactly_one_is_allowed_even_above_the_share():
    # 1 of 2 is 50 % (> 40 %), but a single removal is routine
    result = plan(hourly(2), RetentionPolicy.from_dict({"keep_last": 1}), NOW, max_remove_share=0.4)
    assert [d.backup.backup_id for d in result.remove] == ["h001"]
    # and a share at the limit is allowed (4 of 8 = 50 %)
    assert len(plan(hourly(8), RetentionPolicy.from_dict({"keep_last": 4}), NOW).remove) == 4
