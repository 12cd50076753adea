"""`lastgood summary --json` after real verify runs: drills are reported from what verify wrote."""

from __future__ import annotations

import json

import pytest
from lastgood.cli import main

from tests.helpers.restore import backup_now

pytestmark = pytest.mark.devstack


def _summary(capsys) -> dict:
    capsys.readouterr()
    assert main(["summary", "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_summary_reports_a_real_drill_with_its_recovery_time_and_rto_verdict(clean_aws, capsys):
    # Given a postgres backup restored into the scratch database by `lastgood verify --drill`
    clean_aws.seed()
    backup_id = backup_now("postgres")
    assert main(["verify", "--latest", "--source", "postgres", "--drill"]) == 0
    # When the daily summary is built
    drills = {row["source"]: row for row in _summary(capsys)["drills"] if row}
    # Then the postgres row is that drill: passed, with a measured recovery time within the RTO
    row = drills["postgres"]
    assert row["backup_id"] == backup_id and row["passed"] is True
    assert row["recovery_time_s"] is not None and row["recovery_time_s"] > 0
    assert row["within_rto"] is True


def test_an_integrity_only_verify_is_not_reported_as_a_drill(clean_aws, capsys):
    # Given a mongodb backup verified without a drill (integrity only)
    clean_aws.seed()
    backup_now("mongodb")
    assert main(["verify", "--latest", "--source", "mongodb"]) == 0
    # Then the summary still says no restore drill was recorded for it
    data = _summary(capsys)
    assert "mongodb" not in {row["source"] for row in data["drills"] if row}
    assert "mongodb    no restore drill recorded yet" in data["message"]
