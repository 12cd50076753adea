"""The fallback loader against the devstack: each layer answers when the ones before it fail."""

from __future__ import annotations

import logging
import time

import pytest
from lastgood.core.errors import DataUnavailable
from lastgood.site import loader
from lastgood.site.keys import live_key
from lastgood.site.publish import LIVE_CACHE_CONTROL
from lastgood.site.regenerate import regenerate

from tests.helpers.regenerate import bucket, cold_loader, last_good_bytes, s3, s3_unreachable

pytestmark = pytest.mark.devstack


@pytest.fixture
def published(clean_aws, tmp_path, monkeypatch):
    """Seed datasets published; an empty bundled folder so 'bundled' is under the test's control."""
    monkeypatch.setenv("LASTGOOD_BUNDLED_DIR", str(tmp_path))
    from lastgood.core.settings import reset_settings

    reset_settings()
    report = regenerate()
    assert report.as_dict()["summary"]["published"] == 3
    with cold_loader():
        yield tmp_path


def fallback_warnings(caplog):
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_live_answers_first_fresh_and_complete(published):
    ds = loader.load("prompts")
    assert (ds.layer, len(ds.items), ds.stale) == ("live", 296, False)
    assert ds.age_seconds is not None and ds.age_seconds < 60
    assert ds.items[0]["_id"] == "prompt-001"


def test_warm_cache_answers_without_s3(published):
    loader.load("prompts")
    with s3_unreachable():
        ds = loader.load("prompts")
    assert (ds.layer, ds.origin, len(ds.items)) == ("memory", "live", 296)


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda body: body[: len(body) // 2], "corrupt or truncated JSON"),
        (lambda body: b"<html>502 Bad Gateway</html>", "corrupt or truncated JSON"),
        (lambda body: b"[]", "empty result"),
        (lambda body: b'[{"_id": "x"}]', "below min_count"),
    ],
    ids=["truncated", "html", "empty", "too-few"],
)
def test_a_corrupt_or_truncated_live_is_skipped_for_last_good(published, caplog, damage, reason):
    # Given live overwritten with broken bytes (as a bad deploy or a partial copy would)
    good = last_good_bytes("prompts")
    assert good is not None
    s3().put_object(
        Bucket=bucket(), Key=live_key("prompts"), Body=damage(good), CacheControl=LIVE_CACHE_CONTROL
    )
    # When loaded
    ds = loader.load("prompts")
    # Then last-good answers with every item, and the live failure + the fallback are logged
    assert (ds.layer, len(ds.items)) == ("last-good", 296)
    warnings = fallback_warnings(caplog)
    assert any("prompts layer live failed" in w and reason in w for w in warnings)
    assert any("served from fallback layer last-good" in w for w in warnings)


def test_live_deleted_and_mongodb_stopped_last_good_answers(published, stopped):
    s3().delete_object(Bucket=bucket(), Key=live_key("prompts"))
    with stopped("mongodb"):
        ds = loader.load("prompts")
    assert (ds.layer, len(ds.items)) == ("last-good", 296)


def test_s3_unreachable_falls_through_to_mongodb_quickly(published):
    with s3_unreachable():
        started = time.perf_counter()
        ds = loader.load("prompts")
        elapsed = time.perf_counter() - started
    assert (ds.layer, len(ds.items), ds.stale) == ("mongodb", 296, False)
    assert elapsed < 5  # fast S3 client: no retry storm


def test_s3_and_mongodb_down_the_bundled_copy_answers(published, stopped):
    from lastgood.site.bundle import refresh

    # Given bundled copies refreshed from last-good
    assert [r.status for r in refresh()] == ["updated"] * 3
    with s3_unreachable(), stopped("mongodb"):
        ds = loader.load("prompts")
    assert (ds.layer, len(ds.items)) == ("bundled", 296)
    assert ds.age_seconds is not None and ds.age_seconds < 600


def test_everything_down_and_no_bundled_copy_raises_data_unavailable(published, stopped, caplog):
    with s3_unreachable(), stopped("mongodb"), pytest.raises(DataUnavailable) as caught:
        loader.load("prompts")
    assert set(caught.value.reasons) == {"live", "last-good", "mongodb", "bundled"}
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.CRITICAL] == [
        "CRITICAL: All fallbacks failed"
    ]
