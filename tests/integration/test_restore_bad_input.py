"""`lastgood restore` refuses bad input with a clear message and a non-zero exit, before any write."""

from __future__ import annotations

import io
import time

import pytest
from lastgood.backups.keys import object_key
from lastgood.backups.manifest import new_backup_id
from lastgood.backups.reader import VerifiedObjectSource
from lastgood.backups.store import BackupStore

from tests.helpers.restore import (
    backup_now,
    env,
    flipped_byte,
    mongo_db_of,
    mongo_snapshot,
    object_keys,
    pg_is_empty,
    run_cli,
    wipe,
)

pytestmark = pytest.mark.devstack


@pytest.fixture(scope="module")
def pg_backup(devstack) -> str:
    devstack.seed()
    return backup_now("postgres")


@pytest.fixture
def empty_pg_scratch(devstack):
    scratch = env("SCRATCH_DATABASE_URL")
    wipe("postgres", scratch)
    yield scratch
    wipe("postgres", scratch)


def test_unknown_backup_id_is_refused(devstack, empty_pg_scratch):
    # When a well-formed id no source has is restored
    result = run_cli("restore", "20000101T000000Z-abcdef", "--target", empty_pg_scratch)
    # Then it exits 7 (BackupNotFound) saying so
    assert result.code == 7
    assert "unknown backup id '20000101T000000Z-abcdef'" in result.err
    # And a malformed id is named as such
    bad = run_cli("restore", "not-an-id", "--target", empty_pg_scratch)
    assert bad.code == 7 and "expected YYYYMMDDTHHMMSSZ-xxxxxx" in bad.err


def test_incomplete_backup_without_manifest_is_refused(devstack, empty_pg_scratch):
    # Given objects under a backup id that has no manifest.json (a run that never committed)
    store = BackupStore.from_settings()
    backup_id = new_backup_id()
    key = object_key("postgres", backup_id, "app.dump")
    store.s3.put_object(Bucket=store.bucket, Key=key, Body=b"PGDMP partial", **store.sse_args())
    try:
        # When it is restored
        result = run_cli("restore", backup_id, "--target", empty_pg_scratch)
        # Then it is refused as incomplete and nothing was written
        assert result.code == 6
        assert "incomplete (no manifest.json)" in result.err and backup_id in result.err
        assert pg_is_empty(empty_pg_scratch)
    finally:
        store.s3.delete_object(Bucket=store.bucket, Key=key)


def test_checksum_mismatch_is_refused_before_anything_is_written(devstack, pg_backup, empty_pg_scratch):
    # Given the backup's dump object with one byte flipped in S3
    (key,) = object_keys("postgres", pg_backup)
    with flipped_byte(key):
        # When it is restored into an empty database
        result = run_cli("restore", pg_backup, "--target", empty_pg_scratch)
        # Then the restore refuses, naming the object, and the target is still empty
        assert result.code == 6
        assert "app.dump" in result.err and "SHA-256" in result.err
        assert "nothing was written" in result.err
        assert pg_is_empty(empty_pg_scratch)


def test_unreachable_target_is_refused(devstack, pg_backup):
    # When the target does not answer
    result = run_cli("restore", pg_backup, "--target", "postgresql://postgres@127.0.0.1:9/nowhere")
    # Then it exits 8 naming the (redacted) target as unreachable
    assert result.code == 8
    assert "unreachable" in result.err and "127.0.0.1:9" in result.err
    assert "partially restored" not in result.err


def test_non_empty_target_is_refused_without_force(devstack, pg_backup):
    # Given the source database itself (not empty) as the target
    # When it is restored without --force
    result = run_cli("restore", pg_backup, "--target", env("DATABASE_URL"))
    # Then it is refused (exit 8) and the data is untouched
    assert result.code == 8
    assert "is not empty" in result.err and "--force" in result.err


