"""The Fargate task's container as a process: the exact command line the task definition and the
state machine pass (the Dockerfile's ENTRYPOINT + the container override), with the environment
the task definition sets, against the devstack.

What only AWS provides is supplied as the devstack's: the task role's credentials and endpoint
(AWS_*), and the sources' secrets (the plain variables, which win over the Secrets Manager
lookup LASTGOOD_SECRETS_PREFIX would do).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from lastgood.backups.store import BackupStore

from tests.helpers.fargate import asl, container_command, dockerfile_entrypoint, ecs_tasks
from tests.helpers.template import props, raw_template

pytestmark = pytest.mark.devstack

ROOT = Path(__file__).resolve().parents[2]
SLOT = "2026-03-01T02:00:00Z"
# What the task role and the deployment's secrets stand for locally (never in the task definition).
PROVIDED_BY_AWS = (
    "AWS_ENDPOINT_URL",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_DEFAULT_REGION",
    "DATABASE_URL",
    "PG_BIN_DIR",
)


def _value(name: str, value: Any) -> str:
    """A task-definition environment value: literals as written, references as the devstack has them."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Ref" in value and value["Ref"] in raw_template()["Parameters"]:
        return str(raw_template()["Parameters"][value["Ref"]]["Default"])
    if isinstance(value, dict) and "Fn::Sub" in value:
        return str(value["Fn::Sub"]).replace("${AWS::StackName}", "lastgood-e2e")
    return os.environ[name]  # BACKUP_BUCKET, KMS_KEY_ID, ALERT_TOPIC_ARN, AWS_REGION: the devstack's


def task_environment() -> dict[str, str]:
    (container,) = props("FargateBackupTaskDefinition")["ContainerDefinitions"]
    env = {e["Name"]: _value(e["Name"], e["Value"]) for e in container["Environment"]}
    env |= {name: os.environ[name] for name in PROVIDED_BY_AWS if name in os.environ}
    env["PATH"] = os.environ["PATH"]
    env["LASTGOOD_CONFIG"] = os.environ["LASTGOOD_CONFIG"]  # the image's ENV (its copy of the config)
    return env


def run_container(command: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    entry = dockerfile_entrypoint()
    executable = shutil.which(entry[0], path=str(ROOT / ".venv" / "bin"))
    assert executable, "the lastgood command is installed"
    return subprocess.run(
        [executable, *entry[1:], *command],
        env=task_environment(),
        cwd=tmp_path,  # the image's WORKDIR is /tmp: no project files around
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _emf_metrics(stdout: str) -> dict[tuple[str, str], float]:
    """(source dimension, metric name) → value, from the EMF JSON lines among the CLI's output."""
    found: dict[tuple[str, str], float] = {}
    for line in stdout.splitlines():
        if not line.startswith("{"):
            continue
        record = json.loads(line)
        if "_aws" not in record:
            continue
        (directive,) = record["_aws"]["CloudWatchMetrics"]
        assert directive["Namespace"] == "lastgood"
        for metric in directive["Metrics"]:
            value = record[metric["Name"]]
            found[(record.get("source", ""), metric["Name"])] = value[0] if isinstance(value, list) else value
    return found


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
    emitted = _emf_metrics(first.stdout)
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
