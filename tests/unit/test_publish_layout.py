"""Site bucket layout, object metadata and the invalidation reference (pure)."""

from __future__ import annotations

from datetime import UTC, datetime

from lastgood.site.keys import last_good_key, live_key, public_path, version_key
from lastgood.site.publish import (
    LIVE_CACHE_CONTROL,
    VERSION_CACHE_CONTROL,
    Current,
    ObjectInfo,
    invalidation_reference,
)


def info(count=None, sha=None):
    return ObjectInfo("k", '"etag"', sha, count, None, None)


def test_keys_follow_the_layout_cloudfront_serves():
    assert live_key("prompts") == "live/data/prompts.json"
    assert last_good_key("prompts") == "last-good/data/prompts.json"
    assert version_key("prompts", "ab" * 32) == f"versions/prompts/{'ab' * 32}.json"
    # CloudFront origin paths /live and /last-good + the public path give the same object key
    assert "live" + public_path("prompts") == live_key("prompts")
    assert "last-good" + public_path("prompts") == last_good_key("prompts")


def test_cache_headers_short_for_live_immutable_for_versions():
    assert LIVE_CACHE_CONTROL == "public, max-age=60, stale-while-revalidate=300, stale-if-error=86400"
    assert VERSION_CACHE_CONTROL == "public, max-age=31536000, immutable"


def test_object_info_reads_metadata_case_insensitively():
    moment = datetime(2025, 11, 9, tzinfo=UTC)
    head = {
        "ETag": '"abc"',
        "LastModified": moment,
        "Metadata": {"SHA256": "f" * 64, "count": "296", "generated-at": "2025-11-09T10:00:00.000Z"},
    }
    got = ObjectInfo.from_head("live/data/prompts.json", head)
    assert (got.etag, got.sha256, got.count, got.generated_at, got.last_modified) == (
        '"abc"',
        "f" * 64,
        296,
        "2025-11-09T10:00:00.000Z",
        moment,
    )
    assert ObjectInfo.from_head("k", {"ETag": "x", "Metadata": {"count": "many"}}).count is None


def test_previous_count_prefers_last_good_then_live():
    assert Current(info(10), info(296)).previous_count == 296
    assert Current(info(10), info(None)).previous_count == 10
    assert Current(info(10), None).previous_count == 10
    assert Current(None, None).previous_count is None


def test_invalidation_reference_is_deterministic_and_order_independent():
    a = invalidation_reference([("prompts", "1" * 64), ("patterns", "2" * 64)])
    b = invalidation_reference([("patterns", "2" * 64), ("prompts", "1" * 64)])
    assert a == b and a.startswith("lastgood-regenerate-") and len(a) <= 128
    assert a != invalidation_reference([("prompts", "3" * 64)])