def test_wrong_engine_for_the_target_is_refused(devstack, pg_backup):
    # When a postgres backup is pointed at a MongoDB URL
    result = run_cli("restore", pg_backup, "--target", env("SCRATCH_MONGODB_URI"))
    # Then the mismatch is named and nothing is contacted
    assert result.code == 8
    assert "a postgres backup cannot be restored into a mongodb target" in result.err


def test_restore_interrupted_half_way_completes_with_force(devstack, monkeypatch):
    # Given a MongoDB backup and an empty scratch database
    devstack.seed()
    backup_id = backup_now("mongodb")
    scratch = env("SCRATCH_MONGODB_URI")
    wipe("mongodb", scratch)
    seed = mongo_snapshot(env("MONGODB_URI"), mongo_db_of(env("MONGODB_URI")))
    # And a restore that dies once other collections are (partly) in: the last collection's data
    # object cannot be read (fault injection: an S3 read cannot be made to fail half-way on
    # demand; collections are restored in parallel, so the fault waits for the others' writes)
    real_open = VerifiedObjectSource.open_object
    manifest = BackupStore.from_settings().read_manifest("mongodb", backup_id)
    last = sorted(o.key for o in manifest.objects if o.key.endswith(".bson.gz"))[-1]

    def dying_open(self: VerifiedObjectSource, relpath: str):  # type: ignore[no-untyped-def]
        if relpath == last:
            deadline = time.monotonic() + 30
            while (
                not any(mongo_snapshot(scratch, mongo_db_of(scratch)).values())
                and time.monotonic() < deadline
            ):
                time.sleep(0.05)
            raise ConnectionResetError("injected: connection lost mid-restore")
        return real_open(self, relpath)

    try:
        with monkeypatch.context() as patch:
            patch.setattr(VerifiedObjectSource, "open_object", dying_open)
            first = run_cli("restore", backup_id, "--target", scratch)
        # Then the first run fails, says the target may be partial and how to complete it
        assert first.code == 8
        assert "partially restored" in first.err and "--force" in first.err
        partial = mongo_snapshot(scratch, mongo_db_of(scratch))
        assert partial and partial != seed
        # And a second run without --force refuses the non-empty target
        assert run_cli("restore", backup_id, "--target", scratch).code == 8
        # When it runs again with --force
        second = run_cli("restore", backup_id, "--target", scratch, "--force")
        # Then it completes and the data equals the seed
        assert second.code == 0, second.err
        assert mongo_snapshot(scratch, mongo_db_of(scratch)) == seed
    finally:
        wipe("mongodb", scratch)


def test_dump_bytes_changed_in_the_restores_own_read_are_never_committed(
    devstack, pg_backup, empty_pg_scratch, monkeypatch
):
    # Given S3 answering every read of the committed dump with one byte flipped (fault
    # injection: a real S3 serves the stored bytes). The PostgreSQL restore reads the dump
    # once, streaming it into pg_restore's single transaction as it hashes it (it used to
    # verify first and read a second time; now the bytes it hashes are the bytes it applies).
    from botocore.response import StreamingBody
    from lastgood.core import aws

    (key,) = object_keys("postgres", pg_backup)
    s3 = aws.client("s3")
    real_get = s3.get_object
    reads: list[str] = []

    def flipping_get(**kwargs):  # type: ignore[no-untyped-def]
        response = real_get(**kwargs)
        if kwargs.get("Key") == key:
            reads.append(key)
            data = bytearray(response["Body"].read())
            data[len(data) // 2] ^= 0x01
            response["Body"] = StreamingBody(io.BytesIO(bytes(data)), len(data))
        return response

    monkeypatch.setattr(s3, "get_object", flipping_get)
    # When it is restored
    result = run_cli("restore", pg_backup, "--target", empty_pg_scratch)
    monkeypatch.undo()
    # Then the restore stops with the integrity error naming the dump, after one read,
    # and pg_restore's transaction was rolled back: the target is still empty
    assert result.code == 6, result.err
    assert "app.dump" in result.err and "nothing from app.dump was applied" in result.err
    assert "nothing was written" in result.err
    assert reads == [key]
    assert pg_is_empty(empty_pg_scratch)
