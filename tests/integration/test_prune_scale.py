"""Prune at scale against moto's real S3 server: request counts, and a listing that breaks."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from lastgood.backups.prune import prune_source
from lastgood.backups.retention import RetentionPolicy
from lastgood.backups.store import BackupStore

from tests.helpers.prune import private_s3

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
KEEP_LAST_1 = RetentionPolicy.from_dict({"keep_last": 1})


@pytest.fixture(scope="module")
def s3():
    with private_s3() as private:
        yield private


def listed_keys(s3, bucket, prefix):
    paginator = s3.client.get_paginator("list_objects_v2")
    return [
        o["Key"]
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix)
        for o in page.get("Contents", [])
    ]


def test_pruning_ten_thousand_objects_takes_ten_delete_objects_requests(s3):
    # Given 10 old backups of 1,000 objects each (999 data objects + manifest) and a newest one
    bucket = f"prune-scale-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(bucket)
    old = [s3.seed_backup(bucket, "pg", NOW - timedelta(days=d + 1), 999) for d in range(10)]
    newest = s3.seed_backup(bucket, "pg", NOW, 3)
    assert len(listed_keys(s3, bucket, "backups/pg/")) == 10_004
    s3.calls.clear()
    for operation in ("DeleteObjects", "DeleteObject", "ListObjectsV2"):
        s3.count(operation)
    store = BackupStore(bucket, None, s3.client)
    # When pruned to the newest backup (counted at the client, by botocore's event hooks)
    result = prune_source("pg", store=store, policy=KEEP_LAST_1, force=True, now=NOW)
    # Then 10,000 objects are gone in 10 DeleteObjects requests (the 9,990 data objects), after
    # the 10 manifests went first one by one; only the newest backup and the audit record remain
    assert result.deleted_keys == 10_000
    assert s3.calls["DeleteObjects"] == result.requests == 10
    assert s3.calls["DeleteObject"] == result.manifest_deletes == 10
    assert sorted(result.pruned) == sorted(old)
    left = listed_keys(s3, bucket, "")
    assert {k.split("/")[2] for k in left if k.startswith("backups/")} == {newest}
    assert [k for k in left if k.startswith("audit/prune/")] == [result.audit_key]


def test_a_listing_that_fails_half_way_deletes_nothing(s3):
    # Given 3 backups of 600 objects: listing them takes 2 pages
    bucket = f"prune-list-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(bucket)
    for d in range(3):
        s3.seed_backup(bucket, "pg", NOW - timedelta(days=d), 600)
    before = listed_keys(s3, bucket, "backups/")
    # When the second page of the listing fails (fault injected: a dropped connection)
    pages = []

    def second_page_fails(params, **_):
        pages.append("continuation-token" in str(params.get("query_string", "")))
        if len(pages) == 2:
            raise ConnectionResetError("connection reset by peer while listing")

    s3.client.meta.events.register("before-call.s3.ListObjectsV2", second_page_fails)
    deletes = []
    s3.client.meta.events.register("before-call.s3.DeleteObjects", lambda **_: deletes.append(1))
    s3.client.meta.events.register("before-call.s3.DeleteObject", lambda **_: deletes.append(1))
    store = BackupStore(bucket, None, s3.client)
    try:
        with pytest.raises(ConnectionResetError):
            prune_source("pg", store=store, policy=KEEP_LAST_1, force=True, now=NOW)
    finally:
        s3.client.meta.events.unregister("before-call.s3.ListObjectsV2", second_page_fails)
    # Then it failed on the second page, and not a single delete request was sent
    assert pages == [False, True]
    assert deletes == []
    assert listed_keys(s3, bucket, "backups/") == before  # (the prune lock lives under locks/)
