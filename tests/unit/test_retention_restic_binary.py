"""Retention matches the REAL restic binary's `forget --dry-run --json`.

`tests/fixtures/restic/forget_NN.json` were recorded by `tests/fixtures/restic/generate.sh`
from restic 0.14.0 (Debian bookworm's package) over `timeline.txt` (~1,260 hourly snapshots,
60 days across a year boundary, with gaps), with TZ=UTC. restic's ApplyPolicy changed in
exactly one way that matters here since 0.14 (v0.16.0, restic issue #3624; reason text
in v0.18.0): the oldest snapshot is also kept while a rule still has counts left, with the
reason "oldest <rule>". lastgood follows current restic, so the comparison is: lastgood's
reasons with the "oldest …" ones taken out are exactly restic 0.14's, snapshot by snapshot,
and only the oldest snapshot may carry an "oldest …" reason.
"""

from __future__ import annotations

import json
import shlex
from datetime import datetime
from pathlib import Path

import pytest
from lastgood.backups.retention import RetentionPolicy, apply_policy

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "restic"
GOLDEN = sorted(FIXTURES.glob("forget_*.json"))
TIMELINE = [
    datetime.fromisoformat(line.replace("Z", "+00:00"))
    for line in (FIXTURES / "timeline.txt").read_text().splitlines()
    if line.strip()
]


def policy_from_flags(flags: str) -> dict[str, object]:
    words = shlex.split(flags)
    policy: dict[str, object] = {}
    for flag, value in zip(words[::2], words[1::2], strict=True):
        key = flag.removeprefix("--").replace("-", "_")
        policy[key] = value if "within" in key else int(value)
    return policy


def test_the_golden_files_were_recorded_from_restic():
    assert len(GOLDEN) >= 10
    assert len(TIMELINE) > 1000
    for path in GOLDEN:
        assert json.loads(path.read_text())["restic"].startswith("restic 0.14.0")


@pytest.mark.parametrize("golden", GOLDEN, ids=lambda p: json.loads(p.read_text())["flags"])
def test_forget_keeps_what_the_restic_binary_keeps_for_the_same_reasons(golden):
    # Given restic's recorded decision for one policy over the timeline
    doc = json.loads(golden.read_text())
    policy = RetentionPolicy.from_dict(policy_from_flags(doc["flags"]))
    # When lastgood plans the same timeline
    reasons = apply_policy(TIMELINE, policy)
    newest_first = sorted(range(len(TIMELINE)), key=TIMELINE.__getitem__, reverse=True)
    ours = []
    for i in newest_first:
        plain = [r for r in reasons[i] if not r.startswith("oldest ")]
        if plain:
            ours.append({"time": TIMELINE[i].strftime("%Y-%m-%dT%H:%M:%SZ"), "reasons": plain})
    # Then, "oldest …" aside, the same snapshots are kept, in the same order, for the same reasons
    assert ours == doc["kept"]
    assert len(TIMELINE) - len(ours) == doc["removed"]
    # and only the oldest snapshot can be kept as "oldest …" (the rule still had counts left)
    oldest = newest_first[-1]
    for i in newest_first[:-1]:
        assert not any(r.startswith("oldest ") for r in reasons[i])
    if any(r.startswith("oldest ") for r in reasons[oldest]):
        assert all(r.startswith("oldest ") for r in reasons[oldest])  # restic 0.14 removed it


def test_seed_003_keeps_the_oldest_backup_because_weekly_and_monthly_counts_are_left():
    # Given 60 days of backups: 13 weeks and 12 months cannot be filled
    policy = RetentionPolicy.from_dict(
        {"keep_hourly": 24, "keep_daily": 30, "keep_weekly": 13, "keep_monthly": 12}
    )
    # When planned
    reasons = apply_policy(TIMELINE, policy)
    # Then the oldest backup is kept for the rules with counts left (current restic), not dropped
    oldest = min(range(len(TIMELINE)), key=TIMELINE.__getitem__)
    assert reasons[oldest] == ["oldest weekly snapshot", "oldest monthly snapshot"]
