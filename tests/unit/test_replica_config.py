"""The `[replica]` table: validated by `lastgood config check` with file:line messages; its
thresholds; and the pure replica lines of the daily summary and the health reasons."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from lastgood.core.config import check_config_file
from lastgood.monitoring.reasons import check_reasons
from lastgood.monitoring.replica import ReplicaSourceStatus, ReplicaStatus, summary_section
from lastgood.monitoring.summary import SummaryInputs, build_summary

from tests.helpers.restore import run_cli

SOURCES = """
[[sources]]
name = "postgres"
engine = "postgres"
url_secret = "DATABASE_URL"
rpo = "1h"

[sources.retention]
keep_daily = 7
"""
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def write(tmp_path: Path, replica: str) -> Path:
    path = tmp_path / "lastgood.toml"
    path.write_text(SOURCES + "\n[replica]\n" + replica, encoding="utf-8")
    return path


def test_a_valid_replica_table_is_accepted_with_its_thresholds(tmp_path):
    # Given a replica with an explicit max_age and its own policy
    check = check_config_file(
        write(
            tmp_path,
            'bucket = "acme-backups-replica"\nregion = "eu-west-1"\n'
            'kms_key_id = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"\n'
            'max_age = "3h"\nretention = { keep_daily = 30 }\n',
        )
    )
    # Then it is valid and max_age is the threshold for every source
    assert not check.errors and check.config is not None and check.config.replica is not None
    replica = check.config.replica
    assert replica.max_age_seconds(check.config.sources[0]) == 3 * 3600
    assert replica.retention == {"keep_daily": 30} and not check.warnings


def test_without_max_age_a_source_may_lag_its_rpo_by_an_hour_and_no_policy_is_a_warning(tmp_path):
    check = check_config_file(write(tmp_path, 'bucket = "acme-replica"\nregion = "eu-west-1"\n'))
    assert check.config is not None and check.config.replica is not None
    assert check.config.replica.max_age_seconds(check.config.sources[0]) == 3600 + 3600
    assert [w.where for w in check.warnings] == ["replica"]
    assert "keeps every copy" in check.warnings[0].message


@pytest.mark.parametrize(
    "body,where,line,says",
    [
        ('bucket = "Not_A_Bucket"\nregion = "eu-west-1"\n', "replica.bucket", 1, "not an S3 bucket name"),
        ('bucket = "acme-replica"\nregion = "Europe"\n', "replica.region", 2, "not an AWS region"),
        (
            'bucket = "acme-replica"\nregion = "eu-west-1"\nmax_age = "soon"\n',
            "replica.max_age",
            3,
            "duration",
        ),
        (
            'bucket = "acme-replica"\nregion = "eu-west-1"\nretention = { keep_daily = 0 }\n',
            "replica.retention",
            3,
            "keeps nothing",
        ),
        (
            'bucket = "acme-replica"\nregion = "eu-west-1"\ncolour = "blue"\n',
            "replica.colour",
            3,
            "unknown key",
        ),
        ('region = "eu-west-1"\n', "replica.bucket", None, "Field required"),
    ],
)
def test_a_bad_replica_table_is_refused_with_file_line_and_field(tmp_path, body, where, line, says):
    # Given a [replica] table with one bad field / When the config is checked
    path = write(tmp_path, body)
    check = check_config_file(path)
    # Then that field is named, at its line, with why
    (problem,) = check.errors
    assert problem.where == where and says in problem.message
    if line is not None:  # `line` counts the [replica] table's lines (1 = its first key)
        at = SOURCES.count("\n") + 2 + line
        assert path.read_text().splitlines()[at - 1].startswith(where.split(".")[1])
        assert problem.line == at and str(problem).startswith(f"{path}:{at}: {where}: ")
    # And `lastgood config check` exits 2 printing it
    result = run_cli("config", "check", str(path))
    assert result.code == 2 and where in result.out + result.err


def test_a_replica_key_of_another_region_is_refused(tmp_path):
    check = check_config_file(
        write(
            tmp_path,
            'bucket = "acme-replica"\nregion = "eu-west-1"\n'
            'kms_key_id = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"\n',
        )
    )
    (problem,) = check.errors
    assert problem.where == "replica" and "us-east-1" in problem.message and "eu-west-1" in problem.message


# --------------------------------------------------------------------------- summary and reasons (pure)


def status(**item: object) -> ReplicaStatus:
    source = ReplicaSourceStatus("postgres", 7200)
    for key, value in item.items():
        setattr(source, key, value)
    return ReplicaStatus("acme-replica", "eu-west-1", [source])


def test_the_summary_names_an_unreachable_replica():
    issues: list[str] = []
    lines, data = summary_section(
        ReplicaStatus("acme-replica", "eu-west-1", error="EndpointConnectionError"), issues
    )
    assert issues == ["replica unreachable: EndpointConnectionError"]
    assert lines[0] == "Replica (s3://acme-replica, eu-west-1)" and "UNREACHABLE" in lines[1]
    assert data is not None and data["reachable"] is False


def test_the_summary_names_a_late_lagging_copy_and_stays_quiet_about_a_fresh_one():
    issues: list[str] = []
    late = status(newest_backup_id="20261201T060000Z-aaaaaa", age_s=6 * 3600.0, missing=3, lag_s=5 * 3600.0)
    lines, _ = summary_section(late, issues)
    assert len(issues) == 1 and "postgres: newest copy 20261201T060000Z-aaaaaa is 6h" in issues[0]
    assert "replication lagging: 3 newer backup(s)" in issues[0] and "LATE" in lines[1]
    fresh: list[str] = []
    summary_section(status(newest_backup_id="20261201T115000Z-bbbbbb", age_s=600.0, missing=0), fresh)
    assert fresh == []


def test_the_daily_summary_has_a_replica_section_only_when_one_is_configured():
    without = build_summary(SummaryInputs(), NOW)
    assert "Replica" not in without.message and "replica" not in without.data
    missing = build_summary(SummaryInputs(replica=status()), NOW + timedelta(seconds=1))
    assert "Replica (s3://acme-replica, eu-west-1)" in missing.message
    assert missing.issues == ["replica: postgres: no committed copy in the replica"]


def test_health_reasons_are_the_replica_checks_own_lines():
    check = {"ok": False, **status(age_s=None).as_dict()}
    assert check_reasons("replica", check) == ["replica: postgres: no committed copy in the replica"]
