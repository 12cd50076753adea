"""Helpers for the restore/verify/migrate tests: run the CLI in-process, corrupt objects, snapshot data.

Snapshots capture the data itself (not only counts) so a round trip can be
compared value by value: PostgreSQL schema + every row, MongoDB every document,
Redis every key's type, value and TTL.
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
from lastgood.backups.keys import object_key
from lastgood.backups.store import BackupStore
from lastgood.cli import main as cli_main


@dataclass
class CliResult:
    code: int
    out: str
    err: str


def run_cli(*args: str) -> CliResult:
    """`lastgood ARGS` in-process (the env is the devstack's), capturing stdout/stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli_main(["--no-env-file", *args])
    return CliResult(code, out.getvalue(), err.getvalue())


def backup_now(source: str) -> str:
    from lastgood.backups.run import run_backup

    result = run_backup(source, on_demand=True)
    assert result.status == "ok" and result.backup_id
    return result.backup_id


def object_keys(source: str, backup_id: str) -> list[str]:
    store = BackupStore.from_settings()
    return [object_key(source, backup_id, o.key) for o in store.read_manifest(source, backup_id).objects]


@contextlib.contextmanager
def flipped_byte(key: str, offset: int | None = None) -> Iterator[str]:
    """Rewrite the stored object `key` with one byte changed (same length); put it back after."""
    store = BackupStore.from_settings()
    original = store.s3.get_object(Bucket=store.bucket, Key=key)["Body"].read()
    assert original, f"{key} is empty"
    at = len(original) // 2 if offset is None else offset
    corrupted = bytearray(original)
    corrupted[at] ^= 0x01
    store.s3.put_object(Bucket=store.bucket, Key=key, Body=bytes(corrupted), **store.sse_args())
    try:
        yield key
    finally:
        store.s3.put_object(Bucket=store.bucket, Key=key, Body=original, **store.sse_args())


def wipe(engine: str, url: str) -> None:
    from lastgood.engines import get_engine

    get_engine(engine).wipe(url)


# --------------------------------------------------------------------------- PostgreSQL


def pg_snapshot(url: str) -> dict[str, Any]:
    """Columns (name, type, nullability, default) and every row (as text, sorted) of each user table."""
    with psycopg.connect(url) as conn:
        tables = [
            (str(s), str(t))
            for s, t in conn.execute(
                "SELECT table_schema, table_name FROM information_schema.tables "
                "WHERE table_schema NOT IN ('pg_catalog', 'information_schema') AND table_type = 'BASE TABLE' "
                "ORDER BY 1, 2"
            ).fetchall()
        ]
        snap: dict[str, Any] = {}
        for schema, table in tables:
            columns = conn.execute(
                "SELECT column_name, data_type, is_nullable, column_default FROM information_schema.columns "
                "WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position",
                (schema, table),
            ).fetchall()
            rows = conn.execute(
                psycopg.sql.SQL("SELECT t::text FROM {}.{} t").format(
                    psycopg.sql.Identifier(schema), psycopg.sql.Identifier(table)
                )
            ).fetchall()
            snap[f"{schema}.{table}"] = {"columns": columns, "rows": sorted(r[0] for r in rows)}
        snap["_sequences"] = sorted(
            conn.execute(
                "SELECT schemaname, sequencename, last_value FROM pg_sequences "
                "WHERE schemaname NOT IN ('pg_catalog', 'information_schema')"
            ).fetchall()
        )
        snap["_indexes"] = sorted(
            conn.execute(
                "SELECT schemaname, tablename, indexdef FROM pg_indexes "
                "WHERE schemaname NOT IN ('pg_catalog', 'information_schema')"
            ).fetchall()
        )
    return snap


def pg_is_empty(url: str) -> bool:
    from lastgood.engines.postgres import ENGINE

    return ENGINE.is_empty(url)


# --------------------------------------------------------------------------- MongoDB


def mongo_snapshot(url: str, db_name: str) -> dict[str, list[dict[str, Any]]]:
    """Every document of every collection of `db_name`, decoded, sorted by `_id`."""
    from pymongo import MongoClient

    client: MongoClient[dict[str, Any]] = MongoClient(url, serverSelectionTimeoutMS=5000)
    try:
        db = client[db_name]
        return {
            name: sorted(db[name].find({}), key=lambda d: str(d["_id"]))
            for name in sorted(db.list_collection_names())
            if not name.startswith("system.")
        }
    finally:
        client.close()


def mongo_db_of(url: str) -> str:
    from lastgood.engines.mongodb import database_of

    return database_of(url)


# --------------------------------------------------------------------------- Redis


def redis_snapshot(url: str) -> dict[bytes, tuple[str, Any, int]]:
    """{key: (type, value, ttl seconds or -1)} for every key of the URL's database."""
    import valkey

    client = valkey.Valkey.from_url(url, decode_responses=False, socket_timeout=5)
    try:
        snap: dict[bytes, tuple[str, Any, int]] = {}
        for key in client.scan_iter(count=500):
            kind = client.type(key).decode()
            value: Any
            if kind == "string":
                value = client.get(key)
            elif kind == "hash":
                value = client.hgetall(key)
            elif kind == "list":
                value = client.lrange(key, 0, -1)
            elif kind == "set":
                value = sorted(client.smembers(key))
            elif kind == "zset":
                value = client.zrange(key, 0, -1, withscores=True)
            elif kind == "stream":
                value = client.xrange(key)
            else:
                value = None
            snap[key] = (kind, value, int(client.ttl(key)))
        return snap
    finally:
        client.close()


def assert_same_redis(
    restored: dict[bytes, tuple[str, Any, int]], seed: dict[bytes, tuple[str, Any, int]]
) -> None:
    assert sorted(restored) == sorted(seed)
    for key, (kind, value, ttl) in seed.items():
        got_kind, got_value, got_ttl = restored[key]
        assert (got_kind, got_value) == (kind, value), key
        if ttl < 0:
            assert got_ttl == ttl, f"{key!r}: TTL {got_ttl} but the seed has none"
        else:  # remaining TTL kept (minus the seconds the round trip took)
            assert 0 < got_ttl <= ttl and ttl - got_ttl <= 10, f"{key!r}: TTL {got_ttl} vs {ttl}"


def env(name: str) -> str:
    return os.environ[name]
