"""Replication slots and publications on the source (the PostgreSQL side of PITR).

`create_slot_with_snapshot` opens a replication connection (`replication=database`) and sends
`CREATE_REPLICATION_SLOT … LOGICAL pgoutput (SNAPSHOT 'export')` with the simple-query
protocol; the snapshot it exports stays valid while that connection stays open and idle, so
the caller runs `pg_dump --snapshot` inside the `with` block — the base then holds exactly the
transactions committed before the slot's consistent point, and the slot streams every later one.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import pq, sql

from lastgood.core.errors import BackupError, SourceUnavailable
from lastgood.core.redact import redact_text
from lastgood.engines.pg_connect import connect

_SLOT_NAME = re.compile(r"^[a-z0-9_]{1,63}$")


class SlotLost(BackupError):
    """The source's replication slot is gone (dropped behind lastgood's back, or invalidated)."""


def publication_name(source: str) -> str:
    return "lastgood_" + source.replace("-", "_")[:50]


def slot_prefix(source: str) -> str:
    return "lastgood_" + source.replace("-", "_")[:40] + "_"


def check_slot_name(name: str) -> str:
    if not _SLOT_NAME.match(name):
        raise ValueError(f"invalid replication slot name {name!r}")
    return name


@dataclass(frozen=True)
class CreatedSlot:
    name: str
    consistent_lsn: str
    snapshot: str


@contextmanager
def create_slot_with_snapshot(url: str, name: str) -> Iterator[CreatedSlot]:
    """A new logical slot (pgoutput) and its exported snapshot, valid inside the block."""
    check_slot_name(name)
    try:
        conn = psycopg.connect(url, autocommit=True, replication="database", connect_timeout=10)
    except psycopg.Error as exc:
        raise SourceUnavailable(
            f"PostgreSQL replication connection failed: {redact_text(str(exc), (url,))[:300]} (the role needs "
            "REPLICATION, or the provider's equivalent)"
        ) from None
    try:
        command = f"CREATE_REPLICATION_SLOT {name} LOGICAL pgoutput (SNAPSHOT 'export')".encode()
        result = conn.pgconn.exec_(command)
        if result.status != pq.ExecStatus.TUPLES_OK:
            message = (result.error_message or b"").decode("utf-8", "replace").strip()
            raise SourceUnavailable(f"could not create replication slot {name}: {message[:300]}")
        columns = [(result.fname(i) or b"").decode() for i in range(result.nfields)]
        row = {columns[i]: (result.get_value(0, i) or b"").decode() for i in range(result.nfields)}
        yield CreatedSlot(name, row["consistent_point"], row["snapshot_name"])
    finally:
        conn.close()


def drop_slot(url: str, name: str) -> bool:
    """Drop a slot if it exists (True when one was dropped); waits briefly for a closing walsender."""
    with connect(url, timeout_s=10, autocommit=True) as conn:
        for attempt in range(50):
            try:
                row = conn.execute(
                    "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = %s",
                    (name,),
                ).fetchone()
                return row is not None
            except psycopg.errors.ObjectInUse:
                if attempt == 49:
                    raise
                time.sleep(0.1)
    return False


@dataclass(frozen=True)
class SlotStatus:
    name: str
    exists: bool
    confirmed_lsn: str | None = None
    lag_bytes: int | None = None
    wal_status: str | None = None
    active: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "slot": self.name,
            "exists": self.exists,
            "confirmed_lsn": self.confirmed_lsn,
            "lag_bytes": self.lag_bytes,
            "wal_status": self.wal_status,
            "active": self.active,
        }


def slot_status(conn: psycopg.Connection[Any], name: str) -> SlotStatus:
    row = conn.execute(
        "SELECT confirmed_flush_lsn::text, pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint,"
        " wal_status, active FROM pg_replication_slots WHERE slot_name = %s",
        (name,),
    ).fetchone()
    if row is None:
        return SlotStatus(name, False)
    return SlotStatus(name, True, row[0], int(row[1]) if row[1] is not None else None, row[2], bool(row[3]))


def require_slot(conn: psycopg.Connection[Any], name: str, source: str) -> SlotStatus:
    status = slot_status(conn, name)
    if not status.exists or status.wal_status == "lost":
        what = (
            "does not exist (dropped behind lastgood's back?)"
            if not status.exists
            else "was invalidated (WAL lost)"
        )
        raise SlotLost(
            f"the replication slot {name} of PITR source {source!r} {what}: changes since the last segment "
            f"cannot be captured; take a new base: lastgood backup --source {source}"
        )
    return status


def ensure_publication(conn: psycopg.Connection[Any], name: str) -> bool:
    """Create the publication (FOR ALL TABLES) if missing; True when it was created."""
    if conn.execute("SELECT 1 FROM pg_publication WHERE pubname = %s", (name,)).fetchone():
        return False
    conn.execute(sql.SQL("CREATE PUBLICATION {} FOR ALL TABLES").format(sql.Identifier(name)))
    return True


def drop_publication(conn: psycopg.Connection[Any], name: str) -> bool:
    if not conn.execute("SELECT 1 FROM pg_publication WHERE pubname = %s", (name,)).fetchone():
        return False
    conn.execute(sql.SQL("DROP PUBLICATION {}").format(sql.Identifier(name)))
    return True


_PUBLISHED_SHAPES = """
SELECT c.oid, n.nspname, c.relname,
       coalesce(array_agg(a.attname::text ORDER BY a.attnum) FILTER (WHERE a.attnum IS NOT NULL), '{}'),
       coalesce(array_agg(a.atttypid::int ORDER BY a.attnum) FILTER (WHERE a.attnum IS NOT NULL), '{}'),
       coalesce(array_agg(a.atttypmod ORDER BY a.attnum) FILTER (WHERE a.attnum IS NOT NULL), '{}')
  FROM pg_publication_tables pt
  JOIN pg_namespace n ON n.nspname = pt.schemaname
  JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = pt.tablename
  LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
 WHERE pt.pubname = %s
 GROUP BY c.oid, n.nspname, c.relname
"""


def published_shapes(conn: psycopg.Connection[Any], publication: str) -> dict[str, dict[str, Any]]:
    """{relation oid: {namespace, name, columns}} of every table in the publication."""
    shapes: dict[str, dict[str, Any]] = {}
    for oid, nsp, rel, names, types, mods in conn.execute(_PUBLISHED_SHAPES, (publication,)).fetchall():
        shapes[str(oid)] = {
            "namespace": str(nsp),
            "name": str(rel),
            "columns": [(str(a), int(b), int(c)) for a, b, c in zip(names, types, mods, strict=True)],
        }
    return shapes
