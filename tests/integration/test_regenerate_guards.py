"""Regenerate against the devstack: publishing, unchanged runs, and every kind of bad input.

For each bad input the published data stays the last good one (live and last-good
byte-identical) and the reason is logged.
"""

from __future__ import annotations

import logging
import threading
import time

import pytest
from lastgood.core.settings import reset_settings
from lastgood.engines import mongodb
from lastgood.site.keys import last_good_key, live_key, version_key
from lastgood.site.publish import LIVE_CACHE_CONTROL, VERSION_CACHE_CONTROL
from lastgood.site.regenerate import regenerate

from tests.helpers.regenerate import (
    bucket,
    invalidation_count,
    last_good_bytes,
    live_bytes,
    mongo_collection,
    reseeded_after,
    s3,
    s3_unreachable,
    wait_mongodb_down,
)

pytestmark = pytest.mark.devstack


@pytest.fixture
def published(clean_aws):
    """Empty moto, then the three seed datasets published once."""
    report = regenerate()
    assert [o.status for o in report.outcomes] == ["published"] * 3, report.as_dict()
    return report


def statuses(report):
    return {o.dataset: o.status for o in report.outcomes}


def test_first_run_publishes_all_three_with_headers_metadata_and_one_invalidation(clean_aws):
    # Given an empty site bucket and the seeded MongoDB
    before = invalidation_count()
    # When regenerate runs
    report = regenerate()
    # Then every dataset is published with the seed's counts
    assert {o.dataset: (o.status, o.count) for o in report.outcomes} == {
        "prompts": ("published", 296),
        "patterns": ("published", 18),
        "learning": ("published", 20),
    }
    # And live carries the short cache headers and the metadata the guards read
    head = s3().head_object(Bucket=bucket(), Key=live_key("prompts"))
    assert head["CacheControl"] == LIVE_CACHE_CONTROL
    assert head["ContentType"] == "application/json"
    prompts = next(o for o in report.outcomes if o.dataset == "prompts")
    assert head["Metadata"]["sha256"] == prompts.sha256
    assert head["Metadata"]["count"] == "296"
    assert head["Metadata"]["generated-at"] == report.generated_at
    # And the version copy is immutable, last-good equals live
    version = s3().head_object(Bucket=bucket(), Key=version_key("prompts", str(prompts.sha256)))
    assert version["CacheControl"] == VERSION_CACHE_CONTROL
    assert last_good_bytes("prompts") == live_bytes("prompts")
    # And exactly one invalidation covers the three changed paths
    assert invalidation_count() == before + 1
    assert report.invalidation is not None
    assert report.invalidation["paths"] == [
        "/data/learning.json",
        "/data/patterns.json",
        "/data/prompts.json",
    ]


def test_second_run_is_unchanged_writes_nothing_and_invalidates_nothing(published):
    # Given the datasets were just published
    etag = s3().head_object(Bucket=bucket(), Key=live_key("prompts"))["ETag"]
    before = invalidation_count()
    # When regenerate runs again on the same data
    report = regenerate()
    # Then everything is unchanged, live was not rewritten and no invalidation was created
    assert set(statuses(report).values()) == {"unchanged"}
    assert report.invalidation is None
    assert invalidation_count() == before
    assert s3().head_object(Bucket=bucket(), Key=live_key("prompts"))["ETag"] == etag


def test_only_the_changed_dataset_is_written_and_invalidated(published, devstack):
    with reseeded_after(devstack):
        # Given one prompt edited in MongoDB
        mongo_collection("prompts").update_one({"_id": "prompt-007"}, {"$set": {"title": "Edited"}})
        before = invalidation_count()
        # When regenerate runs
        report = regenerate()
        # Then prompts is published, the others unchanged, one invalidation for /data/prompts.json only
        assert statuses(report) == {"prompts": "published", "patterns": "unchanged", "learning": "unchanged"}
        assert report.invalidation is not None and report.invalidation["paths"] == ["/data/prompts.json"]
        assert invalidation_count() == before + 1
        assert b'"title":"Edited"' in (live_bytes("prompts") or b"")


def _assert_untouched(name, live, good):
    assert live_bytes(name) == live
    assert last_good_bytes(name) == good


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda c: c.delete_many({}), "empty result"),
        (lambda c: c.delete_many({"_id": {"$gt": "prompt-029"}}), "90% drop from the last good 296"),
        (
            lambda c: c.update_many({"_id": {"$lt": "prompt-004"}}, {"$set": {"rating": "five"}}),
            "3 of 296 items fail the schema: $[0].rating: expected number, got string",
        ),
        (
            lambda c: c.update_one({"_id": "prompt-100"}, {"$unset": {"title": ""}}),
            "missing required 'title'",
        ),
    ],
    ids=["empty", "90-percent-drop", "schema-type", "schema-required"],
)
def test_bad_data_is_rejected_and_published_data_stays_the_last_good(
    published, devstack, caplog, damage, reason
):
    # Given published prompts
    live, good = live_bytes("prompts"), last_good_bytes("prompts")
    before = invalidation_count()
    with reseeded_after(devstack):
        # When the prompts collection is damaged and regenerate runs
        damage(mongo_collection("prompts"))
        report = regenerate(["prompts"])
        # Then prompts is rejected with the reason, logged, and nothing was written or invalidated
        outcome = report.outcomes[0]
        assert outcome.status == "rejected"
        assert reason in str(outcome.reason)
        assert any("rejected" in r.getMessage() and reason in r.getMessage() for r in caplog.records)
        _assert_untouched("prompts", live, good)
        assert invalidation_count() == before


