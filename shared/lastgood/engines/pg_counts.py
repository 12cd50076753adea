"""Exact row counts of a PostgreSQL database's user tables, on one snapshot.

`count_tables` counts on the caller's connection (the restore's check, on its critical
path); `CountWorker` counts on the dump's snapshot connection on a thread while pg_dump
streams (`lastgood.engines.postgres`), so the counts are exactly the rows in the dump.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any

import psycopg
from psycopg import sql

USER_TABLES = """
SELECT n.nspname, c.relname
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind = 'r'
   AND n.nspname NOT IN ('pg_catalog', 'information_schema')
   AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'
   AND NOT EXISTS (SELECT 1 FROM pg_depend d
                    WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
 ORDER BY 1, 2
"""


def count_tables(conn: psycopg.Connection[Any], tables: list[tuple[str, str]]) -> dict[str, int]:
    """`schema.table` → exact rows, one `count(*)` per table on `conn`."""
    counts: dict[str, int] = {}
    for schema, table in tables:
        row = conn.execute(
            sql.SQL("SELECT count(*) FROM {}.{}").format(sql.Identifier(schema), sql.Identifier(table))
        ).fetchone()
        counts[f"{schema}.{table}"] = int(row[0]) if row else 0
    return counts


class CountWorker:
    """Counts rows on the snapshot connection while pg_dump streams."""

    def __init__(self, conn: psycopg.Connection[Any], tables: list[tuple[str, str]]) -> None:
        self.conn = conn
        self.tables = tables
        self.counts: dict[str, int] = {}
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="pg-counts", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            # One process per count, no parallel workers: the counts have all of pg_dump's run
            # to finish in, and parallel seq scans would take the cores pg_dump's COPY and
            # compression need (the restore's counts, on its critical path, keep them)
            self.conn.execute("SET LOCAL max_parallel_workers_per_gather = 0")
            self.counts = count_tables(self.conn, self.tables)
        except BaseException as exc:
            self.error = exc

    def stop(self) -> None:
        if self.thread.is_alive():
            with contextlib.suppress(Exception):
                self.conn.cancel_safe(timeout=5)
        self.thread.join(timeout=10)
