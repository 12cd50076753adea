"""Pin records and legal holds against the devstack's moto S3 (Object Lock bucket included)."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from lastgood.backups.keys import PINS_DIR, backup_prefix
from lastgood.backups.manifest import BackupManifest
from lastgood.backups.pinrecord import PinRecord, pin_state
from lastgood.backups.pins import set_pinned
from lastgood.backups.store import BackupStore
from lastgood.core import aws
from lastgood.core.errors import BackupError, BackupIntegrityError
from lastgood.core.settings import get_settings

from tests.helpers.restore import run_cli

pytestmark = pytest.mark.devstack


def _s3():
    return boto3.session.Session().client(
        "s3", region_name=get_settings().aws_region, config=aws.DEFAULT_CONFIG
    )


def _commit(store: BackupStore, source: str, when: datetime) -> str:
    backup_id = store.new_backup_id(when)
    with store.writer(source, backup_id) as writer:
        with writer.open_object("db.dump") as out:
            out.write(b"bytes")
        writer.commit(
            BackupManifest.build(
                backup_id=backup_id,
                source=source,
                engine="postgres",
                started_at=when,
                finished_at=when,
                objects=writer.entries,
            )
        )
    return backup_id


def _keys(store: BackupStore, prefix: str) -> list[str]:
    pages = store.s3.get_paginator("list_objects_v2").paginate(Bucket=store.bucket, Prefix=prefix)
    return sorted(o["Key"] for page in pages for o in page.get("Contents", []))


@pytest.fixture
def lock_bucket_store(devstack) -> BackupStore:
    s3 = _s3()
    bucket = f"lastgood-lock-{secrets.token_hex(4)}"
    s3.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
    return BackupStore(bucket, None, s3)


def test_pin_sets_a_legal_hold_on_every_object_where_the_bucket_has_object_lock(lock_bucket_store):
    store = lock_bucket_store
    # Given a backup in a bucket with Object Lock
    backup_id = _commit(store, "pglock", datetime.now(UTC))
    # When it is pinned
    result = set_pinned(backup_id, True, reason="audit 2025", store=store)
    # Then a pin record exists and every object of the backup is under a legal hold
    assert result.legal_hold and PINS_DIR in result.record_key
    keys = _keys(store, backup_prefix("pglock", backup_id))
    holds = {
        k: store.s3.head_object(Bucket=store.bucket, Key=k).get("ObjectLockLegalHoldStatus") for k in keys
    }
    assert set(holds.values()) == {"ON"}, holds
    # When it is unpinned: Then the holds are released and the state is unpinned (a new record)
    unpinned = set_pinned(backup_id, False, store=store)
    assert unpinned.record_key != result.record_key
    data_key = next(k for k in keys if k.endswith("/db.dump"))
    assert store.s3.head_object(Bucket=store.bucket, Key=data_key).get("ObjectLockLegalHoldStatus") == "OFF"
    [listed] = [b for b in store.list_backups("pglock") if b.backup_id == backup_id]
    assert listed.pinned is False


def test_an_unreadable_pin_record_counts_as_pinned(devstack):
    store = BackupStore(BackupStore.from_settings().bucket, None, _s3())
    source = f"pgpin{secrets.token_hex(3)}"
    backup_id = _commit(store, source, datetime.now(UTC) - timedelta(days=3))
    result = set_pinned(backup_id, True, reason="keep", store=store)
    # Given its newest record is cut (a partial write, bit rot)
    body = store.s3.get_object(Bucket=store.bucket, Key=result.record_key)["Body"].read()
    PinRecord.from_json(body)  # what was written is what the model reads
    store.s3.put_object(Bucket=store.bucket, Key=result.record_key, Body=body[:10])
    # Then the backup still reads as pinned (fail safe)
    keys = _keys(store, backup_prefix(source, backup_id))
    state = pin_state(store.s3, store.bucket, keys, None)
    assert state.pinned and "unreadable" in (state.reason or "")
    with pytest.raises(BackupIntegrityError, match="unreadable"):
        PinRecord.from_json(body[:10])


def test_pin_refuses_an_incomplete_backup_and_an_unknown_id_with_a_clear_message(devstack):
    assert run_cli("pin", "20990101T000000Z-abcdef", "--reason", "x").code == 7
    cli = run_cli("pin", "not-an-id", "--reason", "x")
    assert cli.code == 7 and "unknown backup id" in cli.err and "Traceback" not in cli.err


def test_a_data_object_may_not_take_a_name_lastgood_uses_for_its_records(devstack):
    store = BackupStore(BackupStore.from_settings().bucket, None, _s3())
    writer = store.writer("pgnames", store.new_backup_id())
    for name in ("db/manifest.json", "x/verification.json", "pins/20250101T000000.000000Z-abcdef.pin.json"):
        with pytest.raises(BackupError, match="reserved"), writer.open_object(name):
            pass
