"""The CI workflow's drill and pinned-backup steps, run as GitHub would run them, on the devstack.

Each step's `run` script is taken from .github/workflows/lastgood-deploy.yml and executed
with bash (GitHub's `bash -e` shell) in the repository, with the devstack standing in for the
staging / production stack. A step that exits non-zero fails its job, and a failed `drill`
job skips `deploy` (`needs:`) and ends the run red (tests/infrastructure/test_ci_workflow.py).
"""

from __future__ import annotations

import contextlib
import os
import subprocess

import pytest
from lastgood.backups.store import BackupStore

from tests.helpers.restore import backup_now
from tests.helpers.template import ROOT
from tests.helpers.workflow import shell_of, step_running, workflow

pytestmark = pytest.mark.devstack

SHA = "0123456789abcdef0123456789abcdef01234567"


def run_step(job: str, needle: str, **env: str) -> subprocess.CompletedProcess[str]:
    script = shell_of(step_running(workflow()["jobs"][job], needle), **{"github.sha": SHA})
    return subprocess.run(
        ["bash", "-e", "-c", script],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )


@pytest.fixture(scope="module")
def upstash_backup(devstack) -> str:
    devstack.seed()
    return backup_now("upstash")


def test_a_drill_that_passes_lets_the_step_pass(upstash_backup: str) -> None:
    result = run_step("drill", "lastgood verify", SOURCE="upstash")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "PASSED" in result.stdout


def test_a_drill_that_fails_fails_the_step_so_deploy_never_runs(upstash_backup: str) -> None:
    # Given the drill's scratch target is unreachable (the drill cannot restore)
    result = run_step("drill", "lastgood verify", SOURCE="upstash", SCRATCH_REDIS_URL="redis://127.0.0.1:9/1")
    # Then the step exits non-zero (8: restore failed), which fails the drill job
    assert result.returncode == 8, result.stdout + result.stderr
    assert "Traceback" not in result.stderr


def test_a_drill_of_a_source_without_backups_fails_the_step(devstack) -> None:
    # Given a first deploy: staging's bucket holds no backup yet
    result = run_step("drill", "lastgood verify", SOURCE="mongodb", BACKUP_BUCKET=_empty_bucket())
    # Then there is nothing to drill: the step fails (7: backup not found), deploy is blocked
    assert result.returncode == 7, result.stdout + result.stderr


def test_the_pinned_backup_step_pins_a_backup_with_the_deployed_commit(upstash_backup: str) -> None:
    result = run_step("pinned-backup", "lastgood backup", SOURCE="upstash")
    assert result.returncode == 0, result.stdout + result.stderr
    store = BackupStore.from_settings()
    newest = store.list_backups("upstash")[0]  # newest first
    assert newest.pinned and newest.pin_reason == f"deploy {SHA}"


def _empty_bucket() -> str:
    store = BackupStore.from_settings()
    name = "lastgood-ci-first-deploy"
    with contextlib.suppress(store.s3.exceptions.BucketAlreadyOwnedByYou):
        store.s3.create_bucket(Bucket=name)
    return name
