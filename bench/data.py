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
        for start in range(0, docs, 5000):
            coll.insert_many(
                [bench_document(i) for i in range(start, min(docs, start + 5000))], ordered=False
            )
    finally:
        client.close()


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
