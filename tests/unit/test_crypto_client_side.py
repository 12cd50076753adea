"""Client-side encryption (AWS Encryption SDK + KMS) through the backup writer, against moto's KMS."""

from __future__ import annotations

import hashlib
import os
from datetime import UTC, datetime

import pytest
from lastgood.backups.manifest import BackupManifest
from lastgood.backups.store import BackupStore
from lastgood.core import aws
from lastgood.core.errors import BackupIntegrityError
from lastgood.core.settings import reset_settings
from lastgood.storage.crypto import CLIENT_SIDE_ENCRYPTION, decrypt_bytes, encrypt_bytes, resolve_key_arn
from lastgood.storage.multipart import MIN_PART_SIZE
from moto import mock_aws

from tests.helpers.backup_fakes import FakeS3

T0 = datetime(2025, 1, 29, tzinfo=UTC)


@pytest.fixture
def kms_key(monkeypatch):
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_KMS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    reset_settings()
    aws.reset_clients()
    resolve_key_arn.cache_clear()
    with mock_aws():
        key_id = aws.client("kms").create_key(Description="lastgood test")["KeyMetadata"]["KeyId"]
        aws.client("kms").create_alias(AliasName="alias/lastgood-test", TargetKeyId=key_id)
        yield "alias/lastgood-test"
    aws.reset_clients()
    resolve_key_arn.cache_clear()
    reset_settings()


def test_small_payload_round_trips_and_ciphertext_differs(kms_key):
    ciphertext = encrypt_bytes(b"secret rows", kms_key)
    assert b"secret rows" not in ciphertext
    assert decrypt_bytes(ciphertext, kms_key) == b"secret rows"


def test_writer_stores_only_ciphertext_and_restore_side_decrypts_a_multipart_object(kms_key):
    # Given a source with client-side encryption and an object larger than one part
    fake = FakeS3()
    store = BackupStore("bk", kms_key, fake, part_size=MIN_PART_SIZE)
    plaintext = os.urandom(1024) * (MIN_PART_SIZE * 2 // 1024 + 3)
    writer = store.writer("postgres", "20250129T020000Z-0000c5", client_side_encryption=True)
    # When it is streamed in chunks
    with writer.open_object("db.dump") as out:
        for i in range(0, len(plaintext), 1 << 20):
            out.write(plaintext[i : i + (1 << 20)])
        out.count = 3
    [entry] = writer.entries
    stored = fake.objects["backups/postgres/20250129T020000Z-0000c5/db.dump"]
    # Then S3 holds ciphertext; sha256/bytes describe it, plaintext_bytes the input
    assert entry.encryption == CLIENT_SIDE_ENCRYPTION
    assert entry.plaintext_bytes == len(plaintext) and entry.count == 3
    assert entry.bytes == len(stored) and entry.sha256 == hashlib.sha256(stored).hexdigest()
    assert entry.parts >= 2
    assert plaintext[:4096] not in stored
    manifest = BackupManifest.build(
        backup_id=writer.backup_id,
        source="postgres",
        engine="postgres",
        started_at=T0,
        finished_at=T0,
        objects=writer.entries,
        kms_key_id=kms_key,
        client_side=True,
    )
    writer.commit(manifest)
    # And the verified source yields the plaintext back
    with store.object_source(manifest).open_object("db.dump") as stream:
        restored = b"".join(iter(lambda: stream.read(1 << 20), b""))
    assert restored == plaintext
    # And a flipped ciphertext byte is caught before decryption is trusted
    fake.objects["backups/postgres/20250129T020000Z-0000c5/db.dump"] = stored[:-1] + bytes([stored[-1] ^ 1])
    with pytest.raises(BackupIntegrityError):
        store.object_source(manifest)


def test_failure_inside_an_encrypted_object_aborts_the_upload(kms_key):
    fake = FakeS3()
    store = BackupStore("bk", kms_key, fake, part_size=MIN_PART_SIZE)
    writer = store.writer("postgres", "20250129T020000Z-0000c6", client_side_encryption=True)
    with pytest.raises(RuntimeError, match="boom"), writer.open_object("db.dump") as out:
        out.write(os.urandom(MIN_PART_SIZE * 2))
        raise RuntimeError("boom")
    assert fake.uploads == {}
    assert writer.entries == []
