"""A MongoDB source fanned out over Fargate tasks, as processes: the container command lines the
state machine runs for a source with fargate_shards = 3 (each shard task at once, then the
commit task), with the task definition's environment, against the devstack's MongoDB and S3.
The committed backup restores with lastgood's restore and with the real mongorestore."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lastgood.backups.manifest import BackupManifest
from lastgood.backups.restore import restore_backup
from lastgood.backups.shard import shard_backup_id
from lastgood.backups.store import BackupStore
from lastgood.core.timefmt import parse_time
from pymongo import MongoClient

from tests.helpers.fargate import container_process, emf_metrics, finished, item_commands, run_container
from tests.helpers.native import download_backup, run_tool
from tests.helpers.restore import mongo_snapshot, wipe
from tests.helpers.shards import (
    DATABASE,
    SHARDED_CONFIG,
    SHARDS,
    SOURCE,
    seed_sharded_database,
    use_sharded_config,
)

pytestmark = pytest.mark.devstack

SLOT = "2026-06-01T00:00:00Z"
# The schedule's input for the source (derive_template: Shards "[0, 1, 2]" for fargate_shards = 3)
EXECUTION_INPUT = {"sources": [SOURCE], "slot": SLOT, "drill": False, "shards": list(range(SHARDS))}


@pytest.fixture(scope="module")
def committed(devstack: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The source's database seeded, then every command of the source's Map item run as the
    container: the shard tasks at the same time (the inner Map), then the commit task."""
    with pytest.MonkeyPatch.context() as patch:
        use_sharded_config(patch)
        counts = seed_sharded_database(os.environ["MONGODB_URI"])
        tmp = tmp_path_factory.mktemp("sharded")
        commands = item_commands(EXECUTION_INPUT)
        shard_commands = [c for c in commands if "--shard" in c]
        (commit_command,) = [c for c in commands if "--commit-shards" in c]
        processes = [container_process(c, tmp, config=SHARDED_CONFIG) for c in shard_commands]
        shards = [finished(p) for p in processes]
        commit = run_container(commit_command, tmp, config=SHARDED_CONFIG)
        yield {
            "counts": counts,
            "shard_commands": shard_commands,
            "commit_command": commit_command,
            "shards": shards,
            "commit": commit,
            "tmp": tmp,
            "snapshot": mongo_snapshot(os.environ["MONGODB_URI"], DATABASE),
        }


def _manifest() -> BackupManifest:
    return BackupStore.from_settings().read_manifest(SOURCE, shard_backup_id(SOURCE, parse_time(SLOT)))


def test_the_shard_tasks_and_the_commit_task_commit_one_backup_of_every_collection(
    committed: dict[str, Any],
) -> None:
    # Given the state machine's commands for the source: 3 shard tasks and one commit
    base = ["backup", "--source", SOURCE, "--slot", SLOT]
    assert committed["shard_commands"] == [[*base, "--shard", f"{i}/{SHARDS}"] for i in range(SHARDS)]
    assert committed["commit_command"] == [*base, "--commit-shards", str(SHARDS)]
    # Then every process exits 0 and the commit wrote one manifest with every collection's counts
    for result in [*committed["shards"], committed["commit"]]:
        assert result.returncode == 0, result.stderr[-2000:]
    manifest = _manifest()
    assert manifest.counts == committed["counts"] and manifest.slot == SLOT
    assert manifest.extra["shards"] == SHARDS and manifest.totals.objects == 2 * len(committed["counts"])
    # And the commit emitted the backup's metrics as a single-process backup does (EMF on stdout)
    emitted = emf_metrics(committed["commit"].stdout)
    assert emitted.get((SOURCE, "BackupSuccess")) == 1
    assert emitted.get((SOURCE, "BackupBytes")) == manifest.totals.bytes


def test_a_retry_of_a_shard_task_or_of_the_commit_task_takes_nothing_more(committed: dict[str, Any]) -> None:
    before = _manifest()
    tmp: Path = committed["tmp"]
    for command in (committed["shard_commands"][1], committed["commit_command"]):
        again = run_container(command, tmp, config=SHARDED_CONFIG)
        assert again.returncode == 0, again.stderr[-2000:]
        assert "skipped" in again.stdout
    assert _manifest() == before


def test_the_sharded_backup_restores_every_document_with_lastgood_restore(committed: dict[str, Any]) -> None:
    with pytest.MonkeyPatch.context() as patch:
        use_sharded_config(patch)
        scratch = os.environ["SCRATCH_MONGODB_URI"]
        wipe("mongodb", scratch)
        report = restore_backup(_manifest().backup_id, source=SOURCE, target_url=scratch, safety_backup=False)
        # Then exact counts per collection, and the very documents
        assert report.ok
        restored = {c.name.split(".", 1)[1]: c.restored for c in report.checks}
        assert restored == {ns.split(".", 1)[1]: n for ns, n in committed["counts"].items()}
        scratch_db = scratch.rsplit("/", 1)[1].split("?")[0]
        assert mongo_snapshot(scratch, scratch_db) == committed["snapshot"]


def test_the_sharded_backup_restores_with_the_real_mongorestore(
    committed: dict[str, Any], tmp_path: Path
) -> None:
    # Given the committed objects as files (what `aws s3 cp --recursive` gives)
    folder = download_backup(SOURCE, _manifest().backup_id, tmp_path / "dump")
    uri = os.environ["MONGODB_URI"]
    target = f"{DATABASE}_native"
    client: MongoClient[dict[str, Any]] = MongoClient(uri, serverSelectionTimeoutMS=5000)
    client.drop_database(target)
    try:
        # When the real `mongorestore --gzip` restores it (skipped when the tools are absent)
        result = run_tool(
            "mongorestore",
            "--uri",
            uri,
            "--gzip",
            "--nsFrom",
            f"{DATABASE}.*",
            "--nsTo",
            f"{target}.*",
            str(folder),
        )
        # Then it recognised every file and restored every document and the index
        assert result.returncode == 0, result.stderr
        assert "don't know what to do" not in result.stderr, result.stderr
        assert mongo_snapshot(uri, target) == committed["snapshot"]

        def keys(db: str) -> set[tuple[tuple[str, Any], ...]]:
            return {tuple(dict(ix["key"]).items()) for ix in client[db]["users"].list_indexes()}

        assert keys(target) == keys(DATABASE) and (("n", 1),) in keys(target)
        assert set(client[target].list_collection_names()) == {
            ns.split(".", 1)[1] for ns in committed["counts"]
        }
    finally:
        client.drop_database(target)
        client.close()
