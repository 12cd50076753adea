"""Generated data for the bench: sizes are `BENCH_SCALE` times the defaults the areas pass in."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from typing import Any

BENCH_COLLECTION = "bench_docs"

# A small shop's schema: tables of different sizes, secondary indexes and foreign keys, so a
# restore has the index builds and constraint checks (and the parallelism) a real database has.
BENCH_SCHEMA = "bench"
_PG_SCHEMA = """
DROP SCHEMA IF EXISTS bench CASCADE;
CREATE SCHEMA bench;
CREATE TABLE bench.products (
    id bigint PRIMARY KEY, sku text NOT NULL UNIQUE, title text NOT NULL,
    description text NOT NULL, price numeric(10, 2) NOT NULL);
CREATE TABLE bench.customers (
    id bigint PRIMARY KEY, email text NOT NULL UNIQUE, name text NOT NULL,
    country char(2) NOT NULL, created_at timestamptz NOT NULL);
CREATE TABLE bench.orders (
    id bigint PRIMARY KEY, customer_id bigint NOT NULL REFERENCES bench.customers (id),
    status text NOT NULL, created_at timestamptz NOT NULL, total numeric(12, 2) NOT NULL);
CREATE TABLE bench.order_items (
    order_id bigint NOT NULL REFERENCES bench.orders (id), line int NOT NULL,
    product_id bigint NOT NULL REFERENCES bench.products (id), quantity int NOT NULL,
    unit_price numeric(10, 2) NOT NULL, PRIMARY KEY (order_id, line));
CREATE TABLE bench.events (
    id bigint PRIMARY KEY, customer_id bigint NOT NULL REFERENCES bench.customers (id),
    kind text NOT NULL, at timestamptz NOT NULL, payload jsonb NOT NULL, blob bytea);
"""
_PG_INDEXES = """
CREATE INDEX orders_customer_idx ON bench.orders (customer_id);
CREATE INDEX orders_created_idx ON bench.orders (created_at);
CREATE INDEX order_items_product_idx ON bench.order_items (product_id);
CREATE INDEX events_customer_at_idx ON bench.events (customer_id, at);
CREATE INDEX events_kind_idx ON bench.events (kind);
"""


def postgres_table_rows(rows: int) -> dict[str, int]:
    """Rows per table for a data size of `rows` (~100 bytes of custom-format dump per unit)."""
    return {
        "products": max(100, rows // 100),
        "customers": max(100, rows // 5),
        "orders": max(100, rows * 3 // 4),
        "order_items": 3 * max(100, rows * 3 // 4),  # three lines per order
        "events": max(100, rows * 3 // 4),
    }


def generate_postgres(url: str, rows: int) -> None:
    """The `bench` schema (five tables, indexes, foreign keys) sized by `rows`: ~100 bytes of
    `pg_dump -Fc` per unit (200k → ~20 MB of dump). Deterministic, mildly compressible values."""
    import psycopg

    n = postgres_table_rows(rows)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_rows")  # the former single-table data
        conn.execute(_PG_SCHEMA)
        conn.execute(
            "INSERT INTO bench.products SELECT g, 'SKU-' || lpad(g::text, 8, '0'), "
            "'Product ' || g || ' ' || left(md5(g::text), 12), "
            "repeat(md5((g * 3)::text) || ' ', 8), round((g %% 997)::numeric / 7 + 1, 2) "
            "FROM generate_series(1::bigint, %s) g",
            (n["products"],),
        )
        conn.execute(
            "INSERT INTO bench.customers SELECT g, 'user' || g || '@' || left(md5(g::text), 8) || '.example', "
            "initcap(left(md5((g * 5)::text), 7)) || ' ' || initcap(left(md5((g * 11)::text), 9)), "
            "(ARRAY['DE','FR','US','GB','NL','SE','JP','BR'])[1 + g %% 8], "
            "timestamptz '2024-01-01' + g * interval '7 minutes' FROM generate_series(1::bigint, %s) g",
            (n["customers"],),
        )
        conn.execute(
            "INSERT INTO bench.orders SELECT g, 1 + (g * 7919) %% %s, "
            "(ARRAY['new','paid','shipped','delivered','returned'])[1 + g %% 5], "
            "timestamptz '2024-01-01' + g * interval '71 seconds', round(((g * 31) %% 50000)::numeric / 100, 2) "
            "FROM generate_series(1::bigint, %s) g",
            (n["customers"], n["orders"]),
        )
        conn.execute(
            "INSERT INTO bench.order_items SELECT 1 + (g - 1) / 3, 1 + (g - 1) %% 3, 1 + (g * 104729) %% %s, "
            "1 + g %% 4, round(((g * 17) %% 9000)::numeric / 100 + 1, 2) FROM generate_series(1::bigint, %s) g",
            (n["products"], n["order_items"]),
        )
        conn.execute(
            "INSERT INTO bench.events SELECT g, 1 + (g * 6007) %% %s, "
            "(ARRAY['view','click','cart','checkout','search'])[1 + g %% 5], "
            "timestamptz '2024-01-01' + g * interval '13 seconds', "
            "jsonb_build_object('path', '/p/' || (g %% 5000), 'ref', md5((g * 13)::text), "
            "'ua', 'Mozilla/5.0 (X11; Linux x86_64) ' || (g %% 40), 'n', g %% 1000, "
            "'session', md5((g / 20)::text), 'tags', jsonb_build_array('t' || g %% 17, 't' || g %% 23)), "
            "decode(md5((g * 17)::text) || md5((g * 19)::text), 'hex') FROM generate_series(1::bigint, %s) g",
            (n["customers"], n["events"]),
        )
        conn.execute(_PG_INDEXES)
        # a database in its steady state: hint bits set, visibility map and statistics current,
        # so autovacuum's pass over the fresh rows does not land on whichever side runs next
        conn.execute("VACUUM (ANALYZE)")
        conn.execute("CHECKPOINT")  # and written out, not left to the runs that follow


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
