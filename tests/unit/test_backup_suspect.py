"""When a backup is suspect: empty dumps always, sharp shrinks against the good baseline (issue 13)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from lastgood.backups.manifest import BackupManifest, ObjectEntry
from lastgood.backups.run import METRIC_COUNT_RATIO, METRIC_SIZE_RATIO, baseline_ratios
from lastgood.backups.suspect import is_empty_dump, suspect_reason
from lastgood.core.config import SourceConfig


def _manifest(n: int, *, size: int, count: int) -> BackupManifest:
    start = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(hours=n)
    return BackupManifest.build(
        backup_id=start.strftime("%Y%m%dT%H%M%SZ") + f"-{n:06x}",
        source="postgres",
        engine="postgres",
        started_at=start,
        finished_at=start + timedelta(seconds=10),
        objects=[ObjectEntry(key="app.dump", bytes=size, sha256="0" * 64, count=count)],
    )


def _reason(engine, counts, ratios, count_min=0.5, size_min=0.5):
    return suspect_reason(
        engine,
        counts,
        count_ratio=ratios.get(METRIC_COUNT_RATIO, (None, None))[1],
        size_ratio=ratios.get(METRIC_SIZE_RATIO, (None, None))[1],
        min_count_ratio=count_min,
        min_size_ratio=size_min,
    )


@pytest.mark.parametrize(
    ("engine", "counts", "empty"),
    [
        ("postgres", {}, True),
        ("postgres", {"public.users": 0}, False),  # a table with no rows is not "no tables"
        ("mongodb", {}, True),
        ("upstash", {"keys": 0, "string": 0}, True),
        ("redis", {"keys": 3}, False),
        ("postgres", None, False),  # the engine reported nothing: unknown, not empty
    ],
)
def test_an_empty_dump_is_no_tables_collections_or_keys(engine, counts, empty):
    assert is_empty_dump(engine, counts) is empty


def test_an_empty_dump_is_suspect_even_with_no_history():
    assert _reason("postgres", {}, {}) == "the dump has no tables at all"
    assert _reason("upstash", {"keys": 0}, {}) == "the dump has no keys at all"


def test_a_sharp_drop_against_the_median_is_suspect_and_a_small_one_is_not():
    # Given five typical backups (100 records, 1000 bytes)
    previous = [_manifest(i, size=1000, count=100) for i in range(5)]
    # When a backup has 30 records in 900 bytes
    ratios = baseline_ratios(_manifest(9, size=900, count=30), previous)
    # Then the count ratio is 0.3 and it is suspect for that reason only
    assert ratios[METRIC_COUNT_RATIO][1] == 0.3
    reason = _reason("postgres", {"public.users": 30}, ratios)
    assert reason is not None and "record count is 30%" in reason and "size" not in reason
    # and a 20 % drop is not suspect; a threshold of 0 turns the check off
    assert (
        _reason(
            "postgres", {"public.users": 80}, baseline_ratios(_manifest(9, size=1000, count=80), previous)
        )
        is None
    )
    assert _reason("postgres", {"public.users": 30}, ratios, count_min=0) is None


def test_thresholds_are_per_source_with_defaults():
    source = SourceConfig(name="pg", engine="postgres", url_secret="DATABASE_URL")
    assert (source.suspect_min_count_ratio, source.suspect_min_size_ratio) == (0.5, 0.5)
    custom = SourceConfig(name="pg", engine="postgres", url_secret="DATABASE_URL", suspect_min_size_ratio=0.2)
    assert custom.suspect_min_size_ratio == 0.2
    with pytest.raises(ValueError):
        SourceConfig(name="pg", engine="postgres", url_secret="DATABASE_URL", suspect_min_count_ratio=1.5)


def test_a_manifest_without_the_suspect_fields_still_reads_as_format_1():
    # Given a manifest written before the fields existed
    doc = _manifest(1, size=10, count=1).to_dict()
    del doc["suspect"], doc["suspect_reason"]
    # Then it reads, not suspect
    manifest = BackupManifest.model_validate(doc)
    assert manifest.format == 1 and manifest.suspect is False and manifest.suspect_reason is None
