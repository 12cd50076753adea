"""The loader without services: chain parsing, bundled layer, validation, staleness, memory cache, CRITICAL."""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime, timedelta

import pytest
from lastgood.core.config import reset_config
from lastgood.core.errors import ConfigError, DataUnavailable
from lastgood.core.settings import reset_settings
from lastgood.site import loader
from lastgood.site.canonical import render_items, sha256_hex
from lastgood.site.documents import BundleEntry, BundleIndex
from lastgood.site.keys import BUNDLE_INDEX

PROMPT = {
    "_id": "prompt-001",
    "title": "T",
    "body": "B",
    "category": "writing",
    "tags": ["a"],
    "createdAt": "2025-11-01T09:00:00.000Z",
    "rating": 3,
}


@pytest.fixture
def bundled(tmp_path, monkeypatch):
    """An empty bundled folder the loader reads (LASTGOOD_BUNDLED_DIR); caches reset around the test."""
    monkeypatch.setenv("LASTGOOD_BUNDLED_DIR", str(tmp_path))
    reset_settings()
    reset_config()
    loader.clear_cache()
    yield tmp_path
    loader.clear_cache()
    reset_settings()


def write_bundle(folder, name, items, generated_at=None):
    body = render_items(items)
    (folder / f"{name}.json").write_bytes(body)
    if generated_at is not None:
        entry = BundleEntry(sha256=sha256_hex(body), count=len(items), generated_at=generated_at)
        (folder / BUNDLE_INDEX).write_bytes(BundleIndex(entries={name: entry}).render())
    return body


def prompts(n):
    return [{**PROMPT, "_id": f"prompt-{i:03d}"} for i in range(n)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (None, loader.DEFAULT_CHAIN),
        ("last-good,bundled", ("last-good", "bundled")),
        (" live , live ,bundled", ("live", "bundled")),
        (["mongodb"], ("mongodb",)),
    ],
)
def test_chain_parsing(text, expected):
    assert loader.parse_chain(text) == expected


@pytest.mark.parametrize("text", ["", "live,cdn", ",,"])
def test_an_invalid_chain_is_a_config_error_listing_the_layers(text):
    with pytest.raises(ConfigError, match="layers are memory, live, last-good, mongodb, bundled"):
        loader.parse_chain(text)


def test_default_chain_order_is_memory_live_last_good_mongodb_bundled():
    assert loader.DEFAULT_CHAIN == ("memory", "live", "last-good", "mongodb", "bundled")


def test_bundled_copy_answers_with_its_recorded_age(bundled):
    # Given a bundled prompts copy generated 30 minutes ago
    generated = (datetime.now(UTC) - timedelta(minutes=30)).isoformat()
    write_bundle(bundled, "prompts", prompts(12), generated)
    # When loaded from the bundled layer only
    ds = loader.load("prompts", chain="bundled")
    # Then the items come back with layer, age and freshness
    assert (len(ds.items), ds.layer, ds.origin, ds.stale) == (12, "bundled", "bundled", False)
    assert ds.age_seconds is not None and 1790 < ds.age_seconds < 1900


def test_stale_data_is_served_with_a_warning_not_refused(bundled, caplog):
    # Given a bundled copy older than the 2 h freshness budget
    write_bundle(bundled, "prompts", prompts(12), (datetime.now(UTC) - timedelta(hours=5)).isoformat())
    # When loaded
    ds = loader.load("prompts", chain="bundled")
    # Then it is served, flagged stale, and the warning says so
    assert ds.stale and len(ds.items) == 12
    assert "is stale" in caplog.text


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"[]", "empty result"),
        (b'[{"_id": "prompt-001"', "corrupt or truncated JSON"),
        (b'{"items": []}', "expected a JSON array"),
        (b"\xff\xfe\x00", "corrupt"),
        (render_items(prompts(3)), "below min_count 10"),
        (render_items([{**PROMPT, "rating": "x"}] * 12), "12 of 12 items fail the schema"),
    ],
)
def test_an_invalid_layer_answer_never_counts(bundled, content, reason):
    # Given a bundled copy that is empty, truncated, the wrong shape, too small or off-schema
    (bundled / "prompts.json").write_bytes(content)
    # When it is the only layer / Then every layer failed, with the layer's reason, never []
    with pytest.raises(DataUnavailable) as caught:
        loader.load("prompts", chain="bundled")
    assert reason in caught.value.reasons["bundled"]


def test_all_fallbacks_failed_logs_critical_and_raises(bundled, caplog):
    # Given no bundled copy at all
    # When loaded / Then DataUnavailable, and exactly the CRITICAL line is logged at critical level
    with pytest.raises(DataUnavailable, match="CRITICAL: All fallbacks failed"):
        loader.load("prompts", chain="bundled")
    critical = [r.getMessage() for r in caplog.records if r.levelno == logging.CRITICAL]
    assert critical == ["CRITICAL: All fallbacks failed"]


def test_warm_cache_answers_from_memory_within_ttl(bundled):
    # Given prompts loaded once through memory → bundled
    write_bundle(bundled, "prompts", prompts(12), datetime.now(UTC).isoformat())
    first = loader.load("prompts", chain="memory,bundled")
    # When the bundled copy disappears and the dataset is loaded again
    os.remove(bundled / "prompts.json")
    second = loader.load("prompts", chain="memory,bundled")
    # Then the warm cache answers, saying where the data came from
    assert first.layer == "bundled"
    assert (second.layer, second.origin, second.items) == ("memory", "bundled", first.items)


def test_cache_ttl_zero_disables_the_memory_layer(bundled, monkeypatch):
    monkeypatch.setenv("LASTGOOD_CACHE_TTL_S", "0")
    reset_settings()
    write_bundle(bundled, "prompts", prompts(12), datetime.now(UTC).isoformat())
    loader.load("prompts")
    os.remove(bundled / "prompts.json")
    with pytest.raises(DataUnavailable):
        loader.load("prompts", chain="memory,bundled")


def test_unknown_dataset_is_a_config_error(bundled):
    with pytest.raises(ConfigError, match="unknown dataset"):
        loader.load("nope", chain="bundled")


def test_bundled_age_falls_back_to_file_mtime_without_index(bundled):
    write_bundle(bundled, "prompts", prompts(12))
    ds = loader.load("prompts", chain="bundled")
    assert ds.age_seconds is not None and ds.age_seconds < 60


def test_importing_the_loader_does_not_import_database_drivers():
    import subprocess
    import sys

    code = (
        "import sys, lastgood.site.loader; "
        "print(','.join(m for m in sys.modules if m.split('.')[0] in ('psycopg', 'pymongo', 'bson')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == ""


def test_each_failed_layer_is_logged_as_a_warning_with_its_reason(bundled, caplog):
    # Given no bundled patterns copy / When loaded / Then the failed layer and why are logged
    with pytest.raises(DataUnavailable):
        loader.load("patterns", chain="bundled")
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("patterns layer bundled failed: no bundled copy" in w for w in warnings)
