"""The scheduled health run emits BackupAgeSeconds per source: the backup-late alarm's input
(missing data = breaching, so a source without backups emits nothing and still alarms)."""

from __future__ import annotations

import json

import pytest
from lastgood.cli import main

from tests.helpers.events import event_path

pytestmark = pytest.mark.devstack


def test_backup_age_is_emitted_for_sources_with_a_backup_and_reported_against_the_rpo(capsys, clean_aws):
    from lastgood.backups.run import run_backup

    # Given a fresh bucket with one postgres backup only
    run_backup("postgres", on_demand=True)
    capsys.readouterr()  # the backup's own metrics
    # When the scheduled health run is invoked
    code = main(["--no-env-file", "invoke", "health", "--event", str(event_path("health-schedule"))])
    out, err = capsys.readouterr()
    report = json.loads(out)
    # Then postgres is fresh (age < RPO), the others have no complete backup
    assert code == 0
    sources = report["backups"]["sources"]
    assert sources["postgres"]["ok"] is True and sources["postgres"]["age_seconds"] < 3600
    assert sources["mongodb"]["ok"] is False and sources["mongodb"]["error"] == "no complete backup"
    assert report["status"] == "degraded"
    # And BackupAgeSeconds was emitted for postgres only
    emf = [json.loads(line) for line in err.splitlines() if line.startswith('{"_aws"')]
    ages = {doc["source"]: doc["BackupAgeSeconds"] for doc in emf if "BackupAgeSeconds" in doc}
    assert set(ages) == {"postgres"}
