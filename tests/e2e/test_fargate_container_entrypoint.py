"""The Fargate task's container as a process: the exact command line the task definition and the
state machine pass (the Dockerfile's ENTRYPOINT + the container override), with the environment
the task definition sets, against the devstack.

What only AWS provides is supplied as the devstack's: the task role's credentials and endpoint
(AWS_*), and the sources' secrets (the plain variables, which win over the Secrets Manager
lookup LASTGOOD_SECRETS_PREFIX would do).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from lastgood.backups.store import BackupStore

from tests.helpers.fargate import asl, container_command, ecs_tasks, emf_metrics, run_container

pytestmark = pytest.mark.devstack

SLOT = "2026-03-01T02:00:00Z"


def test_the_backup_task_command_commits_a_backup_and_a_retry_of_its_slot_takes_none(
    devstack, tmp_path: Path
) -> None:
    # Given the state machine's backup task for one Map item (source postgres, the schedule's slot)
    command = container_command(ecs_tasks()["RunBackupTask"], {"source": "postgres", "slot": SLOT})
    assert command == ["backup", "--source", "postgres", "--slot", SLOT]
    before = {b.backup_id for b in BackupStore.from_settings().list_backups("postgres")}
    # When the container runs it
    first = run_container(command, tmp_path)
    # Then it exits 0 and a committed backup of that slot is in the bucket
    assert first.returncode == 0, first.stderr[-2000:]
    after = BackupStore.from_settings().list_backups("postgres")
    (new,) = [b for b in after if b.backup_id not in before]
    assert new.committed and new.manifest is not None
    assert new.manifest.slot == SLOT and new.manifest.totals.bytes > 0
    assert new.manifest.peak_rss_bytes  # what `lastgood backup --estimate` reads later
    # And its metrics are EMF records on stdout (what CloudWatch Logs extracts from the task's
    # awslogs stream), so BackupSuccess / BackupFailure alarms see Fargate runs too
    emitted = emf_metrics(first.stdout)
    assert emitted.get(("postgres", "BackupSuccess")) == 1
    assert emitted.get(("postgres", "BackupBytes")) == new.manifest.totals.bytes
    # And the state machine's retry of the same slot (same command) commits nothing more
    again = run_container(command, tmp_path)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "skipped" in again.stdout
    assert len(BackupStore.from_settings().list_backups("postgres")) == len(after)


def test_a_bad_source_name_exits_2_with_one_line(devstack, tmp_path: Path) -> None:
    # Given a Map item naming a source the config does not declare
    command = container_command(ecs_tasks()["RunBackupTask"], {"source": "postgress", "slot": SLOT})
    result = run_container(command, tmp_path)
    # Then the container exits 2 with one line naming it and the valid sources (no traceback)
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("lastgood: error:")]
    assert len(errors) == 1 and "unknown source 'postgress'" in errors[0] and "postgres" in errors[0]
    assert "Traceback" not in result.stderr
    # (the definition's Map passes every item through the same task)
    assert asl()["States"]["EachSource"]["ItemsPath"] == "$.sources"
