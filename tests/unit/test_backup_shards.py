"""A MongoDB backup split over Fargate tasks: the partition of the collections, the one backup id
of a slot's shards, the shard record model and key, and the config rule (pure, no services)."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from lastgood.backups.keys import is_lastgood_document, is_shard_key, parse_key, shard_record_key
from lastgood.backups.manifest import ObjectEntry, backup_id_time, is_backup_id
from lastgood.backups.shard import ShardRecord, parse_shard, shard_backup_id
from lastgood.core.config import load_config_file
from lastgood.core.errors import BackupIntegrityError, ConfigError, UsageError
from lastgood.engines.mongodb_dump import collection_of, shard_of

ROOT = Path(__file__).resolve().parents[2]
SLOT = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
NAMES = [f"coll_{i}" for i in range(300)] + ["users", "orders", "a.b.c", "ünï", "x" * 120]


@pytest.mark.parametrize("shards", [1, 2, 3, 5, 8, 64])
def test_every_collection_is_in_exactly_one_shard(shards: int) -> None:
    # Given many collection names / When each shard takes the names shard_of gives it
    taken = {i: {n for n in NAMES if shard_of(n, shards) == i} for i in range(shards)}
    # Then the shards are disjoint and together hold every name
    assert sum(len(s) for s in taken.values()) == len(NAMES)
    assert set().union(*taken.values()) == set(NAMES)
    # And with enough names no shard is left empty (the hash spreads them)
    assert all(taken.values())


def test_the_partition_is_a_stable_hash_not_pythons_per_process_hash() -> None:
    # Given two interpreters with different string-hash seeds / Then they agree with this one
    names = NAMES[:50]
    code = f"from lastgood.engines.mongodb_dump import shard_of; print([shard_of(n, 7) for n in {names!r}])"
    here = [shard_of(n, 7) for n in names]
    for seed in ("1", "2"):
        env = {"PYTHONHASHSEED": seed, "PYTHONPATH": str(ROOT / "shared")}
        out = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        )
        assert json.loads(out.stdout) == here
    # And the values are pinned (a changed hash would split a slot's shards differently)
    assert [shard_of(n, 3) for n in ("users", "orders", "reviews")] == [0, 1, 2]
    with pytest.raises(ValueError, match="at least 1"):
        shard_of("users", 0)


def test_a_dump_object_names_its_collection_and_a_record_name_is_not_a_dump_object() -> None:
    assert collection_of("db/a.b.bson.gz") == "a.b"
    assert collection_of("db/users.metadata.json.gz") == "users"
    assert collection_of("db/.bson.gz") is None and collection_of("notes.txt") is None


def test_every_shard_of_a_slot_uses_one_deterministic_backup_id() -> None:
    first = shard_backup_id("shardedmongo", SLOT)
    # the same in every process (derived from source and slot), a valid id at the slot's time
    assert first == shard_backup_id("shardedmongo", SLOT) and is_backup_id(first)
    assert backup_id_time(first) == SLOT
    # another source or slot: another backup
    assert shard_backup_id("other", SLOT) != first
    assert shard_backup_id("shardedmongo", datetime(2026, 3, 2, 2, 0, tzinfo=UTC)) != first


def test_shard_records_live_under_the_backup_and_are_never_data() -> None:
    backup_id = shard_backup_id("shardedmongo", SLOT)
    key = shard_record_key("shardedmongo", backup_id, 1, 3)
    parsed = parse_key(key)
    assert parsed is not None and parsed.backup_id == backup_id and parsed.relpath == "shards/1-of-3.json"
    assert is_shard_key(key) and is_lastgood_document(parsed.relpath)  # the writer refuses the name
    assert not is_shard_key(f"backups/shardedmongo/{backup_id}/shards/users.bson.gz")


@pytest.mark.parametrize(("text", "parsed"), [("0/3", (0, 3)), ("2/3", (2, 3)), ("0/1", (0, 1))])
def test_shard_arguments_parse(text: str, parsed: tuple[int, int]) -> None:
    assert parse_shard(text) == parsed


@pytest.mark.parametrize("text", ["3/3", "-1/3", "1", "a/b", "1/0", "0/65", "1/3/4", ""])
def test_a_bad_shard_argument_is_a_usage_error_naming_the_form(text: str) -> None:
    with pytest.raises(UsageError, match="expected I/N"):
        parse_shard(text)


def _record(**changes: object) -> ShardRecord:
    entry = ObjectEntry(key="db/users.bson.gz", bytes=10, sha256="0" * 64, count=2)
    base: dict[str, object] = {
        "backup_id": shard_backup_id("shardedmongo", SLOT),
        "source": "shardedmongo",
        "engine": "mongodb",
        "slot": "2026-03-01T02:00:00Z",
        "shard": 0,
        "of": 3,
        "collections": ["users"],
        "objects": [entry],
        "counts": {"db.users": 2},
        "started_at": "2026-03-01T02:00:01Z",
        "finished_at": "2026-03-01T02:00:05Z",
    }
    return ShardRecord.model_validate(base | changes)


def test_a_shard_record_round_trips_and_a_damaged_one_is_an_integrity_error() -> None:
    record = _record()
    assert ShardRecord.from_json(record.to_bytes(), where="x") == record
    assert record.label == "0/3"
    with pytest.raises(BackupIntegrityError, match="x is unreadable"):
        ShardRecord.from_json(record.to_bytes()[:-20], where="x")
    with pytest.raises(ValueError, match="below the count"):
        _record(shard=3)


@pytest.mark.parametrize(
    ("engine", "runner"), [("postgres", "fargate"), ("mongodb", "lambda"), ("upstash", "fargate")]
)
def test_fargate_shards_on_a_source_that_cannot_be_sharded_is_a_config_error(
    tmp_path: Path, engine: str, runner: str
) -> None:
    token = 'token_secret = "UPSTASH_REDIS_REST_TOKEN"\n' if engine == "upstash" else ""
    path = tmp_path / "lastgood.toml"
    path.write_text(
        f'[[sources]]\nname = "big"\nengine = "{engine}"\nurl_secret = "URL"\n{token}'
        f'runner = "{runner}"\nfargate_shards = 3\n',
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match="fargate_shards is for mongodb") as caught:
        load_config_file(path)
    assert f"not {engine} on {runner}" in str(caught.value)


def test_the_sharded_fixture_config_is_valid() -> None:
    config = load_config_file(ROOT / "tests/fixtures/config/sharded-mongodb.toml")
    assert config.source("shardedmongo").fargate_shards == 3
    assert config.source("warehouse").fargate_shards == 1
