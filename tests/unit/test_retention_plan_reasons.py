"""Retention plan details: reasons for keeping and removing, incomplete backups, guards, parsing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from lastgood.backups.retention import BackupInfo, RetentionPolicy, Within, plan
from lastgood.core.errors import RetentionError

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)


def daily(n, **kw):
    return [BackupInfo(f"d{i:03d}", NOW - timedelta(days=i), **kw) for i in range(n)]


def test_every_decision_says_why_newest_first():
    # Given 5 daily backups, an old incomplete one and a fresh incomplete one
    items = [
        *daily(5),
        BackupInfo("stale", NOW - timedelta(hours=30), complete=False),
        BackupInfo("running", NOW - timedelta(minutes=30), complete=False),
    ]
    # When planned with --keep-last 2 (3 of 5 removed: forced past the share guard)
    result = plan(items, RetentionPolicy.from_dict({"keep_last": 2}), NOW, force=True)
    by_id = {d.backup.backup_id: d for d in result.decisions}
    # Then decisions come newest first, and kept and removed backups both say why
    assert [d.backup.time for d in result.decisions] == sorted((b.time for b in items), reverse=True)
    assert by_id["d000"].reasons == ["last snapshot"]
    assert by_id["running"].reasons == ["incomplete, within the 24h grace period"]
    assert by_id["stale"].removal == "incomplete (no manifest) for 30h, past the 24h grace period"
    assert by_id["d004"].removal == "no rule keeps it"
    # incomplete backups do not take a count: d001 is the second "last snapshot"
    assert by_id["d001"].reasons == ["last snapshot"]
    assert by_id["d002"].as_dict() == {
        "backup_id": "d002",
        "time": "2026-05-30T12:00:00Z",
        "keep": False,
        "reasons": [],
        "removal": "no rule keeps it",
    }


def test_pinned_and_newest_verified_backups_are_kept_with_their_own_reasons():
    items = daily(6)
    items[5].pinned, items[5].pin_reason = True, "before migration 12"
    items[3].verified = items[4].verified = True
    result = plan(items, RetentionPolicy.from_dict({"keep_last": 1}), NOW)
    reasons = {d.backup.backup_id: d.reasons for d in result.keep}
    assert reasons == {
        "d000": ["last snapshot"],
        "d003": ["newest verified backup"],
        "d005": ["pinned (before migration 12)"],
    }


def test_a_pinned_incomplete_backup_is_kept():
    items = [*daily(2), BackupInfo("half", NOW - timedelta(days=9), complete=False, pinned=True)]
    result = plan(items, RetentionPolicy.from_dict({"keep_last": 1}), NOW)
    assert "half" in {d.backup.backup_id for d in result.keep}


def test_minus_one_keeps_one_backup_per_bucket_without_limit():
    items = [BackupInfo(f"h{i}", NOW - timedelta(hours=6 * i)) for i in range(40)]  # 10 days
    result = plan(items, RetentionPolicy.from_dict({"keep_daily": -1}), NOW, force=True)
    assert len({d.backup.time.date() for d in result.keep}) == len({b.time.date() for b in items})
    assert len(result.keep) == 11  # one per day (11 calendar days) …
    assert result.keep[-1].reasons == ["daily snapshot"]  # … the oldest is its day's only one


def test_the_share_guard_refuses_mass_removal_unless_forced():
    items = daily(20)
    with pytest.raises(RetentionError, match=r"refusing to remove 18 of 20 .*--force"):
        plan(items, RetentionPolicy.from_dict({"keep_last": 2}), NOW)
    # a configurable share; and (issue 13) the guard applies to any count: 8 of 9 is refused too
    assert (
        len(plan(items, RetentionPolicy.from_dict({"keep_last": 2}), NOW, max_remove_share=0.9).remove) == 18
    )
    with pytest.raises(RetentionError, match=r"refusing to remove 8 of 9 .*--force"):
        plan(daily(9), RetentionPolicy.from_dict({"keep_last": 1}), NOW)
    assert len(plan(daily(9), RetentionPolicy.from_dict({"keep_last": 1}), NOW, force=True).remove) == 8


def test_an_empty_policy_is_refused_even_with_zeros_and_nulls():
    with pytest.raises(RetentionError, match="empty retention policy"):
        plan(daily(3), RetentionPolicy.from_dict({"keep_last": 0, "keep_within": None}), NOW)


@pytest.mark.parametrize(
    "raw,message",
    [
        ({"keep_last": True}, "keep_last must be an integer"),
        ({"keep_hourly": 2.5}, "keep_hourly must be an integer"),
        ({"keep_within": 48}, "keep_within must be a duration string"),
        ({"keep_within_daily": "-2d"}, "keep_within_daily: duration must be positive"),
        ({"keep_within": "0d"}, "duration must be positive"),
        ({"keep_within": "5"}, "invalid duration"),
        ({"keep_within": "2 d"}, "invalid duration"),
        (
            {"keep_daily": 7, "keep_fortnightly": 2, "keep": 1},
            "unknown retention keys keep, keep_fortnightly",
        ),
    ],
)
def test_malformed_policies_name_the_problem(raw, message):
    with pytest.raises(RetentionError, match=message):
        RetentionPolicy.from_dict(raw)


def test_a_policy_round_trips_through_its_dict_and_describes_itself_as_flags():
    raw = {"keep_daily": 7, "keep_monthly": -1, "keep_within": "1y6m", "keep_within_weekly": "2m"}
    policy = RetentionPolicy.from_dict(raw)
    assert policy.as_dict() == raw
    assert RetentionPolicy.from_dict(policy.as_dict()) == policy
    assert policy.describe() == "--keep-daily 7 --keep-monthly -1 --keep-within 1y6m --keep-within-weekly 2m"


@pytest.mark.parametrize(
    "text,expected",
    [
        ("2d", Within(days=2)),
        ("36h", Within(hours=36)),
        ("1y6m", Within(years=1, months=6)),
        (" 1d2d ", Within(days=2)),  # restic: trimmed, a repeated unit overrides
        ("6y5m234d37h", Within(6, 5, 234, 37)),
    ],
)
def test_durations_parse_like_restic(text, expected):
    assert Within.parse(text) == expected


def test_calendar_windows_subtract_like_go_adddate():
    assert Within.parse("1m").subtract_from(datetime(2026, 3, 31, tzinfo=UTC)) == datetime(
        2026, 3, 3, tzinfo=UTC
    )
    assert Within.parse("1y").subtract_from(datetime(2024, 2, 29, tzinfo=UTC)) == datetime(
        2023, 3, 1, tzinfo=UTC
    )
    assert Within.parse("1d12h").subtract_from(datetime(2026, 1, 1, 6, tzinfo=UTC)) == datetime(
        2025, 12, 30, 18, tzinfo=UTC
    )
