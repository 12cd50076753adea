"""BackupManifest, backup ids and schedule slots: pure rules."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from lastgood.backups.manifest import (
    BackupManifest,
    ObjectEntry,
    backup_id_time,
    is_backup_id,
    new_backup_id,
    slot_label,
    validate_relpath,
)
from lastgood.core.errors import BackupIntegrityError, ConfigError
from lastgood.core.timefmt import floor_slot, parse_time, schedule_period_seconds

SHA = "a" * 64


def _manifest(**overrides: object) -> BackupManifest:
    args: dict = {
        "backup_id": "20250129T020000Z-3f9a1c",
        "source": "postgres",
        "engine": "postgres",
        "started_at": datetime(2025, 1, 29, 2, 0, 0, tzinfo=UTC),
        "finished_at": datetime(2025, 1, 29, 2, 0, 12, 500000, tzinfo=UTC),
        "objects": [
            ObjectEntry(key="app.dump", bytes=100, sha256=SHA, count=7, counts={"public.a": 3, "public.b": 4})
        ],
        "server_version": "18.6",
        "slot": datetime(2025, 1, 29, 2, tzinfo=UTC),
        "counts": {"public.a": 3, "public.b": 4},
        "tool_versions": {"pg_dump": "18.6"},
        "kms_key_id": "alias/lastgood",
    }
    args.update(overrides)
    return BackupManifest.build(**args)


def test_manifest_round_trips_through_json_unchanged():
    # Given a built manifest
    manifest = _manifest()
    # When it is serialized and parsed back
    again = BackupManifest.from_json(manifest.to_bytes())
    # Then nothing is lost and the format is versioned
    assert again == manifest
    doc = json.loads(manifest.to_json())
    assert doc["format"] == 1
    assert doc["totals"] == {"bytes": 100, "objects": 1, "count": 7}
    assert doc["duration_s"] == 12.5
    assert doc["slot"] == "2025-01-29T02:00:00Z"
    assert doc["encryption"] == {"sse": "aws:kms", "key": "alias/lastgood", "client_side": False}
    assert doc["objects"][0]["sha256"] == SHA


def test_manifest_derives_counts_from_objects_when_the_engine_gives_none():
    manifest = _manifest(counts=None, objects=[ObjectEntry(key="db/c.bson.gz", bytes=1, sha256=SHA, count=5)])
    assert manifest.counts == {"db/c.bson.gz": 5}


def test_manifest_with_unknown_format_is_rejected():
    doc = _manifest().to_dict() | {"format": 2}
    with pytest.raises(BackupIntegrityError, match="unsupported manifest format 2"):
        BackupManifest.from_json(json.dumps(doc))


def test_manifest_with_totals_that_disagree_is_rejected():
    doc = _manifest().to_dict()
    doc["totals"]["bytes"] = 99
    with pytest.raises(BackupIntegrityError, match="totals"):
        BackupManifest.from_json(json.dumps(doc), where="s3://b/k")


def test_garbage_manifest_is_an_integrity_error_naming_where():
    with pytest.raises(BackupIntegrityError, match="s3://b/k"):
        BackupManifest.from_json(b"{not json", where="s3://b/k")


def test_unknown_fields_from_a_newer_writer_are_ignored():
    doc = _manifest().to_dict() | {"future_field": 1}
    assert BackupManifest.from_json(json.dumps(doc)).backup_id == "20250129T020000Z-3f9a1c"


def test_pin_reason_without_pin_is_refused():
    with pytest.raises(ValueError, match="unpinned"):
        _manifest(pin_reason="why")


def test_object_lookup_of_missing_key_is_an_integrity_error():
    with pytest.raises(BackupIntegrityError):
        _manifest().object("nope.dump")


def test_backup_ids_sort_by_utc_time():
    # Given ids made at increasing times (one of them from a non-UTC clock)
    base = datetime(2025, 1, 29, 23, 59, 59, tzinfo=UTC)
    times = [
        base,
        base + timedelta(seconds=1),
        (base + timedelta(hours=1)).astimezone(__import__("datetime").timezone(timedelta(hours=-5))),
    ]
    ids = [new_backup_id(t, rand=r) for t, r in zip(times, ["ffffff", "000000", "123abc"], strict=True)]
    # Then lexical order is time order and the time round-trips
    assert ids == sorted(ids)
    assert ids[0] == "20250129T235959Z-ffffff"
    assert backup_id_time(ids[2]) == base + timedelta(hours=1)
    assert all(is_backup_id(i) for i in ids)
    assert not is_backup_id("20250129T235959Z-FFFFFF")
    assert is_backup_id(new_backup_id())


def test_slot_flooring_matches_the_schedule_period():
    moment = datetime(2025, 1, 29, 14, 37, 12, tzinfo=UTC)
    assert floor_slot(moment, schedule_period_seconds("rate(1 hour)")) == datetime(
        2025, 1, 29, 14, tzinfo=UTC
    )
    assert floor_slot(moment, schedule_period_seconds("rate(5 minutes)")) == datetime(
        2025, 1, 29, 14, 35, tzinfo=UTC
    )
    assert floor_slot(moment, schedule_period_seconds("rate(1 day)")) == datetime(2025, 1, 29, tzinfo=UTC)
    assert floor_slot(moment, schedule_period_seconds("cron(0 2 * * ? *)")) == datetime(
        2025, 1, 29, 14, 37, tzinfo=UTC
    )
    assert slot_label(datetime(2025, 1, 29, 14, tzinfo=UTC)) == "20250129T140000Z"


def test_retried_invocation_of_one_firing_lands_in_the_same_slot():
    period = schedule_period_seconds("rate(1 hour)")
    first = parse_time("2025-01-29T14:00:03Z")
    retry = parse_time("2025-01-29T14:59:59+00:00")
    assert floor_slot(first, period) == floor_slot(retry, period)


@pytest.mark.parametrize("bad", ["", "rate(0 hours)", "every hour", "rate(1 fortnight)"])
def test_bad_schedule_expressions_are_config_errors(bad):
    with pytest.raises(ConfigError):
        schedule_period_seconds(bad)


def test_bad_time_text_is_a_config_error():
    with pytest.raises(ConfigError, match="ISO-8601"):
        parse_time("yesterday")


@pytest.mark.parametrize("bad", ["../x", "/abs", "a/../b", "manifest.json", "verification.json", "a//b", ""])
def test_object_paths_cannot_escape_the_backup_prefix(bad):
    with pytest.raises(ValueError):
        validate_relpath(bad)


def test_mongodump_style_paths_are_valid():
    assert validate_relpath("app/users.bson.gz") == "app/users.bson.gz"
    assert validate_relpath("app/users.metadata.json") == "app/users.metadata.json"
