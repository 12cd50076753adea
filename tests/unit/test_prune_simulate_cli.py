"""`lastgood prune --simulate FILE|-`: the policy explainer, with no bucket access."""

from __future__ import annotations

import io
import json
import random
from datetime import timedelta

import pytest
from lastgood.cli import main

from tests.helpers.retention import hourly_timeline, iso, restic_model

HOURLY_400_DAYS = hourly_timeline(400)
SEED_POLICIES = {
    "seed-000 --keep-hourly 24": {"keep_hourly": 24},
    "seed-002 --keep-daily 30": {"keep_daily": 30},
    "seed-003 GFS": {"keep_hourly": 24, "keep_daily": 30, "keep_weekly": 13, "keep_monthly": 12},
    "7d 4w 24m 5y": {"keep_daily": 7, "keep_weekly": 4, "keep_monthly": 24, "keep_yearly": 5},
    "last 5 + monthly unlimited": {"keep_last": 5, "keep_monthly": -1},
}


def flags(policy):
    return [w for k, v in policy.items() for w in (f"--{k.replace('_', '-')}", str(v))]


def simulate(capsys, tmp_path, times, *extra):
    timeline = tmp_path / "timeline.txt"
    timeline.write_text("".join(f"{iso(t)}\n" for t in times))
    code = main(["--no-env-file", "prune", "--simulate", str(timeline), *extra])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(autouse=True)
def no_aws(monkeypatch):
    # any bucket access would fail fast: nothing listens on port 9
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")


@pytest.mark.parametrize("policy", SEED_POLICIES.values(), ids=SEED_POLICIES.keys())
def test_simulate_over_400_days_of_hourly_backups_matches_restic_forget(capsys, tmp_path, policy):
    # Given one backup per hour for 400 days, in shuffled order
    times = list(HOURLY_400_DAYS)
    random.Random(7).shuffle(times)
    # When simulated with the policy's --keep-* flags, as JSON
    code, out, _ = simulate(capsys, tmp_path, times, *flags(policy), "--json")
    plan = json.loads(out)
    # Then one entry per input line, in input order, and the kept set is restic's
    assert code == 0
    assert [p["time"] for p in plan] == [iso(t) for t in times]
    kept = {p["time"] for p in plan if p["keep"]}
    assert kept == {iso(t) for t in restic_model(times, policy)}
    assert all(p["reasons"] for p in plan if p["keep"])
    assert not any(p["reasons"] for p in plan if not p["keep"])


def test_seed_000_keeps_the_last_24_hours_and_nothing_else(capsys, tmp_path):
    code, out, _ = simulate(capsys, tmp_path, HOURLY_400_DAYS, "--keep-hourly", "24", "--json")
    plan = json.loads(out)
    assert code == 0
    assert [p["time"] for p in plan if p["keep"]] == [iso(t) for t in HOURLY_400_DAYS[-24:]]
    assert {tuple(p["reasons"]) for p in plan if p["keep"]} == {("hourly snapshot",)}


def test_seed_003_lists_every_rule_that_keeps_a_backup(capsys, tmp_path):
    policy = SEED_POLICIES["seed-003 GFS"]
    code, out, _ = simulate(capsys, tmp_path, HOURLY_400_DAYS, *flags(policy), "--json")
    assert code == 0
    by_time = {p["time"]: p for p in json.loads(out)}
    newest = by_time[iso(HOURLY_400_DAYS[-1])]
    assert newest["reasons"] == ["hourly snapshot", "daily snapshot", "weekly snapshot", "monthly snapshot"]
    # the last backup of the previous month is kept as that month's monthly snapshot
    assert by_time["2026-01-31T23:00:00Z"]["reasons"][-1] == "monthly snapshot"
    assert sum(p["keep"] for p in by_time.values()) == len(restic_model(HOURLY_400_DAYS, policy))


def test_simulate_reads_stdin_and_prints_a_table_with_reasons(capsys, monkeypatch):
    # Given three timestamps on stdin (one with an offset, one naive: both read as UTC instants)
    monkeypatch.setattr("sys.stdin", io.StringIO("2026-01-02T10:00:00Z\n2026-01-02T12:30:00+01:00\n\n"))
    # When simulated with the human output
    code = main(["--no-env-file", "prune", "--simulate", "-", "--keep-last", "1"])
    out = capsys.readouterr().out
    # Then the table says which is kept and why, newest first
    assert code == 0
    assert "policy --keep-last 1" in out
    lines = [line.split() for line in out.splitlines() if line.strip().startswith(("keep", "remove"))]
    assert lines[0][:3] == ["keep", "#2", "2026-01-02T11:30:00Z"] and "last snapshot" in " ".join(lines[0])
    assert lines[1][:3] == ["remove", "#1", "2026-01-02T10:00:00Z"]
    assert "no rule keeps it" in " ".join(lines[1])


def test_keep_within_ignores_backups_dated_after_now_like_restic(capsys, tmp_path):
    # Given a backup dated in the future relative to --now (clock skew) and hourly ones before
    times = hourly_timeline(3)
    future = times[-1].replace(year=2030)
    # When simulated with --keep-within 6h at --now a minute after the last real backup
    now = iso(times[-1] + timedelta(minutes=1))
    code, out, _ = simulate(capsys, tmp_path, [*times, future], "--keep-within", "6h", "--now", now, "--json")
    plan = json.loads(out)
    # Then the window is measured from the newest backup not after now (restic's
    # findLatestTimestamp): the last 6 hours are kept (and the future one, inside any window)
    assert code == 0
    assert [p["time"] for p in plan if p["keep"]] == [iso(t) for t in [*times[-6:], future]]


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--keep-daily", "-3"], "keep_daily must be >= 0"),
        (["--keep-within", "2w"], "invalid duration"),
        ([], "needs --keep-* flags"),
    ],
)
def test_a_malformed_policy_is_a_clear_error(capsys, tmp_path, argv, message):
    code, out, err = simulate(capsys, tmp_path, hourly_timeline(1), *argv)
    assert code == 9
    assert message in err
    assert out == ""


def test_a_line_that_is_not_a_time_is_named(capsys, tmp_path):
    timeline = tmp_path / "t.txt"
    timeline.write_text("2026-01-01T00:00:00Z\nyesterday\n")
    code = main(["--no-env-file", "prune", "--simulate", str(timeline), "--keep-last", "1"])
    err = capsys.readouterr().err
    assert code != 0
    assert "line 2" in err and "'yesterday'" in err
