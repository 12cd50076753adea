"""Retention matches restic `forget` (internal/data/snapshot_policy.go).

`tests/fixtures/restic/policy_cases.json` holds restic's own ApplyPolicy test snapshots and
its golden files (testdata/policy_keep_snapshots_N) for every policy lastgood supports (tag
policies and the empty policy left out), extracted by `extract_testdata.py` from restic at the
commit it names. The seed policies over a 400-day hourly timeline are checked against an
independent model written from the documented semantics (tests/helpers/retention.py); the
real restic binary's answers are checked in test_retention_restic_binary.py.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from lastgood.backups.retention import RetentionPolicy, apply_policy

from tests.helpers.retention import restic_model

FIXTURE = json.loads(
    (Path(__file__).resolve().parents[1] / "fixtures" / "restic" / "policy_cases.json").read_text()
)
SNAPSHOTS = [datetime.fromisoformat(t.replace("Z", "+00:00")) for t in FIXTURE["snapshots"]]


@pytest.mark.parametrize("case", FIXTURE["cases"], ids=lambda c: f"restic-{c['index']}-{c['policy']}")
def test_restic_golden_cases_keep_the_same_snapshots_for_the_same_reasons(case):
    # Given restic's test snapshots and one of its policies
    policy = RetentionPolicy.from_dict(case["policy"])
    # When planned
    reasons = apply_policy(SNAPSHOTS, policy)
    order = sorted(range(len(SNAPSHOTS)), key=lambda i: SNAPSHOTS[i], reverse=True)
    kept = [(SNAPSHOTS[i], reasons[i]) for i in order if reasons[i]]
    # Then exactly restic's kept snapshots, newest first, with restic's reasons
    expected = [
        (datetime.fromisoformat(t.replace("Z", "+00:00")), r)
        for t, r in zip(case["keep"], case["reasons"], strict=True)
    ]
    assert kept == expected


HOURLY_400_DAYS = [datetime(2025, 1, 1, tzinfo=UTC) + timedelta(hours=h) for h in range(400 * 24)]


@pytest.mark.parametrize(
    "policy",
    [
        {"keep_hourly": 24},  # seed 000
        {"keep_daily": 30},  # seed 002
        {"keep_hourly": 24, "keep_daily": 30, "keep_weekly": 13, "keep_monthly": 12},  # seed 003
        {"keep_daily": 7, "keep_weekly": 4, "keep_monthly": 24, "keep_yearly": 5},
    ],
    ids=str,
)
def test_seed_policies_over_400_days_of_hourly_backups(policy):
    reasons = apply_policy(HOURLY_400_DAYS, RetentionPolicy.from_dict(policy))
    kept = {t for t, r in zip(HOURLY_400_DAYS, reasons, strict=True) if r}
    assert kept == restic_model(HOURLY_400_DAYS, policy)


def test_seed_000_keeps_exactly_the_last_24_hours():
    reasons = apply_policy(HOURLY_400_DAYS, RetentionPolicy.from_dict({"keep_hourly": 24}))
    kept = sorted(t for t, r in zip(HOURLY_400_DAYS, reasons, strict=True) if r)
    assert kept == HOURLY_400_DAYS[-24:]


def test_keep_within_is_measured_from_the_newest_backup_not_now():
    times = [datetime(2020, 1, 1, tzinfo=UTC) + timedelta(hours=h) for h in range(100)]
    reasons = apply_policy(times, RetentionPolicy.from_dict({"keep_within": "36h"}))
    kept = [t for t, r in zip(times, reasons, strict=True) if r]
    assert kept == times[-36:]
    assert reasons[-1] == ["within 36h"]
