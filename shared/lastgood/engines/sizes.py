"""Each engine's `estimate_size`: one cheap, read-only server statistic, never a scan.

- PostgreSQL: `pg_database_size(current_database())` (bytes on disk, indexes included) and the
  planner's row estimate (`pg_class.reltuples`) of the user tables (unknown before ANALYZE).
- MongoDB: `dbStats` of the source's database: `dataSize` (uncompressed BSON, what a dump reads)
  and `objects`.
- Redis / Upstash: `DBSIZE` (keys) and `INFO memory` `used_memory` (bytes the server holds; none
  where the server does not report it).
"""

from __future__ import annotations

from typing import Any

from lastgood.core.errors import SourceUnavailable
from lastgood.core.redact import redact_text
from lastgood.engines.base import SizeEstimate

_PG_SIZE = (
    "SELECT pg_database_size(current_database()), (sum(c.reltuples) FILTER (WHERE c.reltuples >= 0))::bigint"
    " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p')"
    " AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'"
)


def postgres_size(url: str) -> SizeEstimate:
    import psycopg

    from lastgood.engines.pg_connect import connect
    from lastgood.engines.postgres import _source_error

    try:
        with connect(url, timeout_s=10) as conn:
            row = conn.execute(_PG_SIZE).fetchone()
    except psycopg.Error as exc:
        raise _source_error(exc, url, "size estimate failed") from None
    if row is None:
        return SizeEstimate(None, None, "pg_database_size(current_database())")
    # reltuples is -1 for a table never vacuumed or analyzed: rows unknown then, not 0
    rows = int(row[1]) if row[1] is not None else None
    return SizeEstimate(
        int(row[0]), rows, "pg_database_size(current_database()), rows from pg_class.reltuples"
    )


def mongodb_size(url: str, database: str | None) -> SizeEstimate:
    from pymongo.errors import PyMongoError

    from lastgood.engines.mongodb_client import database_of, get_client

    db_name = database_of(url, database)
    try:
        stats: dict[str, Any] = get_client(url).get_database(db_name).command("dbStats")
    except PyMongoError as exc:
        raise SourceUnavailable(
            f"MongoDB dbStats of {db_name}: {type(exc).__name__}: {redact_text(str(exc), (url,))}"[:500]
        ) from None
    return SizeEstimate(
        int(stats.get("dataSize", 0)), int(stats.get("objects", 0)), f"dbStats({db_name}).dataSize"
    )


def redis_size(url: str, token: str | None) -> SizeEstimate:
    from lastgood.engines.redis_keyspace import dbsize, one, open_keyspace, reply_text
    from lastgood.engines.upstash_rest import UpstashCommandError

    ks = open_keyspace(url, token=token, timeout_s=10.0)
    try:
        keys = dbsize(ks)
        try:
            info = reply_text(one(ks, "INFO", "memory"))
        except UpstashCommandError:  # INFO not offered: the key count is all there is
            info = ""
    finally:
        ks.close()
    used = next(
        (line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("used_memory:")), ""
    )
    if used.isdigit():
        return SizeEstimate(int(used), keys, "DBSIZE, INFO memory used_memory")
    return SizeEstimate(None, keys, "DBSIZE (INFO memory not offered)")
