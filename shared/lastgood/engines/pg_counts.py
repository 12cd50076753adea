"""Exact row counts of a PostgreSQL database's user tables, on one snapshot.

`count_tables` counts on the caller's connection (the restore's check, on its critical
path); `CountWorker` counts on the dump's snapshot connection on a thread while pg_dump
streams (`lastgood.engines.postgres`), so the counts are exactly the rows in the dump.
`TransactionCounts` receives the counts a restore takes inside pg_restore's own transaction
(its SQL runs as a TOC entry appended to the archive, `lastgood.engines.pg_archive`).
"""

from __future__ import annotations

import contextlib
import json
import secrets
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


# The count inside pg_restore's transaction (`lastgood.engines.pg_archive` appends it to the
# archive's TOC): the same tables and keys as `count_tables`, sent with NOTIFY, which the
# server delivers only if the transaction commits. Any error inside is caught and only
# skips the count (the restore goes on; the caller then counts after the commit).
IN_TRANSACTION_TAG = "lastgood row counts"
IN_TRANSACTION_DESC = "ROW COUNT"
_COUNT_BLOCK = """DO $lastgood$
DECLARE
  r record;
  n bigint;
  tables integer := 0;
BEGIN
  FOR r IN {tables} LOOP
    EXECUTE format('SELECT count(*) FROM %I.%I', r.nspname, r.relname) INTO n;
    PERFORM pg_notify('{channel}', json_build_object('s', r.nspname, 't', r.relname, 'n', n)::text);
    tables := tables + 1;
  END LOOP;
  PERFORM pg_notify('{channel}', json_build_object('tables', tables)::text);
EXCEPTION WHEN OTHERS THEN
  RAISE WARNING 'lastgood: row count inside the restore skipped: %', SQLERRM;
END
$lastgood$;"""
NOTIFY_WAIT_S = 2.0  # after pg_restore exited: the commit's notifications are already sent


class TransactionCounts:
    """The row counts the appended TOC entry sends on `conn` (LISTENing) when the restore commits.

    `conn` is an autocommit connection to the target, or None (LISTEN not possible:
    `active` is False and nothing is appended).
    """

    def __init__(self, conn: psycopg.Connection[Any] | None) -> None:
        self.channel = f"lastgood_counts_{secrets.token_hex(8)}"
        self.conn = conn
        if conn is not None:
            try:
                usable = conn.execute(
                    "SELECT current_setting('server_version_num')::int >= 90400"
                    " AND EXISTS (SELECT 1 FROM pg_language WHERE lanname = 'plpgsql')"
                ).fetchone()
                if not (usable and usable[0]):
                    raise psycopg.NotSupportedError("no plpgsql")
                conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.channel)))
            except psycopg.Error:
                conn.close()
                self.conn = None

    @property
    def active(self) -> bool:
        return self.conn is not None

    def statement(self) -> str:
        """The SQL of the appended TOC entry."""
        return _COUNT_BLOCK.format(tables=USER_TABLES.strip(), channel=self.channel)

    def collect(self, timeout_s: float | None = None) -> dict[str, int] | None:
        """`schema.table` → rows as counted inside the committed transaction; None unless all arrived."""
        if self.conn is None:
            return None
        counts: dict[str, int] = {}
        try:
            for note in self.conn.notifies(timeout=NOTIFY_WAIT_S if timeout_s is None else timeout_s):
                body = json.loads(note.payload)
                if "tables" in body:
                    return counts if len(counts) == int(body["tables"]) else None
                counts[f"{body['s']}.{body['t']}"] = int(body["n"])
        except (psycopg.Error, ValueError, KeyError, TypeError):
            return None
        return None

    def close(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(psycopg.Error):
                self.conn.close()