def test_mongodb_down_fails_fast_and_keeps_the_published_data(published, stopped):
    live, good = live_bytes("prompts"), last_good_bytes("prompts")
    with stopped("mongodb"):
        wait_mongodb_down()
        # When MongoDB is stopped and regenerate runs
        started = time.perf_counter()
        report = regenerate()
        elapsed = time.perf_counter() - started
    # Then every dataset failed as MongoDB unavailable (within the fail-fast budget), live unchanged
    assert set(statuses(report).values()) == {"failed"}
    # (ServerSelectionTimeoutError or AutoReconnect, depending on when the pool noticed)
    assert all("SourceUnavailable: mongodb query" in str(o.reason) for o in report.outcomes)
    assert elapsed < 3 * 4  # 3 datasets x ~2 s server selection
    _assert_untouched("prompts", live, good)


def test_mongodb_pool_exhaustion_fails_the_dataset_not_the_run(published, monkeypatch):
    # Fault injection (a real server cannot be made to hold the pooled connection on demand):
    # a mockupdb server that never answers keeps the single pooled connection checked out.
    from mockupdb import MockupDB

    live, good = live_bytes("prompts"), last_good_bytes("prompts")
    server = MockupDB(auto_ismaster={"maxWireVersion": 21, "minWireVersion": 0})
    server.run()
    monkeypatch.setenv("MONGODB_URI", server.uri)
    monkeypatch.setenv("MONGODB_WAIT_QUEUE_TIMEOUT_MS", "300")
    reset_settings()
    client = mongodb.get_client(server.uri)
    holder = threading.Thread(target=lambda: _swallow(lambda: client.db.c.find_one({})), daemon=True)
    holder.start()
    try:
        server.receives(timeout=5)  # the only connection is now busy
        # When regenerate runs
        report = regenerate(["prompts"])
        # Then prompts failed with the wait-queue timeout and the published data is untouched
        assert report.outcomes[0].status == "failed"
        assert "WaitQueueTimeout" in str(report.outcomes[0].reason)
        _assert_untouched("prompts", live, good)
    finally:
        mongodb.close_clients()
        server.stop()
        reset_settings()


def test_s3_unreachable_fails_each_dataset_without_raising(published):
    with s3_unreachable():
        report = regenerate()
    assert set(statuses(report).values()) == {"failed"}
    assert all(
        "EndpointConnectionError" in str(o.reason) or "connect" in str(o.reason).lower()
        for o in report.outcomes
    )


def test_dry_run_reports_without_writing(published, devstack):
    live, good = live_bytes("prompts"), last_good_bytes("prompts")
    with reseeded_after(devstack):
        mongo_collection("prompts").update_one({"_id": "prompt-001"}, {"$set": {"title": "Dry"}})
        before = invalidation_count()
        report = regenerate(["prompts"], dry_run=True)
        assert report.outcomes[0].status == "published" and report.outcomes[0].dry_run
        assert "would publish" in str(report.outcomes[0].reason)
        _assert_untouched("prompts", live, good)
        assert invalidation_count() == before


def test_deleted_live_is_republished_from_unchanged_data(published):
    # Given live was deleted (last-good still there)
    good = last_good_bytes("prompts")
    s3().delete_object(Bucket=bucket(), Key=live_key("prompts"))
    # When regenerate runs / Then live is written again (If-None-Match) with the same bytes
    report = regenerate(["prompts"])
    assert report.outcomes[0].status == "published" and report.outcomes[0].live_changed
    assert live_bytes("prompts") == good
    assert s3().head_object(Bucket=bucket(), Key=last_good_key("prompts"))


def test_a_failing_dataset_does_not_stop_the_others(published, devstack, monkeypatch, tmp_path):
    # Given a config whose first dataset reads a collection with an invalid schema keyword
    import json

    from lastgood.core.config import reset_config

    from tests.helpers.config import suite_config_document

    config = suite_config_document()
    config["datasets"][0]["schema"] = {"type": "object", "pattern": "x"}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    monkeypatch.setenv("LASTGOOD_CONFIG", str(path))
    reset_settings()
    reset_config()
    # When regenerate runs / Then prompts failed (config error named) and the others still ran
    report = regenerate()
    assert statuses(report) == {"prompts": "failed", "patterns": "unchanged", "learning": "unchanged"}
    assert "unsupported schema keyword" in str(report.outcomes[0].reason)


def _swallow(fn):
    try:
        fn()
    except Exception:
        logging.getLogger(__name__).debug("holder query ended")
