"""The sharded MongoDB source of tests/fixtures/config/sharded-mongodb.toml: its database, seeded
with collections that fall in every one of its 3 shards, and the config switched to it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pymongo import MongoClient

ROOT = Path(__file__).resolve().parents[2]
SHARDED_CONFIG = ROOT / "tests" / "fixtures" / "config" / "sharded-mongodb.toml"
SOURCE = "shardedmongo"
DATABASE = "lastgood_sharded"  # the source's `database` in the fixture config
SHARDS = 3
# name -> documents; by shard_of(name, 3): users, audit_log → 0; orders, products → 1; reviews, sessions → 2
COLLECTIONS = {"users": 120, "audit_log": 0, "orders": 300, "products": 50, "reviews": 75, "sessions": 10}


def use_sharded_config(monkeypatch: pytest.MonkeyPatch) -> Path:
    from tests.helpers.replica import reset_caches

    monkeypatch.setenv("LASTGOOD_CONFIG", str(SHARDED_CONFIG))
    reset_caches()
    return SHARDED_CONFIG


def seed_sharded_database(uri: str) -> dict[str, int]:
    """The source's database recreated with COLLECTIONS (an index on users); `{ns: documents}`."""
    client: MongoClient[dict[str, Any]] = MongoClient(uri, serverSelectionTimeoutMS=5000)
    try:
        client.drop_database(DATABASE)
        db = client[DATABASE]
        for name, count in COLLECTIONS.items():
            db.create_collection(name)
            if count:
                db[name].insert_many(
                    [
                        {"_id": f"{name}-{i}", "n": i, "body": f"{name} document {i} " * 3}
                        for i in range(count)
                    ]
                )
        db["users"].create_index("n", name="n_1")
        return {f"{DATABASE}.{name}": count for name, count in COLLECTIONS.items()}
    finally:
        client.close()


def slot(day: int) -> str:
    """A distinct daily slot per test (the backup id follows the slot: tests must not share one)."""
    return datetime(2026, 5, day, tzinfo=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
