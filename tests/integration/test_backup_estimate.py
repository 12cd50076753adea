"""`lastgood backup --estimate`: every engine's size from its server, the expected duration and
memory from manifests the real backup run wrote, and the Fargate verdict.

Against the devstack: the demo config's postgres, mongodb and upstash sources (the seeded data),
on a bucket emptied first (no history), then after real `run_backup` runs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from lastgood.backups.estimate import (
    ASSUMED_PEAK_BYTES,
    LAMBDA_MEMORY_MB,
    LAMBDA_TIMEOUT_S,
    Estimate,
    estimate_backup,
    from_history,
    judge,
)
from lastgood.backups.manifest import BackupManifest, ObjectEntry
from lastgood.backups.store import BackupStore
from lastgood.engines import get_engine
from lastgood.engines.base import SizeEstimate

from tests.helpers.restore import run_cli
from tests.helpers.template import function_setting

LASTGOOD = str(Path(sys.executable).with_name("lastgood"))  # the installed command, beside the venv python

pytestmark = pytest.mark.devstack

SOURCES = ("postgres", "mongodb", "upstash")


def test_each_engine_reports_its_size_from_the_server_statistic(devstack) -> None:
    # Given the seeded databases / When each engine is asked its size
    pg = get_engine("postgres").estimate_size(os.environ["DATABASE_URL"])
    mongo = get_engine("mongodb").estimate_size(os.environ["MONGODB_URI"], database="lastgood")
    rest = get_engine("upstash").estimate_size(
        os.environ["UPSTASH_REDIS_REST_URL"], token=os.environ["UPSTASH_REDIS_REST_TOKEN"]
    )
    redis = get_engine("redis").estimate_size(os.environ["REDIS_URL"])
    # Then each names its statistic and reports what the server holds
    assert pg.method.startswith("pg_database_size") and pg.bytes and pg.bytes > 1_000_000
    assert mongo.method == "dbStats(lastgood).dataSize" and mongo.bytes and mongo.records == 334
    assert rest.method.startswith("DBSIZE") and rest.records == redis.records and redis.records >= 11
    assert redis.bytes and redis.bytes > 0


@pytest.mark.parametrize("source", SOURCES)
def test_without_history_the_estimate_says_so_and_states_its_assumption(clean_aws, source: str) -> None:
    # Given a source with no committed backup (the bucket was emptied)
    estimate = estimate_backup(source)
    # Then it reports the size and an expected duration from it, saying it is an assumption
    assert estimate.history_runs == 0
    assert estimate.size_bytes and estimate.size_bytes > 0
    assert estimate.duration_basis.startswith("no committed backup yet; assumed")
    assert estimate.expected_duration_s is not None and estimate.expected_duration_s < 60
    assert estimate.expected_peak_bytes == ASSUMED_PEAK_BYTES and "assumed" in estimate.memory_basis
    assert estimate.move_to_fargate is False and estimate.runner == "lambda"


@pytest.mark.parametrize("source", SOURCES)
def test_after_real_backups_the_estimate_reads_their_manifests(clean_aws, source: str, tmp_path) -> None:
    # Given two backups taken by the CLI, each in a process of its own as on Lambda or Fargate
    # (a peak recorded inside the test process would include every earlier test's, and its
    # finished children's, such as cfn-lint's)
    for _ in range(2):
        done = subprocess.run(
            [LASTGOOD, "--no-env-file", "backup", "--source", source],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-2000:]
    manifests = [b.manifest for b in BackupStore.from_settings().list_backups(source)]
    assert len(manifests) == 2 and all(m is not None and m.peak_rss_bytes for m in manifests)
    # When estimating
    estimate = estimate_backup(source)
    # Then the duration comes from their bytes/duration and the memory from their recorded peaks
    assert estimate.history_runs == 2
    assert estimate.duration_basis.startswith("the last 2 committed run(s)")
    assert estimate.rate_bytes_per_s and estimate.rate_bytes_per_s > 0
    durations = [m.duration_s for m in manifests if m]
    assert estimate.expected_duration_s is not None
    assert min(durations) * 0.5 <= estimate.expected_duration_s <= max(durations) * 2 + 0.1
    assert estimate.expected_peak_bytes == max(m.peak_rss_bytes or 0 for m in manifests if m)
    assert estimate.move_to_fargate is False


def test_the_cli_prints_the_report_and_json_and_takes_no_backup(clean_aws) -> None:
    human = run_cli("backup", "--estimate", "--source", "postgres")
    assert human.code == 0, human.err
    assert "size now:" in human.out and "verdict: fits Lambda's limits" in human.out
    as_json = run_cli("backup", "--estimate", "--source", "postgres", "--json")
    doc = json.loads(as_json.out)
    assert doc["source"] == "postgres" and doc["lambda_timeout_s"] == LAMBDA_TIMEOUT_S
    # nothing was backed up by either call
    assert estimate_backup("postgres").history_runs == 0
    # and an unknown source / a flag that takes a backup is one line, exit 2
    bad = run_cli("backup", "--estimate", "--source", "nope")
    assert bad.code == 2 and "unknown source 'nope'" in bad.err and "Traceback" not in bad.err
    mixed = run_cli("backup", "--estimate", "--source", "postgres", "--slot", "2026-01-01T00:00:00Z")
    assert mixed.code == 2 and "--estimate takes no backup" in mixed.err


def _manifest(duration_s: float, stored: int, peak: int | None) -> BackupManifest:
    started = datetime(2026, 1, 1, tzinfo=UTC)
    entry = ObjectEntry(key="app.dump", bytes=stored, sha256="0" * 64)
    return BackupManifest.build(
        backup_id="20260101T000000Z-abcdef",
        source="warehouse",
        engine="postgres",
        started_at=started,
        finished_at=started + timedelta(seconds=duration_s),
        objects=[entry],
        peak_rss_bytes=peak,
    )


def _judged(seconds: float | None, peak: int, runner: str = "lambda") -> Estimate:
    return judge(Estimate("warehouse", "postgres", runner, 1, None, "m", 1, seconds, "b", peak, "mb"))


def test_a_source_past_two_thirds_of_the_limit_or_the_memory_is_told_to_move_to_fargate() -> None:
    # Given runs of 700 s (above 600 s = two thirds of 900 s)
    history = [_manifest(700, 3_000_000_000, 200 << 20), _manifest(650, 2_800_000_000, 190 << 20)]
    seconds, _, _ = from_history("postgres", SizeEstimate(None, None, "m"), history)
    assert seconds is not None and seconds > 600
    slow = _judged(seconds, 200 << 20)
    assert slow.move_to_fargate and "above 600 s" in slow.reasons[0]
    assert "MOVE TO FARGATE" in slow.lines()[-1] and 'runner = "fargate"' in slow.lines()[-1]
    # And a fast run whose memory is above the function's size is told too
    big = _judged(10, (LAMBDA_MEMORY_MB + 1) << 20)
    assert big.move_to_fargate and "memory" in big.reasons[0]
    # And 599 s with little memory stays; a source already on Fargate is told it is where it belongs
    assert not _judged(599, 100 << 20).move_to_fargate
    assert "runs on Fargate" in _judged(700, 100 << 20, runner="fargate").lines()[-1]


def test_the_limits_the_estimate_judges_by_are_the_backup_functions_settings() -> None:
    assert function_setting("BackupFunction", "Timeout") == LAMBDA_TIMEOUT_S
    assert function_setting("BackupFunction", "MemorySize") == LAMBDA_MEMORY_MB
