"""Generated data for the bench: sizes are `BENCH_SCALE` times the defaults the areas pass in."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from typing import Any

BENCH_TABLE = "bench_rows"
BENCH_COLLECTION = "bench_docs"


def generate_postgres(url: str, rows: int) -> None:
    """One table of `rows` rows (~190 bytes each: text, bytea, a double) plus its primary key."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {BENCH_TABLE}")
        conn.execute(
            f"CREATE TABLE {BENCH_TABLE} (id bigint PRIMARY KEY, payload text, blob bytea, n double precision)"
        )
        conn.execute(
            f"INSERT INTO {BENCH_TABLE} SELECT g, md5(g::text) || repeat(md5((g * 7)::text), 6), "
            "decode(md5((g * 13)::text) || md5((g * 17)::text), 'hex'), random() "
            "FROM generate_series(1, %s) g",
            (rows,),
        )
        conn.execute(f"ANALYZE {BENCH_TABLE}")


def bench_document(i: int) -> dict[str, Any]:
    return {
        "_id": f"doc-{i:07d}",
        "title": f"Document {i}",
        "body": "lorem ipsum dolor sit amet " * 8,
        "n": i,
        "rating": (i % 50) / 10,
        "tags": ["a", "b", f"t{i % 17}"],
        "createdAt": datetime(2025, 1, 1, tzinfo=UTC) + timedelta(seconds=i),
        "meta": {"source": "bench", "version": i % 5},
    }


def generate_mongo(uri: str, db: str, docs: int, collection: str = BENCH_COLLECTION) -> None:
    from pymongo import MongoClient

    client: MongoClient[Any] = MongoClient(uri)
    try:
        coll = client[db][collection]
        coll.drop()
        _insert(coll, bench_document, 0, docs)
    finally:
        client.close()


def _insert(coll: Any, make: Any, start: int, stop: int, chunk: int = 5000) -> None:
    for first in range(start, stop, chunk):
        coll.insert_many([make(i) for i in range(first, min(stop, first + chunk))], ordered=False)


def _event(i: int) -> dict[str, Any]:
    return {
        "_id": i,
        "kind": ("view", "click", "buy", "share")[i % 4],
        "user": f"user-{i % 2000:05d}",
        "at": datetime(2025, 1, 1, tzinfo=UTC) + timedelta(milliseconds=i * 37),
        "value": i * 0.25,
    }


def _user(i: int) -> dict[str, Any]:
    return {
        "_id": f"user-{i:05d}",
        "email": f"user{i}@example.org",
        "name": f"User Number {i}",
        "plan": ("free", "pro", "team")[i % 3],
        "signedUp": datetime(2024, 1, 1, tzinfo=UTC) + timedelta(hours=i),
        "prefs": {"lang": ("en", "de", "fr")[i % 3], "digest": i % 2 == 0},
    }


def _blob(i: int) -> dict[str, Any]:
    from bson.binary import Binary

    return {
        "_id": f"blob-{i:06d}",
        "owner": f"user-{i % 2000:05d}",
        "size": 3072,
        "thumb": Binary(os.urandom(1024) + bytes(2048)),  # part incompressible, like images
        "caption": f"attachment {i} " * 8,
    }


# (collection, document maker, documents at BENCH_SCALE=1, indexes beside `_id`)
MONGO_COLLECTIONS: tuple[tuple[str, Any, int, list[list[tuple[str, Any]]]], ...] = (
    (BENCH_COLLECTION, bench_document, 20_000, [[("n", 1)], [("tags", 1)], [("meta.version", 1), ("n", -1)]]),
    ("bench_events", _event, 40_000, [[("at", 1)], [("kind", 1), ("user", 1)]]),
    ("bench_blobs", _blob, 1_500, [[("owner", 1)]]),
    ("bench_users", _user, 2_000, [[("email", 1)], [("plan", 1), ("signedUp", -1)]]),
)


def generate_mongo_database(uri: str, db: str, scale: float) -> dict[str, int]:
    """A realistic database: four collections of different sizes and shapes, each with
    secondary indexes (one unique), `scale` times the default sizes (≈ 13 MB of BSON at 1).
    Every other collection of `db` is dropped first, so a dump holds exactly these."""
    from pymongo import MongoClient

    client: MongoClient[Any] = MongoClient(uri)
    counts: dict[str, int] = {}
    try:
        database = client[db]
        for name in database.list_collection_names():
            if not name.startswith("system."):
                database.drop_collection(name)
        for name, make, base, indexes in MONGO_COLLECTIONS:
            docs = max(1, int(base * scale))
            coll = database[name]
            _insert(coll, make, 0, docs)
            for keys in indexes:
                coll.create_index(keys, unique=name == "bench_users" and keys[0][0] == "email")
            counts[f"{db}.{name}"] = docs
    finally:
        client.close()
    return counts


def generate_redis(url: str, keys: int) -> None:
    """`keys` string keys of 64 random bytes (binary values), one in ten with a TTL."""
    import valkey

    client = valkey.Valkey.from_url(url)
    try:
        client.flushdb()
        pipe = client.pipeline(transaction=False)
        for i in range(keys):
            pipe.set(f"bench:{i:07d}", os.urandom(64), ex=86_400 if i % 10 == 0 else None)
            if i % 1000 == 999:
                pipe.execute()
        pipe.execute()
    finally:
        client.close()
