"""Issue 13 fault matrix, part "suspect": cases 3 and 11.

Case 3: every table of a source is dropped → the backup is committed but marked suspect, the
BackupSuspect metric fires, retention keeps the last good backup, `restore --latest` restores
the good one (naming the suspect one it skipped), and `lastgood accept` makes it normal.

Case 11: the mass-deletion guard applies to any count (keep-last 1 over 9 backups is refused
without --force; removing exactly one is allowed), and `restore --latest` skips a damaged
newest backup (an object failing its SHA-256, a manifest that cannot be read), naming it.

Backups are made by the real backup code against fixture PostgreSQL databases of the devstack
(configured as extra sources), never the demo's data.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from lastgood.backups.keys import manifest_key, source_prefix
from lastgood.backups.run import run_backup
from lastgood.backups.store import BackupStore
from lastgood.core.config import reset_config
from lastgood.core.settings import reset_settings

from tests.helpers.backup import create_database, drop_database, pg_url
from tests.helpers.config import suite_config_document
from tests.helpers.restore import flipped_byte, object_keys, pg_snapshot, run_cli

pytestmark = pytest.mark.devstack

POLICY = {"keep_hourly": 24, "keep_daily": 30, "keep_weekly": 13, "keep_monthly": 12}


@dataclass
class Fixture:
    source: str
    url: str
    target: str
    store: BackupStore


def _seed(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL)")
        conn.execute("INSERT INTO customers SELECT g, 'customer ' || g FROM generate_series(1, 200) g")
        conn.execute("CREATE TABLE orders (id int PRIMARY KEY, customer int REFERENCES customers(id))")
        conn.execute("INSERT INTO orders SELECT g, 1 + g % 200 FROM generate_series(1, 500) g")


def _drop_every_table(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TABLE orders")
        conn.execute("DROP TABLE customers")


def _delete_source(store: BackupStore, source: str) -> None:
    paginator = store.s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=store.bucket, Prefix=source_prefix(source)):
        for obj in page.get("Contents", []):
            store.s3.delete_object(Bucket=store.bucket, Key=obj["Key"])


@pytest.fixture
def pg_source(devstack, tmp_path: Path, monkeypatch) -> Iterator[Fixture]:
    """A fixture source (its own seeded database, the configured policy) and an empty target."""
    database, target = create_database("fm_src"), create_database("fm_tgt")
    _seed(pg_url(database))
    name = f"fm{database.rsplit('_', 1)[1]}"
    config = suite_config_document()
    config["sources"].append(
        {"name": name, "engine": "postgres", "url_secret": "TEST_FAULT_MATRIX_PG_URL", "retention": POLICY}
    )
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    monkeypatch.setenv("LASTGOOD_CONFIG", str(path))
    monkeypatch.setenv("TEST_FAULT_MATRIX_PG_URL", pg_url(database))
    reset_settings()
    reset_config()
    store = BackupStore.from_settings()
    try:
        yield Fixture(name, pg_url(database), pg_url(target), store)
    finally:
        _delete_source(store, name)
        drop_database(database)
        drop_database(target)
        monkeypatch.undo()
        reset_settings()
        reset_config()


def _backup(source: str) -> str:
    result = run_backup(source, on_demand=True)
    assert result.status == "ok" and result.backup_id
    time.sleep(1.05)  # distinct backup-id seconds: "newest" is unambiguous
    return result.backup_id


def _emf(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith('{"_aws"')]


def test_case_3_an_emptied_source_gives_a_suspect_backup_that_never_displaces_the_good_one(
    pg_source: Fixture, monkeypatch
):
    source, store = pg_source.source, pg_source.store
    # Given three good backups of a seeded database
    good = [_backup(source) for _ in range(3)]
    seed = pg_snapshot(pg_source.url)
    # When every table is dropped and the source is backed up (metrics printed, as in Lambda)
    _drop_every_table(pg_source.url)
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    backup = run_cli("backup", "--source", source)
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED")
    # Then the backup is committed (exit 0) with a clear warning that it is suspect
    assert backup.code == 0, backup.err
    assert "SUSPECT" in backup.out and "lastgood accept" in backup.out
    listing = store.list_backups(source)
    suspect = listing[0].backup_id
    assert suspect not in good and len(listing) == 4
    manifest = store.read_manifest(source, suspect)
    assert manifest.suspect is True and "no tables" in (manifest.suspect_reason or "")
    # and the BackupSuspect metric (the alarm's input) fired for this source
    emitted = [doc for doc in _emf(backup.out) if "BackupSuspect" in doc]
    assert [(doc["source"], doc["BackupSuspect"]) for doc in emitted] == [(source, [1.0])]

    # When the configured retention policy runs
    prune = run_cli("prune", "--source", source, "--json")
    # Then the newest good backup is kept, saying it is kept because of the suspect one
    assert prune.code == 0, prune.err
    kept = {d["backup_id"]: d["reasons"] for d in json.loads(prune.out)[0]["kept"]}
    assert f"newest good backup before suspect {suspect}" in kept[good[-1]]
    assert not any(r.endswith("snapshot") for r in kept.get(suspect, []))  # it fills no rule's slot
    assert good[-1] in {b.backup_id for b in store.list_backups(source)}

    # When the latest backup is restored
    restore = run_cli("restore", "--latest", "--source", source, "--target", pg_source.target)
    # Then the good backup is restored, not the empty one, and the skipped one is named
    assert restore.code == 0, restore.err
    assert f"skipped {source}/{suspect}" in restore.out and "suspect" in restore.out
    assert f"restored {source}/{good[-1]}" in restore.out
    assert pg_snapshot(pg_source.target) == seed

    # When a person accepts the new size
    accept = run_cli("accept", suspect)
    # Then it is recorded, listed as accepted, and counts as a normal backup again
    assert accept.code == 0, accept.err
    assert "accepted" in accept.out
    listed = run_cli("list", "--source", source)
    assert "accepted" in next(line for line in listed.out.splitlines() if suspect in line)
    plan = run_cli("prune", "--source", source, "--dry-run", "--json")
    kept = {d["backup_id"]: d["reasons"] for d in json.loads(plan.out)[0]["kept"]}
    assert "hourly snapshot" in kept[suspect]
    assert not any("before suspect" in r for reasons in kept.values() for r in reasons)


def test_case_11_the_deletion_guard_applies_to_any_count_and_restore_latest_skips_damage(
    pg_source: Fixture, monkeypatch
):
    source, store = pg_source.source, pg_source.store
    # Given nine backups made by the real backup code
    made = [run_backup(source, on_demand=True).backup_id for _ in range(9)]
    assert len({b.backup_id for b in store.list_backups(source)}) == 9

    # When prune --keep-last 1 runs without --force
    refused = run_cli("prune", "--source", source, "--keep-last", "1")
    # Then it is refused (exit 9) naming the count, the share and --force; nothing is deleted
    assert refused.code == 9, refused.out
    assert "8 of 9" in refused.err and "89%" in refused.err and "50%" in refused.err
    assert "--force" in refused.err
    assert {b.backup_id for b in store.list_backups(source)} == set(made)

    # When exactly one backup would go, even above the configured share (1 of 9 > 10 %)
    monkeypatch.setenv("PRUNE_MAX_REMOVE_SHARE", "0.1")
    one = run_cli("prune", "--source", source, "--keep-last", "8")
    monkeypatch.delenv("PRUNE_MAX_REMOVE_SHARE")
    # Then it is allowed
    assert one.code == 0, one.err
    listing = store.list_backups(source)
    assert len(listing) == 8

    # Given the newest backup has a data object whose bytes changed, and the next one a cut manifest
    newest, second, third = (b.backup_id for b in listing[:3])
    key = manifest_key(source, second)
    body = store.s3.get_object(Bucket=store.bucket, Key=key)["Body"].read()
    store.s3.put_object(Bucket=store.bucket, Key=key, Body=body[: len(body) // 2], **store.sse_args())
    with flipped_byte(object_keys(source, newest)[0]):
        # When the latest backup is restored, and the latest is restore-drilled
        restore = run_cli("restore", "--latest", "--source", source, "--target", pg_source.target)
        restored = pg_snapshot(pg_source.target)
        drill = run_cli("verify", "--latest", "--source", source, "--restore-to", pg_source.target)
    # Then the newest good backup is restored and both damaged ones are named as skipped
    assert restore.code == 0, restore.err
    assert f"skipped {source}/{newest}" in restore.out and "SHA-256" in restore.out
    assert f"skipped {source}/{second}" in restore.out and "unreadable" in restore.out
    assert f"restored {source}/{third}" in restore.out
    assert restored == pg_snapshot(pg_source.url)
    # and the drill picks the same backup, names the damaged ones, and exits 6 (integrity) for them
    assert drill.code == 6, drill.err
    assert f"skipped {source}/{newest}" in drill.out and f"skipped {source}/{second}" in drill.out
    assert f"{source}/{third}: PASSED" in drill.out

    # When keep-last 1 is forced
    forced = run_cli("prune", "--source", source, "--keep-last", "1", "--force")
    # Then it runs and the newest backup is kept
    assert forced.code == 0, forced.err
    assert newest in {b.backup_id for b in store.list_backups(source)}
