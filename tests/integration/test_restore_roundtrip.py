"""Round trip per engine: seed → backup → `lastgood restore --latest` into the scratch target → same data.

Data is compared value by value (rows + schema, documents, keys + values + TTLs),
not only counts. The scratch targets are wiped before and after, so the session's
source databases are never touched.
"""

from __future__ import annotations

import pytest

from tests.helpers.restore import (
    assert_same_redis,
    backup_now,
    env,
    mongo_db_of,
    mongo_snapshot,
    pg_snapshot,
    redis_snapshot,
    run_cli,
    wipe,
)

pytestmark = pytest.mark.devstack


def test_postgres_round_trip_restores_schema_rows_and_sequences(devstack):
    # Given the seeded source database and an empty scratch database
    devstack.seed()
    scratch = env("SCRATCH_DATABASE_URL")
    wipe("postgres", scratch)
    seed = pg_snapshot(env("DATABASE_URL"))
    # When it is backed up and the latest backup is restored into the scratch database
    backup_id = backup_now("postgres")
    try:
        result = run_cli("restore", "--latest", "--source", "postgres", "--target", scratch)
        # Then the restore succeeds, reports the counts, and every row, column and sequence matches
        assert result.code == 0, result.err
        assert backup_id in result.out and "public.users" in result.out and "MISMATCH" not in result.out
        assert pg_snapshot(scratch) == seed
    finally:
        wipe("postgres", scratch)


def test_mongodb_round_trip_restores_every_document(devstack):
    # Given the seeded MongoDB and an empty scratch database
    devstack.seed()
    scratch = env("SCRATCH_MONGODB_URI")
    wipe("mongodb", scratch)
    seed = mongo_snapshot(env("MONGODB_URI"), mongo_db_of(env("MONGODB_URI")))
    assert seed["prompts"], "the seed has prompts"
    # When it is backed up and the latest backup is restored into the scratch database
    backup_now("mongodb")
    try:
        result = run_cli("restore", "--latest", "--source", "mongodb", "--target", scratch, "--json")
        # Then every document (with its _id and every value) is back
        assert result.code == 0, result.err
        assert mongo_snapshot(scratch, mongo_db_of(scratch)) == seed
    finally:
        wipe("mongodb", scratch)


def test_upstash_round_trip_restores_keys_values_and_ttls(devstack):
    # Given the seeded key space (served through the Upstash REST front) and an empty scratch db
    devstack.seed()
    scratch = env("SCRATCH_REDIS_URL")
    wipe("upstash", scratch)
    seed = redis_snapshot(env("REDIS_URL"))
    assert any(ttl > 0 for _, _, ttl in seed.values()), "the seed has keys with TTLs"
    # When it is backed up and the latest backup is restored into the scratch key space
    backup_now("upstash")
    try:
        result = run_cli("restore", "--latest", "--source", "upstash", "--target", scratch)
        # Then every key has its type, value (binary too) and remaining TTL
        assert result.code == 0, result.err
        assert_same_redis(redis_snapshot(scratch), seed)
    finally:
        wipe("upstash", scratch)
