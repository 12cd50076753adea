"""The shrink-window history, the publish sequence and the max_shrink baseline (pure)."""

from __future__ import annotations

import pytest
from lastgood.core.config import DatasetConfig
from lastgood.site.documents import HistoryEntry, PublishedMeta, PublishHistory
from lastgood.site.history import HistoryRead
from lastgood.site.publish import Current, ObjectInfo
from lastgood.site.regenerate import Outcome, shrink_baseline
from pydantic import ValidationError

SHA = "a" * 64


def entry(count: int, when: str, sequence: int | None = None, sha: str = SHA) -> HistoryEntry:
    return HistoryEntry(sha256=sha, count=count, generated_at=when, sequence=sequence)


def test_history_round_trips_through_its_writer_and_drops_entries_outside_the_window():
    # Given a history written by `with_entry` over three days, keeping two days
    history = PublishHistory(dataset="prompts")
    history = history.with_entry(entry(296, "2025-11-01T10:00:00Z", 1, "1" * 64), "2025-10-01T00:00:00.000Z")
    history = history.with_entry(entry(178, "2025-11-02T10:00:00Z", 2, "2" * 64), "2025-10-01T00:00:00.000Z")
    history = history.with_entry(entry(170, "2025-11-03T10:00:00Z", 3, "3" * 64), "2025-11-02T00:00:00.000Z")
    # Then the 296 entry is gone, the rest survive a render/parse round trip in order
    parsed = PublishHistory.parse(history.render())
    assert [(e.count, e.sequence) for e in parsed.entries] == [(178, 2), (170, 3)]
    assert parsed.entries[0].generated_at == "2025-11-02T10:00:00.000Z"  # normalised to iso_ms
    assert parsed.largest_since("2025-11-02T00:00:00.000Z") == parsed.entries[0]
    assert parsed.newest is not None and parsed.newest.sequence == 3


def test_the_newest_entry_is_kept_even_when_older_than_the_window():
    history = PublishHistory(dataset="prompts").with_entry(
        entry(10, "2020-01-01T00:00:00Z"), "2025-01-01T00:00:00Z"
    )
    assert [e.count for e in history.entries] == [10]


@pytest.mark.parametrize(
    "body",
    [
        b'{"dataset": "prompts", "entries": [{"sha256": "x", "count": 1, "generated_at": "2025-11-01T00:00:00Z"}]}',
        b'{"dataset": "prompts", "entries": [',
        b"[]",
    ],
    ids=["bad-sha", "truncated", "not-an-object"],
)
def test_a_damaged_history_document_is_refused_not_half_read(body):
    with pytest.raises(ValueError):
        PublishHistory.parse(body)


def test_published_meta_carries_the_sequence_and_orders_by_it_before_time():
    meta = PublishedMeta(sha256=SHA, count=3, generated_at="2025-11-09T10:00:00.000Z", sequence=7)
    back = PublishedMeta.from_s3(meta.to_s3())
    assert back == meta
    older_clock_newer_run = PublishedMeta(generated_at="2025-11-09T09:00:00.000Z", sequence=8)
    assert older_clock_newer_run.order > meta.order
    assert PublishedMeta.from_s3({"sha256": SHA, "count": "3"}).sequence is None  # pre-issue-14 object


def info(count: int) -> ObjectInfo:
    return ObjectInfo("k", '"e"', SHA, count, None, None)


def read(*entries: HistoryEntry) -> HistoryRead:
    return HistoryRead(PublishHistory(dataset="prompts", entries=entries), None)


def test_baseline_is_the_largest_count_in_the_window_never_below_last_good():
    from datetime import UTC, datetime

    from lastgood.site.canonical import iso_ms

    ds = DatasetConfig(name="prompts", collection="prompts")  # shrink_window default 7d
    now = iso_ms(datetime.now(UTC))
    assert shrink_baseline(Current(info(178), info(178)), read(entry(296, now)), ds) == (
        296,
        "the largest count published within 7d,",
    )
    assert shrink_baseline(Current(info(178), info(178)), read(entry(100, now)), ds) == (178, "the last good")
    # an entry older than the window does not count
    assert shrink_baseline(Current(info(178), None), read(entry(296, "2020-01-01T00:00:00Z")), ds)[0] == 178
    assert shrink_baseline(Current(None, None), read(), ds) == (None, "the last good")


def test_shrink_window_is_validated_like_every_duration():
    assert DatasetConfig(name="p", collection="c").shrink_window_seconds == 7 * 86400
    assert DatasetConfig(name="p", collection="c", shrink_window="12h").shrink_window_seconds == 43200
    with pytest.raises(ValidationError, match="shrink_window"):
        DatasetConfig(name="p", collection="c", shrink_window="soon")
    with pytest.raises(ValidationError, match="shrink_window"):
        DatasetConfig(name="p", collection="c", shrink_window="0d")


def test_a_repair_emits_dataset_repaired_also_when_it_came_with_new_content():
    assert Outcome("p", "repaired", repaired=["live"]).metrics() == {"DatasetRepaired": ("Count", 1)}
    assert Outcome("p", "published", repaired=["last-good"]).metrics() == {
        "RegeneratePublished": ("Count", 1),
        "DatasetRepaired": ("Count", 1),
    }
    assert Outcome("p", "unchanged").metrics() == {"RegenerateUnchanged": ("Count", 1)}
