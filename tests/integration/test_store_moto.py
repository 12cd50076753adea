"""BackupStore against the devstack's S3 (moto server): multipart + checksums + SSE-KMS, verification, locks."""

from __future__ import annotations

import hashlib
import os
from datetime import UTC, datetime, timedelta

import pytest
from lastgood.backups.manifest import BackupManifest, new_backup_id
from lastgood.backups.store import BackupStore
from lastgood.core import aws
from lastgood.core.errors import BackupIntegrityError
from lastgood.storage.multipart import MIN_PART_SIZE

from tests.helpers import verification

pytestmark = pytest.mark.devstack


@pytest.fixture
def store(devstack) -> BackupStore:
    base = BackupStore.from_settings()
    return BackupStore(base.bucket, base.kms_key_id, aws.client("s3"), part_size=MIN_PART_SIZE)


def _write(store: BackupStore, source: str, payload: bytes) -> BackupManifest:
    backup_id = new_backup_id()
    writer = store.writer(source, backup_id)
    with writer.open_object("data/blob.bin") as out:
        for i in range(0, len(payload), 1 << 20):
            out.write(payload[i : i + (1 << 20)])
        out.count = 1
    now = datetime.now(UTC)
    manifest = BackupManifest.build(
        backup_id=backup_id,
        source=source,
        engine="test",
        started_at=now,
        finished_at=now,
        objects=writer.entries,
        kms_key_id=store.kms_key_id,
    )
    writer.commit(manifest)
    return manifest


def test_multipart_object_is_kms_encrypted_checksummed_and_byte_identical(store):
    payload = os.urandom(MIN_PART_SIZE * 2 + 12345)
    manifest = _write(store, "test-store-multipart", payload)
    [entry] = manifest.objects
    assert entry.parts == 3 and entry.sha256 == hashlib.sha256(payload).hexdigest()
    key = f"backups/test-store-multipart/{manifest.backup_id}/data/blob.bin"
    head = store.s3.head_object(Bucket=store.bucket, Key=key)
    assert head["ServerSideEncryption"] == "aws:kms"
    assert head["ContentLength"] == len(payload)
    store.verify_object(manifest, "data/blob.bin")
    assert store.s3.list_multipart_uploads(Bucket=store.bucket).get("Uploads", []) == []


def test_a_changed_object_fails_verification_before_any_restore(store):
    manifest = _write(store, "test-store-tamper", b"good bytes" * 1000)
    key = f"backups/test-store-tamper/{manifest.backup_id}/data/blob.bin"
    store.s3.put_object(Bucket=store.bucket, Key=key, Body=b"evil bytes" * 1000)
    with pytest.raises(BackupIntegrityError, match="SHA-256"):
        store.object_source(manifest)
    store.s3.put_object(Bucket=store.bucket, Key=key, Body=b"short")
    with pytest.raises(BackupIntegrityError, match="size"):
        store.verify_object(manifest, "data/blob.bin")


def test_slot_lock_is_a_conditional_write(store):
    slot = datetime(2003, 1, 1, tzinfo=UTC) + timedelta(hours=int.from_bytes(os.urandom(2)))
    first = store.acquire_slot_lock("test-store-lock", slot, backup_id=new_backup_id())
    second = store.acquire_slot_lock("test-store-lock", slot, backup_id=new_backup_id())
    assert first.acquired and not second.acquired
    assert second.holder["backup_id"] == first.holder["backup_id"]


def test_listing_reports_incomplete_complete_and_verified(store):
    done = _write(store, "test-store-list", b"a")
    verified = _write(store, "test-store-list", b"b")
    verification.write(store, verification.integrity_only("test-store-list", verified.backup_id))
    partial = store.writer("test-store-list", new_backup_id())
    with partial.open_object("x.bin") as out:
        out.write(b"c")
    statuses = {b.backup_id: b.status for b in store.list_backups("test-store-list")}
    assert statuses[done.backup_id] == "complete"
    assert statuses[verified.backup_id] == "verified"
    assert statuses[partial.backup_id] == "incomplete"
