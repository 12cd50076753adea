"""Retention plan properties (hypothesis) and the safety guards."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lastgood.backups.retention import BackupInfo, RetentionPolicy, Within, plan
from lastgood.core.errors import RetentionError

NOW = datetime(2026, 6, 1, tzinfo=UTC)

counts = st.integers(min_value=-1, max_value=6)
windows = st.one_of(st.none(), st.sampled_from(["1h", "36h", "2d", "7d", "1m", "1m14d", "1y6m"]))
policies = st.fixed_dictionaries(
    {
        "keep_last": counts,
        "keep_hourly": counts,
        "keep_daily": counts,
        "keep_weekly": counts,
        "keep_monthly": counts,
        "keep_yearly": st.integers(min_value=0, max_value=3),
    },
    optional={"keep_within": windows, "keep_within_daily": windows, "keep_within_weekly": windows},
).filter(lambda p: any(p.values()))
# hours before NOW (negative: dated in the future, e.g. clock skew); equal times are allowed
backups = st.lists(
    st.tuples(st.integers(min_value=-48, max_value=24 * 800), st.booleans(), st.booleans()),
    min_size=1,
    max_size=60,
)


def build(raw):
    return [
        BackupInfo(f"b{i:02d}", NOW - timedelta(hours=h), complete=True, pinned=pinned, verified=verified)
        for i, (h, pinned, verified) in enumerate(raw)
    ]


def kept_ids(result):
    return {d.backup.backup_id for d in result.keep}


@settings(max_examples=150, deadline=None)
@given(policies, backups)
def test_never_removes_a_pinned_backup_the_newest_or_the_newest_verified(policy, raw):
    items = build(raw)
    result = plan(items, RetentionPolicy.from_dict(policy), NOW, force=True)
    kept = kept_ids(result)
    assert {b.backup_id for b in items if b.pinned} <= kept
    newest = max(b.time for b in items)
    assert {b.backup_id for b in items if b.time == newest} & kept
    verified = [b for b in items if b.verified]
    if verified:
        assert max(verified, key=lambda b: (b.time, b.backup_id)).backup_id in kept
    for decision in result.keep:
        assert decision.reasons  # every kept backup says why


@settings(max_examples=100, deadline=None)
@given(policies, backups)
def test_planning_is_idempotent(policy, raw):
    items = build(raw)
    pol = RetentionPolicy.from_dict(policy)
    first = plan(items, pol, NOW, force=True)
    survivors = [d.backup for d in first.keep]
    second = plan(survivors, pol, NOW, force=True)
    assert kept_ids(second) == kept_ids(first)


@settings(max_examples=100, deadline=None)
@given(
    policies,
    backups,
    st.sampled_from(["keep_last", "keep_hourly", "keep_daily", "keep_weekly", "keep_monthly"]),
    st.integers(min_value=1, max_value=5),
)
def test_raising_a_count_never_removes_what_was_kept(policy, raw, rule, more):
    items = build(raw)
    before = plan(items, RetentionPolicy.from_dict(policy), NOW, force=True)
    raised = -1 if policy[rule] == -1 else policy[rule] + more
    after = plan(items, RetentionPolicy.from_dict({**policy, rule: raised}), NOW, force=True)
    assert kept_ids(before) <= kept_ids(after)
    # and -1 (unlimited) keeps at least as much as any count
    unlimited = plan(items, RetentionPolicy.from_dict({**policy, rule: -1}), NOW, force=True)
    assert kept_ids(after) <= kept_ids(unlimited)


@settings(max_examples=100, deadline=None)
@given(backups, st.sampled_from(["1h", "36h", "2d", "1m", "1y6m"]))
def test_keep_within_keeps_exactly_the_backups_inside_the_window_of_the_newest(raw, window):
    items = build(raw)
    result = plan(items, RetentionPolicy.from_dict({"keep_within": window}), NOW, force=True)
    newest = max((b.time for b in items if b.time <= NOW), default=None)
    within = Within.parse(window)
    for decision in result.decisions:
        inside = newest is None or decision.backup.time > within.subtract_from(newest)
        assert (f"within {window}" in decision.reasons) == inside


def test_an_empty_policy_is_refused():
    with pytest.raises(RetentionError, match="empty"):
        plan(build([(1, False, False)]), RetentionPolicy.from_dict({}), NOW)


@pytest.mark.parametrize(
    "raw,message",
    [
        ({"keep_daily": -2}, "keep_daily must be >= 0"),
        ({"keep_dailly": 3}, "unknown retention keys keep_dailly"),
        ({"keep_daily": "7"}, "must be an integer"),
        ({"keep_within": "2w"}, "invalid duration"),
    ],
)
def test_malformed_policies_are_refused_by_name(raw, message):
    with pytest.raises(RetentionError, match=message):
        RetentionPolicy.from_dict(raw)


def test_removing_more_than_the_share_at_once_needs_force():
    items = build([(h, False, False) for h in range(40)])
    with pytest.raises(RetentionError, match="--force"):
        plan(items, RetentionPolicy.from_dict({"keep_last": 2}), NOW)
    assert len(plan(items, RetentionPolicy.from_dict({"keep_last": 2}), NOW, force=True).remove) == 38


def test_incomplete_backups_are_kept_within_grace_and_removed_after():
    items = [
        BackupInfo("new", NOW - timedelta(hours=1), complete=False),
        BackupInfo("old", NOW - timedelta(hours=30), complete=False),
        BackupInfo("ok", NOW - timedelta(hours=2)),
    ]
    result = {
        d.backup.backup_id: d for d in plan(items, RetentionPolicy.from_dict({"keep_last": 1}), NOW).decisions
    }
    assert result["new"].keep and "grace" in result["new"].reasons[0]
    assert not result["old"].keep
    assert result["ok"].keep


def test_within_parses_restic_durations():
    assert str(Within.parse("1y6m")) == "1y6m"
    assert Within.parse("36h").hours == 36
    cutoff = Within.parse("1m").subtract_from(datetime(2026, 3, 31, tzinfo=UTC))
    assert cutoff == datetime(2026, 3, 3, tzinfo=UTC)  # Go AddDate normalisation: "Feb 31" = Mar 3
