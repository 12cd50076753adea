"""Prune against the devstack's S3 (moto): exactly the planned backups go, nothing else."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from lastgood import aws
from lastgood.errors import RetentionError
from lastgood.manifest import BackupManifest, ObjectEntry
from lastgood.prune import PrunePartialFailure, prune_source
from lastgood.retention import RetentionPolicy
from lastgood.store import BackupStore

pytestmark = pytest.mark.devstack
NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)


def make_backup(store, source, when, *, objects=2, pinned=False, complete=True):
    backup_id = when.strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:6]
    prefix = f"backups/{source}/{backup_id}/"
    keys = [f"part-{i:04d}.bin" for i in range(objects)]

    def put(key):
        store.s3.put_object(Bucket=store.bucket, Key=prefix + key, Body=b"x")

    with ThreadPoolExecutor(32) as pool:
        list(pool.map(put, keys))
    if complete:
        manifest = BackupManifest.build(
            backup_id=backup_id,
            source=source,
            engine="postgres",
            started_at=when,
            finished_at=when + timedelta(seconds=5),
            objects=[ObjectEntry(key=k, bytes=1, sha256="0" * 64) for k in keys],
            pinned=pinned,
            pin_reason="before migration 7" if pinned else None,
        )
        store.s3.put_object(Bucket=store.bucket, Key=prefix + "manifest.json", Body=manifest.to_bytes())
    return backup_id


def ids(store, source):
    return {b.backup_id for b in store.list_backups(source)}


@pytest.fixture
def store(devstack):
    return BackupStore(devstack.env["BACKUP_BUCKET"], devstack.env["KMS_KEY_ID"], aws.client("s3"))


def test_dry_run_deletes_nothing_and_the_real_run_deletes_exactly_the_plan(store):
    # Given six daily backups, one of them pinned
    source = f"prune-{uuid.uuid4().hex[:6]}"
    made = [make_backup(store, source, NOW - timedelta(days=d), pinned=(d == 5)) for d in range(6)]
    policy = RetentionPolicy.from_dict({"keep_last": 2})
    # When planned with --dry-run
    dry = prune_source(source, store=store, policy=policy, dry_run=True, now=NOW)
    # Then nothing is deleted, and the plan keeps the 2 newest plus the pinned one
    assert ids(store, source) == set(made)
    planned_removed = {d.backup.backup_id for d in dry.plan.remove}
    assert planned_removed == {made[2], made[3], made[4]}
    pinned = next(d for d in dry.plan.keep if d.backup.backup_id == made[5])
    assert pinned.reasons == ["pinned (before migration 7)"]
    # When run for real
    real = prune_source(source, store=store, policy=policy, now=NOW)
    # Then exactly those backups (every object) are gone, nothing else
    assert ids(store, source) == set(made) - planned_removed
    left = store.s3.list_objects_v2(Bucket=store.bucket, Prefix=f"backups/{source}/")["Contents"]
    assert {o["Key"].split("/")[2] for o in left} == {made[0], made[1], made[5]}
    assert real.deleted_keys == 3 * 3


def test_a_pinned_backup_survives_any_policy(store):
    source = f"prune-{uuid.uuid4().hex[:6]}"
    pinned = make_backup(store, source, NOW - timedelta(days=400), pinned=True)
    newest = make_backup(store, source, NOW)
    for raw in ({"keep_last": 1}, {"keep_hourly": 1}, {"keep_within": "1h"}, {"keep_yearly": 1}):
        prune_source(source, store=store, policy=RetentionPolicy.from_dict(raw), now=NOW)
        assert {pinned, newest} <= ids(store, source), raw


def test_objects_are_deleted_in_batches_of_a_thousand_counted_at_the_client(store):
    # Given 2 backups of 1,000 objects each (999 data objects + the manifest) and one to keep
    # (10,000 keys → 10 requests is proven in tests/unit/test_prune_batches.py and `make bench`)
    source = f"prune-{uuid.uuid4().hex[:6]}"
    for d in range(2):
        make_backup(store, source, NOW - timedelta(days=d + 1), objects=999)
    keep = make_backup(store, source, NOW)
    calls = []
    store.s3.meta.events.register("before-call.s3.DeleteObjects", lambda **kw: calls.append(1))
    try:
        # When pruned to the newest backup
        result = prune_source(
            source, store=store, policy=RetentionPolicy.from_dict({"keep_last": 1}), force=True, now=NOW
        )
    finally:
        store.s3.meta.events.unregister("before-call.s3.DeleteObjects")
    # Then 2,000 keys went in 2 DeleteObjects requests (counted at the client)
    assert result.deleted_keys == 2_000
    assert len(calls) == result.requests == 2
    assert ids(store, source) == {keep}


def test_a_partial_delete_failure_reports_the_keys_that_remain(store, monkeypatch):
    source = f"prune-{uuid.uuid4().hex[:6]}"
    old = make_backup(store, source, NOW - timedelta(days=2))
    make_backup(store, source, NOW)
    real = store.s3.delete_objects

    def flaky(**kwargs):
        # fault injection: S3 answers InternalError for one key (a real bucket can do this)
        victim = kwargs["Delete"]["Objects"][-1]["Key"]
        kwargs["Delete"]["Objects"] = kwargs["Delete"]["Objects"][:-1]
        response = real(**kwargs)
        response.setdefault("Errors", []).append(
            {"Key": victim, "Code": "InternalError", "Message": "try again"}
        )
        return response

    monkeypatch.setattr(store.s3, "delete_objects", flaky)
    with pytest.raises(PrunePartialFailure) as err:
        prune_source(source, store=store, policy=RetentionPolicy.from_dict({"keep_last": 1}), now=NOW)
    remaining = store.s3.list_objects_v2(Bucket=store.bucket, Prefix=f"backups/{source}/{old}/")["Contents"]
    assert next(o["Key"] for o in remaining) in str(err.value)
    # and the half-pruned backup reads as incomplete (its manifest went first), never as valid
    assert {b.backup_id: b.status for b in store.list_backups(source)}[old] == "incomplete"


def test_a_listing_that_fails_half_way_deletes_nothing(store, monkeypatch):
    source = f"prune-{uuid.uuid4().hex[:6]}"
    made = {make_backup(store, source, NOW - timedelta(days=d)) for d in range(3)}

    def broken(*args, **kwargs):
        raise ConnectionError("listing interrupted")

    monkeypatch.setattr(store, "list_backups", broken)
    with pytest.raises(ConnectionError):
        prune_source(source, store=store, policy=RetentionPolicy.from_dict({"keep_last": 1}), now=NOW)
    monkeypatch.undo()
    assert ids(store, source) == made


def test_a_malformed_policy_deletes_nothing(store, devstack):
    from lastgood.prune import policy_for

    with pytest.raises(RetentionError, match="unknown retention keys"):
        policy_for("postgres", {"keep_dayly": 3})


def test_objects_under_object_lock_are_skipped_and_reported_not_errors(devstack):
    # Given a bucket with Object Lock and a backup whose objects are retained in COMPLIANCE mode
    s3 = aws.client("s3")
    bucket = f"locked-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
    store = BackupStore(bucket, None, s3)
    source = "locked"
    old = make_backup(store, source, NOW - timedelta(days=3))
    make_backup(store, source, NOW)
    until = datetime.now(UTC) + timedelta(days=1)
    for obj in s3.list_objects_v2(Bucket=bucket, Prefix=f"backups/{source}/{old}/")["Contents"]:
        s3.put_object_retention(
            Bucket=bucket, Key=obj["Key"], Retention={"Mode": "COMPLIANCE", "RetainUntilDate": until}
        )
    # When pruned
    result = prune_source(source, store=store, policy=RetentionPolicy.from_dict({"keep_last": 1}), now=NOW)
    # Then the locked objects are reported as skipped, not as a failure
    assert result.locked_backups == [old] and not result.failed
    assert result.deleted_keys == 0
    assert old in {b.backup_id for b in store.list_backups(source)}
