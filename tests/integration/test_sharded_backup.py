"""A MongoDB backup fanned out over shards (`lastgood backup --shard I/N`, `--commit-shards N`),
against the devstack's MongoDB and S3: what makes the shards' pieces one committed backup, and
every way the commit refuses (nothing committed) or a shard writes nothing."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from lastgood.backups.keys import backup_prefix, is_shard_key, manifest_key, object_key, shard_record_key
from lastgood.backups.manifest import ObjectEntry
from lastgood.backups.restore import restore_backup
from lastgood.backups.shard import read_record, run_shard, shard_backup_id
from lastgood.backups.shard_commit import commit_shards
from lastgood.backups.store import BackupStore
from lastgood.core.errors import BackupError
from lastgood.core.timefmt import parse_time
from lastgood.engines.mongodb_dump import shard_of

from tests.helpers.restore import run_cli, wipe
from tests.helpers.shards import DATABASE, SHARDS, SOURCE, seed_sharded_database, slot, use_sharded_config

pytestmark = pytest.mark.devstack


@pytest.fixture
def sharded(devstack: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, int]]:
    use_sharded_config(monkeypatch)
    yield seed_sharded_database(os.environ["MONGODB_URI"])


def _keys(store: BackupStore, backup_id: str) -> list[str]:
    listed = store.s3.list_objects_v2(Bucket=store.bucket, Prefix=backup_prefix(SOURCE, backup_id))
    return sorted(o["Key"] for o in listed.get("Contents", []))


def _backup_id(slot_text: str) -> str:
    return shard_backup_id(SOURCE, parse_time(slot_text))


def test_the_shards_and_the_commit_make_one_backup_of_every_collection_that_restores_exactly(
    sharded: dict[str, int],
) -> None:
    store, when = BackupStore.from_settings(), slot(1)
    # Given every shard of the slot run
    results = [run_shard(SOURCE, slot=when, shard=i, of=SHARDS, store=store) for i in range(SHARDS)]
    assert {r.status for r in results} == {"ok"} and len({r.backup_id for r in results}) == 1
    backup_id = results[0].backup_id
    assert backup_id == _backup_id(when)
    # Then each shard recorded exactly its own collections
    for i in range(SHARDS):
        record = read_record(store, SOURCE, backup_id, i, SHARDS)
        assert record is not None and record.collections
        assert all(shard_of(c, SHARDS) == i for c in record.collections)
    # And nothing is restorable before the commit (no manifest: an incomplete backup)
    assert not store.has_manifest(SOURCE, backup_id)
    # When the commit runs
    committed = commit_shards(SOURCE, slot=when, of=SHARDS, store=store)
    # Then one manifest lists every collection's two objects under the single-process names …
    manifest = committed.manifest
    assert committed.status == "ok" and manifest is not None and manifest.backup_id == backup_id
    expected_keys = {
        f"{DATABASE}/{c}.{kind}"
        for c in (n.split(".", 1)[1] for n in sharded)
        for kind in ("bson.gz", "metadata.json.gz")
    }
    assert {o.key for o in manifest.objects} == expected_keys
    assert manifest.counts == sharded and manifest.slot == when and manifest.extra["shards"] == SHARDS
    assert not manifest.suspect
    # … the catalog shows it committed, the shard records not counted as its objects …
    (listing,) = [b for b in store.list_backups(SOURCE) if b.backup_id == backup_id]
    assert listing.committed and listing.objects == len(expected_keys)
    assert any(is_shard_key(k) for k in listing.keys)
    # … and the existing restore puts back every document of every collection (exact counts)
    scratch = os.environ["SCRATCH_MONGODB_URI"]
    wipe("mongodb", scratch)
    report = restore_backup(backup_id, source=SOURCE, target_url=scratch, store=store, safety_backup=False)
    assert report.ok and {c.name.split(".", 1)[1]: c.restored for c in report.checks} == {
        ns.split(".", 1)[1]: n for ns, n in sharded.items()
    }


def test_a_retried_shard_is_skipped_and_writes_nothing_more(sharded: dict[str, int]) -> None:
    store, when = BackupStore.from_settings(), slot(2)
    first = run_shard(SOURCE, slot=when, shard=1, of=SHARDS, store=store)
    before = _keys(store, first.backup_id or "")
    # When the state machine retries the same shard
    again = run_shard(SOURCE, slot=when, shard=1, of=SHARDS, store=store)
    # Then it is skipped and the bucket holds exactly what the first attempt wrote
    assert again.status == "skipped" and "already written" in again.message
    assert _keys(store, first.backup_id or "") == before


def test_a_commit_with_a_missing_shard_refuses_and_commits_nothing_then_succeeds_once_it_ran(
    sharded: dict[str, int],
) -> None:
    store, when = BackupStore.from_settings(), slot(3)
    backup_id = _backup_id(when)
    for i in (0, 2):
        run_shard(SOURCE, slot=when, shard=i, of=SHARDS, store=store)
    # When the commit runs while shard 1/3 has no record
    result = run_cli("backup", "--source", SOURCE, "--slot", when, "--commit-shards", str(SHARDS))
    # Then it exits 5 naming the missing shard, and nothing is committed
    assert result.code == 5, result.err
    errors = [line for line in result.err.splitlines() if line.startswith("lastgood: error:")]
    assert len(errors) == 1 and "shard(s) 1/3 have no record" in errors[0]
    assert not store.has_manifest(SOURCE, backup_id)
    # And once the shard has run, the commit (its retry) commits
    run_shard(SOURCE, slot=when, shard=1, of=SHARDS, store=store)
    done = run_cli("backup", "--source", SOURCE, "--slot", when, "--commit-shards", str(SHARDS))
    assert done.code == 0, done.err
    assert store.read_manifest(SOURCE, backup_id).counts == sharded


def test_a_shard_record_listing_an_object_missing_from_the_bucket_refuses_the_commit(
    sharded: dict[str, int],
) -> None:
    store, when = BackupStore.from_settings(), slot(4)
    backup_id = _backup_id(when)
    for i in range(SHARDS):
        run_shard(SOURCE, slot=when, shard=i, of=SHARDS, store=store)
    record = read_record(store, SOURCE, backup_id, 2, SHARDS)
    assert record is not None and record.objects
    # Given (fault injection) one of shard 2's objects deleted after its record was written
    victim = record.objects[0].key
    store.s3.delete_object(Bucket=store.bucket, Key=object_key(SOURCE, backup_id, victim))
    # When the commit runs / Then it refuses naming the object, and nothing is committed
    with pytest.raises(BackupError, match=f"lists '{victim}', which is not in the bucket"):
        commit_shards(SOURCE, slot=when, of=SHARDS, store=store)
    assert not store.has_manifest(SOURCE, backup_id)


def test_a_shard_record_whose_object_size_differs_refuses_the_commit(sharded: dict[str, int]) -> None:
    store, when = BackupStore.from_settings(), slot(5)
    backup_id = _backup_id(when)
    for i in range(SHARDS):
        run_shard(SOURCE, slot=when, shard=i, of=SHARDS, store=store)
    # Given (fault injection) shard 0's record replaced by one claiming another size for an object,
    # built with the writer's own model
    record = read_record(store, SOURCE, backup_id, 0, SHARDS)
    assert record is not None
    first = record.objects[0]
    wrong = ObjectEntry.model_validate(first.model_dump() | {"bytes": first.bytes + 1})
    forged = record.model_copy(update={"objects": [wrong, *record.objects[1:]]})
    store.put_bytes(shard_record_key(SOURCE, backup_id, 0, SHARDS), forged.to_bytes())
    # Then the commit refuses, nothing committed
    with pytest.raises(BackupError, match="recorded"):
        commit_shards(SOURCE, slot=when, of=SHARDS, store=store)
    assert not store.has_manifest(SOURCE, backup_id)


def test_a_second_commit_of_the_same_slot_is_skipped(sharded: dict[str, int]) -> None:
    store, when = BackupStore.from_settings(), slot(6)
    for i in range(SHARDS):
        run_shard(SOURCE, slot=when, shard=i, of=SHARDS, store=store)
    first = commit_shards(SOURCE, slot=when, of=SHARDS, store=store)
    manifest_body = store.s3.get_object(Bucket=store.bucket, Key=manifest_key(SOURCE, first.backup_id or ""))
    # When the commit is retried (and a shard too) / Then both are skipped, the manifest unchanged
    again = commit_shards(SOURCE, slot=when, of=SHARDS, store=store)
    assert again.status == "skipped" and again.backup_id == first.backup_id
    assert run_shard(SOURCE, slot=when, shard=0, of=SHARDS, store=store).status == "skipped"
    after = store.s3.get_object(Bucket=store.bucket, Key=manifest_key(SOURCE, first.backup_id or ""))
    assert after["ETag"] == manifest_body["ETag"]


def test_a_failing_shard_aborts_its_uploads_and_writes_no_record_and_its_retry_succeeds(
    sharded: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    from lastgood.engines import mongodb_dump

    store, when = BackupStore.from_settings(), slot(7)
    backup_id = _backup_id(when)
    real = mongodb_dump._count_docs
    calls: list[int] = []

    def failing(batch: bytes) -> int:
        # Fault injection: the connection drops after the first batch of the shard's dump
        calls.append(1)
        if len(calls) > 1:
            raise BackupError("injected: connection lost mid-dump")
        return real(batch)

    # Given shard 1 (orders: 300 documents, several batches) failing mid-dump
    with monkeypatch.context() as patch:
        patch.setattr(mongodb_dump, "_count_docs", failing)
        patch.setattr(
            "lastgood.engines.base.EngineOptions.model_fields", mongodb_dump.EngineOptions.model_fields
        )
        with pytest.raises(BackupError, match="injected"):
            run_shard(SOURCE, slot=when, shard=1, of=SHARDS, store=store)
    # Then no record, no object and no open multipart upload is left
    assert read_record(store, SOURCE, backup_id, 1, SHARDS) is None
    assert _keys(store, backup_id) == []
    uploads = store.s3.list_multipart_uploads(Bucket=store.bucket, Prefix=backup_prefix(SOURCE, backup_id))
    assert not uploads.get("Uploads")
    # And the retry dumps the shard
    assert run_shard(SOURCE, slot=when, shard=1, of=SHARDS, store=store).status == "ok"


def _commit_and_restore(store: BackupStore, when: str, expected: dict[str, int]) -> None:
    """Every shard run (skipped where done), the commit, and a verified restore with exact counts."""
    for i in range(SHARDS):
        run_shard(SOURCE, slot=when, shard=i, of=SHARDS, store=store)
    manifest = commit_shards(SOURCE, slot=when, of=SHARDS, store=store).manifest
    assert manifest is not None and manifest.counts == expected
    scratch = os.environ["SCRATCH_MONGODB_URI"]
    wipe("mongodb", scratch)
    report = restore_backup(
        manifest.backup_id, source=SOURCE, target_url=scratch, store=store, safety_backup=False
    )
    assert report.ok and {c.name.split(".", 1)[1]: c.restored for c in report.checks} == {
        ns.split(".", 1)[1]: n for ns, n in expected.items()
    }


def test_a_retry_keeps_what_an_attempt_killed_before_its_record_finished(sharded: dict[str, int]) -> None:
    store, when = BackupStore.from_settings(), slot(8)
    backup_id = _backup_id(when)
    first = run_shard(SOURCE, slot=when, shard=2, of=SHARDS, store=store)
    record = read_record(store, SOURCE, backup_id, 2, SHARDS)
    assert first.status == "ok" and record is not None
    etags = {
        o.key: store.s3.head_object(Bucket=store.bucket, Key=object_key(SOURCE, backup_id, o.key))["ETag"]
        for o in record.objects
    }
    # Given (fault injection) the attempt killed after its objects and before its record
    store.s3.delete_object(Bucket=store.bucket, Key=shard_record_key(SOURCE, backup_id, 2, SHARDS))
    # When the shard is retried / Then it keeps the finished objects (never rewritten: create-once)
    # and records exactly the same entries, re-read from the bucket
    assert run_shard(SOURCE, slot=when, shard=2, of=SHARDS, store=store).status == "ok"
    again = read_record(store, SOURCE, backup_id, 2, SHARDS)
    assert again is not None and again.objects == record.objects and again.counts == record.counts
    assert again.extra["raw_bson_bytes"] == record.extra["raw_bson_bytes"]
    for key, etag in etags.items():
        assert (
            store.s3.head_object(Bucket=store.bucket, Key=object_key(SOURCE, backup_id, key))["ETag"] == etag
        )
    # And the backup commits and restores exactly
    _commit_and_restore(store, when, sharded)


def test_a_failed_attempt_whose_objects_may_not_be_deleted_is_completed_by_its_retry(
    sharded: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    from lastgood.engines import mongodb_dump

    store, when = BackupStore.from_settings(), slot(10)
    backup_id = _backup_id(when)
    real_dump = mongodb_dump._dump_collection

    def products_fails(url: str, database: Any, info: dict[str, Any], *args: Any) -> Any:
        if info["name"] == "products":  # fault injection: the source drops mid-shard
            raise BackupError("injected: connection lost")
        return real_dump(url, database, info, *args)

    def denied(**kwargs: Any) -> dict[str, Any]:  # what the bucket policy answers the backup role
        objects = kwargs["Delete"]["Objects"]
        return {
            "Errors": [{"Key": o["Key"], "Code": "AccessDenied", "Message": "Access Denied"} for o in objects]
        }

    # Given shard 1 (orders, then products: one at a time) failing at products, where (as in AWS)
    # only prune may delete backup objects, so the finished orders objects stay
    with monkeypatch.context() as patch:
        patch.setattr(mongodb_dump, "PARALLEL_COLLECTIONS", 1)
        patch.setattr(mongodb_dump, "_dump_collection", products_fails)
        patch.setattr(store.s3, "delete_objects", denied)
        with pytest.raises(BackupError, match="injected"):
            run_shard(SOURCE, slot=when, shard=1, of=SHARDS, store=store)
    left = [k.rsplit("/", 1)[1] for k in _keys(store, backup_id)]
    assert left == ["orders.bson.gz", "orders.metadata.json.gz"]
    assert read_record(store, SOURCE, backup_id, 1, SHARDS) is None
    # When the shard is retried / Then it keeps orders, dumps products, and the backup is whole
    assert run_shard(SOURCE, slot=when, shard=1, of=SHARDS, store=store).status == "ok"
    record = read_record(store, SOURCE, backup_id, 1, SHARDS)
    assert record is not None and record.collections == ["orders", "products"]
    _commit_and_restore(store, when, sharded)


def test_an_attempt_stopped_between_a_collection_s_two_objects_cannot_be_retried_and_says_why(
    sharded: dict[str, int],
) -> None:
    store, when = BackupStore.from_settings(), slot(11)
    backup_id = _backup_id(when)
    # Given (fault injection) reviews' data object left without its metadata object
    left = object_key(SOURCE, backup_id, f"{DATABASE}/reviews.bson.gz")
    store.put_bytes(left, b"partial", content_type="application/gzip", if_none_match=True)
    # Then the retry refuses, naming the object, and writes no record
    with pytest.raises(BackupError, match="stopped between the two objects of 'reviews'"):
        run_shard(SOURCE, slot=when, shard=2, of=SHARDS, store=store)
    assert read_record(store, SOURCE, backup_id, 2, SHARDS) is None


@pytest.mark.parametrize("source", ["warehouse", "catalog"])
@pytest.mark.parametrize("flag", [["--shard", "0/3"], ["--commit-shards", "3"]])
def test_sharding_a_source_that_is_not_mongodb_on_fargate_exits_2_with_one_line(
    sharded: dict[str, int], source: str, flag: list[str]
) -> None:
    # Given PostgreSQL on Fargate, or MongoDB on Lambda / When asked for a shard or a commit
    result = run_cli("backup", "--source", source, "--slot", slot(9), *flag)
    # Then exit 2, one line naming the source and why, no traceback
    assert result.code == 2, result.err
    errors = [line for line in result.err.splitlines() if line.startswith("lastgood: error:")]
    assert len(errors) == 1 and f"source {source!r} cannot be backed up in shards" in errors[0]
    assert 'runner = "fargate"' in errors[0] and "Traceback" not in result.err


def test_with_client_side_encryption_a_retry_re_reads_the_finished_objects_exactly(
    sharded: dict[str, int], monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    from tests.helpers.replica import reset_caches
    from tests.helpers.shards import SHARDED_CONFIG

    # Given the sharded source with client_side_encryption = true
    text = SHARDED_CONFIG.read_text(encoding="utf-8").replace(
        "fargate_shards = 3\n", "fargate_shards = 3\nclient_side_encryption = true\n"
    )
    config = tmp_path / "encrypted.toml"
    config.write_text(text, encoding="utf-8")
    monkeypatch.setenv("LASTGOOD_CONFIG", str(config))
    reset_caches()
    store, when = BackupStore.from_settings(), slot(12)
    backup_id = _backup_id(when)
    run_shard(SOURCE, slot=when, shard=0, of=SHARDS, store=store)
    record = read_record(store, SOURCE, backup_id, 0, SHARDS)
    assert record is not None and {o.encryption for o in record.objects} == {"aws:kms+aws-encryption-sdk"}
    # When an attempt killed before its record is retried
    store.s3.delete_object(Bucket=store.bucket, Key=shard_record_key(SOURCE, backup_id, 0, SHARDS))
    run_shard(SOURCE, slot=when, shard=0, of=SHARDS, store=store)
    # Then the re-read entries (decrypted to count the documents) are the ones the writer made
    again = read_record(store, SOURCE, backup_id, 0, SHARDS)
    assert again is not None and again.objects == record.objects and again.counts == record.counts
    _commit_and_restore(store, when, sharded)


def _forge(store: BackupStore, backup_id: str, shard: int, **changes: Any) -> None:
    """Replace a shard's record by one with `changes` (built with the writer's model)."""
    record = read_record(store, SOURCE, backup_id, shard, SHARDS)
    assert record is not None
    store.put_bytes(
        shard_record_key(SOURCE, backup_id, shard, SHARDS), record.model_copy(update=changes).to_bytes()
    )


@pytest.mark.parametrize(
    ("day", "forgery", "refusal"),
    [
        (13, "other-server", "read from different servers"),
        (14, "wrong-shard", "which belongs to shard"),
        (15, "foreign-object", "not an object of its collections"),
    ],
)
def test_records_that_do_not_make_one_backup_refuse_the_commit(
    sharded: dict[str, int], day: int, forgery: str, refusal: str
) -> None:
    store, when = BackupStore.from_settings(), slot(day)
    backup_id = _backup_id(when)
    for i in range(SHARDS):
        run_shard(SOURCE, slot=when, shard=i, of=SHARDS, store=store)
    zero, one = (read_record(store, SOURCE, backup_id, i, SHARDS) for i in (0, 1))
    assert zero is not None and one is not None and zero.source_identity is not None
    # Given (fault injection) shard 1's record claiming another server, another shard's
    # collection, or one of shard 0's objects
    if forgery == "other-server":
        _forge(
            store,
            backup_id,
            1,
            source_identity=zero.source_identity.model_copy(update={"server_id": "replset:other"}),
        )
    elif forgery == "wrong-shard":
        _forge(store, backup_id, 1, collections=[*one.collections, zero.collections[0]])
    else:
        _forge(store, backup_id, 1, objects=[*one.objects, zero.objects[0]])
    # Then the commit refuses and nothing is committed
    with pytest.raises(BackupError, match=refusal):
        commit_shards(SOURCE, slot=when, of=SHARDS, store=store)
    assert not store.has_manifest(SOURCE, backup_id)
