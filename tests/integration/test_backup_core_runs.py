"""Backup runs against the devstack: slot idempotency, lock release on failure, pinning, audit, client-side encryption."""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from lastgood.backups.keys import lock_key
from lastgood.backups.run import run_backup
from lastgood.backups.store import BackupStore
from lastgood.core import aws
from lastgood.core.config import reset_config
from lastgood.core.errors import BackupError, ConfigError
from lastgood.core.settings import reset_settings
from lastgood.core.timefmt import iso_z, parse_time
from lastgood.engines.postgres import ENGINE
from lastgood.storage.crypto import CLIENT_SIDE_ENCRYPTION

from tests.helpers.backup import create_database, drop_database, pg_url
from tests.helpers.config import suite_config_document

pytestmark = pytest.mark.devstack


def _unique_slot() -> str:
    """A slot nobody else uses: a random hour of 2001."""
    return iso_z(datetime(2001, 1, 1, tzinfo=UTC) + timedelta(hours=secrets.randbelow(8760)))


@pytest.fixture
def extra_sources(devstack, tmp_path: Path, monkeypatch):
    """The default config plus `pgcse` (client-side encrypted) and `pgbroken` (unreachable)."""
    config = suite_config_document()
    config["sources"] += [
        {"name": "pgcse", "engine": "postgres", "url_secret": "DATABASE_URL", "client_side_encryption": True},
        {"name": "pgbroken", "engine": "postgres", "url_secret": "TEST_BACKUP_BROKEN_URL"},
    ]
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    monkeypatch.setenv("LASTGOOD_CONFIG", str(path))
    monkeypatch.setenv("TEST_BACKUP_BROKEN_URL", "postgresql://postgres:pw@127.0.0.1:9/app")
    reset_settings()
    reset_config()
    yield
    monkeypatch.undo()
    reset_settings()
    reset_config()


def test_duplicate_invocation_for_a_slot_is_skipped(devstack):
    slot = _unique_slot()
    first = run_backup("postgres", slot=slot)
    second = run_backup("postgres", slot=slot)
    assert first.status == "ok" and first.manifest is not None
    assert second.status == "skipped"
    assert second.message.startswith(f"skipped (slot {slot} is done: backup {first.backup_id} is committed")
    assert second.backup_id == first.backup_id
    ids = [b.backup_id for b in BackupStore.from_settings().list_backups("postgres")]
    assert ids.count(first.backup_id) == 1


def test_failed_run_releases_its_slot_so_a_retry_can_run(devstack):
    slot = _unique_slot()
    real = aws.client("s3")
    settings_store = BackupStore.from_settings()
    before = {b.backup_id for b in settings_store.list_backups("postgres")}
    # S3 refuses the commit marker: the run fails after its data objects were written
    with pytest.raises(BackupError, match="ServiceUnavailable"):
        run_backup("postgres", slot=slot, store=_failing_commit(settings_store))
    bucket = settings_store.bucket
    # Then its lock is gone, its objects are removed, and a retry of the same slot runs
    assert {b.backup_id for b in settings_store.list_backups("postgres")} == before
    with pytest.raises(real.exceptions.ClientError):
        real.head_object(Bucket=bucket, Key=lock_key("postgres", parse_time(slot)))
    retry = run_backup("postgres", slot=slot)
    assert retry.status == "ok"


def _failing_commit(store: BackupStore) -> BackupStore:
    """A store whose manifest write fails (S3 refusing the commit marker)."""
    from botocore.exceptions import ClientError

    real_s3 = store.s3

    class _S3:
        def put_object(self, **kwargs):
            if kwargs["Key"].endswith("/manifest.json"):
                raise ClientError(
                    {"Error": {"Code": "ServiceUnavailable", "Message": "injected"}}, "PutObject"
                )
            return real_s3.put_object(**kwargs)

        def __getattr__(self, name):
            return getattr(real_s3, name)

    return BackupStore(store.bucket, store.kms_key_id, _S3())


def test_pinned_backup_records_its_reason_and_lists_as_pinned(devstack):
    result = run_backup("postgres", on_demand=True, pin=True, reason="before migration 005")
    assert result.manifest.pinned and result.manifest.pin_reason == "before migration 005"
    [listed] = [
        b for b in BackupStore.from_settings().list_backups("postgres") if b.backup_id == result.backup_id
    ]
    assert listed.pinned and listed.status == "complete"
    with pytest.raises(ConfigError, match="reason"):
        run_backup("postgres", on_demand=True, pin=True)


def test_every_run_leaves_an_audit_record(devstack):
    result = run_backup("postgres", on_demand=True)
    s3 = aws.client("s3")
    bucket = BackupStore.from_settings().bucket
    keys = [
        o["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="audit/")
        for o in page.get("Contents", [])
    ]
    docs = [json.loads(s3.get_object(Bucket=bucket, Key=k)["Body"].read()) for k in keys[-20:]]
    mine = [d for d in docs if d.get("backup_id") == result.backup_id]
    assert mine and mine[0]["result"] == "ok" and mine[0]["source"] == "postgres"


def test_unreachable_database_fails_loudly_and_commits_nothing(extra_sources):
    with pytest.raises(BackupError, match="nothing was committed") as caught:
        run_backup("pgbroken", on_demand=True)
    assert "pw@" not in str(caught.value)
    assert BackupStore.from_settings().list_backups("pgbroken") == []


def test_client_side_encrypted_backup_stores_ciphertext_and_restores(extra_sources):
    result = run_backup("pgcse", on_demand=True)
    manifest = result.manifest
    assert manifest.encryption.client_side
    [entry] = manifest.objects
    assert entry.encryption == CLIENT_SIDE_ENCRYPTION and entry.plaintext_bytes
    store = BackupStore.from_settings()
    with store.open_object("pgcse", manifest.backup_id, entry.key) as body:
        head = body.read(5)
    assert head != b"PGDMP"  # the stored bytes are not a readable dump
    target = create_database("test_backup_cse")
    try:
        restored = ENGINE.restore(pg_url(target), store.object_source(manifest))
        assert restored.counts == manifest.counts
    finally:
        drop_database(target)
