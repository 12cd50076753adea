"""BackupStore/BackupWriter against an in-memory S3 stand-in: hashing, parts, aborts, locks, listing."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from lastgood.backups.keys import lock_key
from lastgood.backups.manifest import BackupManifest
from lastgood.backups.store import BackupStore
from lastgood.core.errors import BackupError, BackupIntegrityError, BackupNotFound
from lastgood.storage.multipart import MIN_PART_SIZE

from tests.helpers import verification
from tests.helpers.backup_fakes import FakeS3

T0 = datetime(2025, 1, 29, 2, 0, tzinfo=UTC)


def _store(fake: FakeS3) -> BackupStore:
    return BackupStore("bk", "alias/k", fake, part_size=MIN_PART_SIZE)


def _commit(store: BackupStore, writer, started=T0) -> BackupManifest:
    manifest = BackupManifest.build(
        backup_id=writer.backup_id,
        source=writer.source,
        engine="postgres",
        started_at=started,
        finished_at=started + timedelta(seconds=1),
        objects=writer.entries,
        kms_key_id=store.kms_key_id,
    )
    writer.commit(manifest)
    return manifest


def test_small_object_is_one_put_with_sse_kms_and_its_sha256_recorded():
    fake = FakeS3()
    store = _store(fake)
    writer = store.writer("postgres", "20250129T020000Z-000001")
    with writer.open_object("db.dump") as out:
        out.write(b"hello ")
        out.write(b"world")
        out.count = 2
    [entry] = writer.entries
    assert entry.bytes == 11 and entry.count == 2 and entry.parts == 1
    assert entry.sha256 == hashlib.sha256(b"hello world").hexdigest()
    key = "backups/postgres/20250129T020000Z-000001/db.dump"
    assert fake.objects[key] == b"hello world"
    assert fake.meta[key]["ServerSideEncryption"] == "aws:kms"
    assert fake.meta[key]["SSEKMSKeyId"] == "alias/k"
    assert "create_multipart_upload" not in fake.calls


def test_large_object_streams_in_bounded_parts_and_hashes_the_whole_object():
    # Given 2.5 parts of data written in odd-sized chunks
    fake = FakeS3()
    store = _store(fake)
    data = hashlib.sha256(b"seed").digest() * (MIN_PART_SIZE * 5 // 2 // 32)
    writer = store.writer("postgres", "20250129T020000Z-000002")
    with writer.open_object("db.dump") as out:
        for i in range(0, len(data), 300_001):
            out.write(data[i : i + 300_001])
    # Then three parts were uploaded in order with per-part checksums, and the object is intact
    [entry] = writer.entries
    assert entry.parts == 3
    assert entry.bytes == len(data)
    assert entry.sha256 == hashlib.sha256(data).hexdigest()
    assert fake.objects["backups/postgres/20250129T020000Z-000002/db.dump"] == data
    assert fake.uploads == {}


def test_a_writer_reusing_its_buffer_cannot_change_bytes_already_written():
    # Given a caller that fills one bytearray again and again (readinto style), and passes
    # it as a bytearray and as a memoryview
    fake = FakeS3()
    store = _store(fake)
    buf = bytearray(700_001)
    expected = bytearray()
    writer = store.writer("postgres", "20250129T020000Z-000003")
    with writer.open_object("db.dump") as out:
        for i in range(MIN_PART_SIZE * 3 // len(buf)):
            buf[:] = bytes([i % 251]) * len(buf)
            out.write(buf if i % 2 else memoryview(buf))
            expected += buf
    # Then the stored object is every write as it was when written, in exact-size parts
    [entry] = writer.entries
    assert fake.objects["backups/postgres/20250129T020000Z-000003/db.dump"] == bytes(expected)
    assert entry.sha256 == hashlib.sha256(expected).hexdigest() and entry.parts == 3


def test_exception_inside_the_block_aborts_the_upload_and_propagates():
    fake = FakeS3()
    store = _store(fake)
    writer = store.writer("postgres", "20250129T020000Z-000003")
    with pytest.raises(RuntimeError, match="pg_dump died"), writer.open_object("db.dump") as out:
        out.write(b"x" * (MIN_PART_SIZE + 10))
        raise RuntimeError("pg_dump died")
    assert "abort_multipart_upload" in fake.calls
    assert fake.uploads == {}
    assert writer.entries == []
    assert not any(k.endswith("db.dump") for k in fake.objects)


def test_failing_part_upload_aborts_and_no_manifest_can_be_committed():
    # Given S3 failing part 2
    fake = FakeS3(fail_part=2)
    store = _store(fake)
    writer = store.writer("postgres", "20250129T020000Z-000004")
    # When three parts are streamed
    with pytest.raises(Exception, match="InternalError"), writer.open_object("db.dump") as out:
        for _ in range(3):
            out.write(b"y" * MIN_PART_SIZE)
    # Then the upload is aborted (no orphan parts) and nothing is listed as written
    assert "abort_multipart_upload" in fake.calls
    assert fake.uploads == {}
    assert writer.entries == []


def test_commit_writes_the_manifest_last_and_only_once():
    fake = FakeS3()
    store = _store(fake)
    writer = store.writer("postgres", "20250129T020000Z-000005")
    with writer.open_object("db.dump") as out:
        out.write(b"data")
    manifest = _commit(store, writer)
    assert fake.calls[-1] == "put_object"
    assert store.read_manifest("postgres", writer.backup_id) == manifest
    with pytest.raises(BackupError, match="already committed"), writer.open_object("late.dump"):
        pass
    # A second writer of the same backup can replace nothing (conditional creates only)
    second = store.writer("postgres", writer.backup_id)
    with (
        pytest.raises(BackupError, match="already exists; refusing to overwrite"),
        second.open_object("db.dump") as out,
    ):
        out.write(b"data")
    third = store.writer("postgres", writer.backup_id)
    with third.open_object("other.dump") as out:
        out.write(b"data")
    with pytest.raises(BackupError, match="already has a different manifest"):
        _commit(store, third)
    assert "backups/postgres/20250129T020000Z-000005/db.dump" in fake.objects


def test_commit_refuses_a_manifest_that_does_not_list_what_was_written():
    fake = FakeS3()
    store = _store(fake)
    writer = store.writer("postgres", "20250129T020000Z-000006")
    with writer.open_object("db.dump") as out:
        out.write(b"data")
    manifest = BackupManifest.build(
        backup_id=writer.backup_id,
        source="postgres",
        engine="postgres",
        started_at=T0,
        finished_at=T0,
        objects=[],
    )
    with pytest.raises(BackupError, match="differ"):
        writer.commit(manifest)


def test_discard_removes_a_failed_runs_finished_objects():
    fake = FakeS3()
    store = _store(fake)
    with pytest.raises(RuntimeError), store.writer("mongodb", "20250129T020000Z-000007") as writer:
        with writer.open_object("db/a.bson.gz") as out:
            out.write(b"a")
        raise RuntimeError("cursor died")
    assert not any(k.startswith("backups/mongodb/") for k in fake.objects)


def test_listing_is_newest_first_with_status_size_and_pin():
    fake = FakeS3()
    store = _store(fake)
    ids = ["20250129T010000Z-aaaaaa", "20250129T020000Z-bbbbbb", "20250129T030000Z-cccccc"]
    for i, backup_id in enumerate(ids):
        writer = store.writer("postgres", backup_id)
        with writer.open_object("db.dump") as out:
            out.write(b"z" * (i + 1))
        if i == 2:
            continue  # the newest never committed
        manifest = BackupManifest.build(
            backup_id=backup_id,
            source="postgres",
            engine="postgres",
            started_at=T0,
            finished_at=T0,
            objects=writer.entries,
            pinned=i == 0,
            pin_reason="before migration" if i == 0 else None,
        )
        writer.commit(manifest)
    verification.write(store, verification.integrity_only("postgres", ids[1]))
    listing = store.list_backups("postgres")
    assert [b.backup_id for b in listing] == list(reversed(ids))
    assert [b.status for b in listing] == ["incomplete", "verified", "complete"]
    assert [b.pinned for b in listing] == [False, False, True]
    assert listing[2].pin_reason == "before migration"
    assert listing[0].size == 3 and listing[0].objects == 1
    assert store.latest_backup("postgres").backup_id == ids[1]
    assert store.list_sources() == ["postgres"]
    with pytest.raises(BackupNotFound):
        store.read_manifest("postgres", ids[2])


def test_verified_source_detects_a_tampered_object_before_restore():
    fake = FakeS3()
    store = _store(fake)
    writer = store.writer("postgres", "20250129T020000Z-000008")
    with writer.open_object("db.dump") as out:
        out.write(b"original bytes")
    manifest = _commit(store, writer)
    assert store.object_source(manifest).list_objects() == ["db.dump"]
    with store.object_source(manifest).open_object("db.dump") as stream:
        assert stream.read() == b"original bytes"
    fake.objects["backups/postgres/20250129T020000Z-000008/db.dump"] = b"tampered bytes"
    with pytest.raises(BackupIntegrityError, match="SHA-256"):
        store.object_source(manifest)
    unverified = store.object_source(manifest, verify_first=False)
    with pytest.raises(BackupIntegrityError, match="SHA-256"), unverified.open_object("db.dump") as stream:
        while stream.read(4):
            pass


def test_slot_lock_is_taken_once_released_on_failure_and_stale_locks_are_taken_over():
    fake = FakeS3()
    store = _store(fake)
    first = store.acquire_slot_lock("postgres", T0, backup_id="20250129T020000Z-000009", now=T0)
    assert first.acquired and first.key == lock_key("postgres", T0) == "locks/postgres/20250129T020000Z.lock"
    duplicate = store.acquire_slot_lock("postgres", T0, backup_id="20250129T020001Z-00000a", now=T0)
    assert not duplicate.acquired and duplicate.holder["backup_id"] == "20250129T020000Z-000009"
    # A failed run releases: a retry can run.
    store.release_slot_lock(first)
    retry = store.acquire_slot_lock("postgres", T0, backup_id="20250129T020100Z-00000b", now=T0)
    assert retry.acquired
    # A run that died (lock still 'running' past the lease, no manifest) is taken over.
    later = T0 + timedelta(hours=1)
    takeover = store.acquire_slot_lock("postgres", T0, backup_id="20250129T030000Z-00000c", now=later)
    assert takeover.acquired and takeover.taken_over
    # A done slot is never taken over.
    store.complete_slot_lock(takeover, "20250129T030000Z-00000c")
    again = store.acquire_slot_lock(
        "postgres", T0, backup_id="20250129T040000Z-00000d", now=later + timedelta(days=1)
    )
    assert not again.acquired and again.holder["state"] == "done"


def test_part_size_below_the_s3_minimum_is_refused():
    with pytest.raises(ValueError, match="part_size"):
        BackupStore("bk", None, FakeS3(), part_size=1024)


def test_writes_past_the_deadline_abandon_the_object_cleanly():
    import time

    fake = FakeS3()
    store = _store(fake)
    writer = store.writer("postgres", "20250129T020000Z-00000e", deadline=time.monotonic() - 1)
    with pytest.raises(BackupError, match="time limit"), writer.open_object("db.dump") as out:
        out.write(b"late")
    assert writer.entries == [] and fake.uploads == {}
