"""Replay decoded pgoutput changes into a target database as SQL, one source transaction at a time.

INSERT (OVERRIDING SYSTEM VALUE, so identity columns keep their values); UPDATE and DELETE
keyed by the relation's replica identity (the old key, the whole old row for REPLICA IDENTITY
FULL, else the key columns of the new row), each required to touch exactly one row (anything
else means the target diverged: replay stops); unchanged-TOAST columns (`u`) are left out of
the SET list; TRUNCATE with its CASCADE / RESTART IDENTITY options. A transaction's statements
run in one target transaction committed only when its Commit message is seen. Triggers do not
fire (`session_replication_role = replica`, when the role may set it): their effects are in
the stream already. Statements go out in pipeline mode; row counts are checked at each sync
and before the commit. Afterwards `fix_sequences` moves every owned sequence past its column's max.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, NoReturn

import psycopg
from psycopg import sql

from lastgood.core.errors import RestoreError
from lastgood.core.observability import logger
from lastgood.pitr import pgoutput as pg


class ReplayError(RestoreError):
    """A change could not be applied (the target diverged from the stream)."""


def _ident(rel: pg.Relation) -> sql.Composed:
    return sql.SQL("{}.{}").format(sql.Identifier(rel.namespace), sql.Identifier(rel.name))


def _where(cols: list[tuple[pg.Column, Any]], *, full: bool) -> tuple[sql.Composed, list[Any]]:
    op = sql.SQL(" IS NOT DISTINCT FROM ") if full else sql.SQL(" = ")
    parts = [sql.Identifier(c.name) + op + sql.Placeholder() for c, _ in cols]
    return sql.SQL(" AND ").join(parts), [v for _, v in cols]


def _key(
    rel: pg.Relation, old: tuple[pg.Value, ...] | None, old_kind: str | None, new: tuple[pg.Value, ...] | None
) -> tuple[list[tuple[pg.Column, Any]], bool]:
    if old is not None and old_kind == "O":
        cols = [(c, v) for c, v in zip(rel.columns, old, strict=True) if v is not pg.UNCHANGED]
        return cols, True
    source = old if old is not None else new
    keyed = [(c, v) for c, v in zip(rel.columns, source or (), strict=True) if c.key]
    if not keyed:
        raise ReplayError(
            f"{rel.qualified} has no replica identity key: its updates/deletes cannot be replayed"
        )
    return keyed, False


def statements(msg: pg.Message, rels: dict[int, pg.Relation]) -> list[tuple[sql.Composed, list[Any], bool]]:
    """(statement, params, must touch exactly one row) for one change message."""

    def rel_of(relid: int) -> pg.Relation:
        if relid not in rels:
            raise ReplayError(f"change for relation {relid} without its relation message")
        return rels[relid]

    if isinstance(msg, pg.Insert):
        rel = rel_of(msg.relid)
        cols = [(c, v) for c, v in zip(rel.columns, msg.new, strict=True) if v is not pg.UNCHANGED]
        stmt = sql.SQL("INSERT INTO {} ({}) OVERRIDING SYSTEM VALUE VALUES ({})").format(
            _ident(rel),
            sql.SQL(", ").join(sql.Identifier(c.name) for c, _ in cols),
            sql.SQL(", ").join(sql.Placeholder() for _ in cols),
        )
        return [(stmt, [v for _, v in cols], False)]
    if isinstance(msg, pg.Update):
        rel = rel_of(msg.relid)
        keyed, full = _key(rel, msg.old, msg.old_kind, msg.new)
        # Unchanged TOAST is left alone; so are values equal to the old row's / unchanged keys (an
        # identity GENERATED ALWAYS key may not even be set to itself).
        before = msg.old if msg.old is not None else tuple(None for _ in rel.columns)
        sets = [
            (c, v)
            for c, v, o in zip(rel.columns, msg.new, before, strict=True)
            if v is not pg.UNCHANGED
            and not (msg.old is None and c.key)
            and not (msg.old is not None and (c.key or msg.old_kind == "O") and o == v)
        ]
        if not sets:
            return []
        where, wparams = _where(keyed, full=full)
        target = _ident(rel)
        if full:  # identical rows are possible: touch one
            where = sql.SQL("ctid = (SELECT ctid FROM {} WHERE {} LIMIT 1)").format(target, where)
        stmt = sql.SQL("UPDATE {} SET {} WHERE {}").format(
            target,
            sql.SQL(", ").join(sql.Identifier(c.name) + sql.SQL(" = ") + sql.Placeholder() for c, _ in sets),
            where,
        )
        return [(stmt, [v for _, v in sets] + wparams, True)]
    if isinstance(msg, pg.Delete):
        rel = rel_of(msg.relid)
        keyed, full = _key(rel, msg.old, msg.old_kind, None)
        where, wparams = _where(keyed, full=full)
        target = _ident(rel)
        if full:
            where = sql.SQL("ctid = (SELECT ctid FROM {} WHERE {} LIMIT 1)").format(target, where)
        return [(sql.SQL("DELETE FROM {} WHERE {}").format(target, where), wparams, True)]
    if isinstance(msg, pg.Truncate):
        names = sql.SQL(", ").join(_ident(rel_of(r)) for r in msg.relids)
        stmt = sql.SQL("TRUNCATE {}{}{}").format(
            names,
            sql.SQL(" RESTART IDENTITY") if msg.restart_identity else sql.SQL(""),
            sql.SQL(" CASCADE") if msg.cascade else sql.SQL(""),
        )
        return [(stmt, [], False)]
    return []


@dataclass
class Applied:
    xid: int
    commit_lsn: str
    end_lsn: str
    commit_time: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "xid": self.xid,
            "commit_lsn": self.commit_lsn,
            "end_lsn": self.end_lsn,
            "commit_time": self.commit_time,
        }


class Replayer:
    """Applies transactions to one target connection (see the module docstring)."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn
        self.rels: dict[int, pg.Relation] = {}
        self.transactions = 0
        self.changes = 0
        self._open = False
        conn.autocommit = False
        try:
            conn.execute("SET session_replication_role = replica")
            conn.commit()
        except psycopg.Error:
            conn.rollback()
            logger.warning(
                "replay runs with triggers enabled (this role may not set session_replication_role)"
            )

    # Statements are sent in pipeline mode (no round trip each); every `SYNC_EVERY` statements and
    # at the commit the results are read and each UPDATE/DELETE's row count checked.
    SYNC_EVERY = 2000

    def begin(self) -> None:
        self._open = True
        self._pending: list[tuple[Any, str]] = []
        self._block: Any = self.conn.pipeline()
        self._pipeline: Any = self._block.__enter__()

    def apply(self, msg: pg.Message) -> None:
        if isinstance(msg, pg.Relation):
            self.rels[msg.relid] = msg
            return
        kind = type(msg).__name__.lower()
        for stmt, params, one_row in statements(msg, self.rels):
            try:
                cur = self.conn.execute(stmt, params)
            except psycopg.Error as exc:
                self._fail(f"replay failed on {kind}: {str(exc).strip()[:300]}")
            if one_row:
                self._pending.append((cur, kind))
            self.changes += 1
            if len(self._pending) >= self.SYNC_EVERY:
                self._sync()

    def _sync(self) -> None:
        try:
            self._pipeline.sync()
        except psycopg.Error as exc:
            self._fail(f"replay failed: {str(exc).strip()[:300]}")
        for cur, kind in self._pending:
            if cur.rowcount != 1:
                self._fail(
                    f"replay of a {kind} matched {cur.rowcount} rows (expected 1): the target diverged "
                    "from the change stream"
                )
        self._pending.clear()

    def _fail(self, message: str) -> NoReturn:
        self.abandon()
        raise ReplayError(message)

    def commit(self) -> None:
        self._sync()
        self._block.__exit__(None, None, None)
        self._open = False
        self.conn.commit()
        self.transactions += 1

    def abandon(self) -> None:
        """A transaction whose commit was never seen (or is past the target time): nothing of it stays."""
        if self._open:
            self._open = False
            with contextlib.suppress(psycopg.Error):
                self._block.__exit__(None, None, None)
            self.conn.rollback()


_OWNED_SEQUENCES = """
SELECT s.oid::regclass::text, n.nspname, c.relname, a.attname
  FROM pg_class s
  JOIN pg_depend d ON d.objid = s.oid AND d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass
                  AND d.deptype IN ('a', 'i')
  JOIN pg_class c ON c.oid = d.refobjid
  JOIN pg_namespace n ON n.oid = c.relnamespace
  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = d.refobjsubid
 WHERE s.relkind = 'S'
"""


def fix_sequences(conn: psycopg.Connection[Any]) -> int:
    """setval every serial/identity sequence to max(its column) when that is past it; how many moved."""
    moved = 0
    with conn.transaction():
        for seq, nsp, table, column in conn.execute(_OWNED_SEQUENCES).fetchall():
            row = conn.execute(
                sql.SQL("SELECT max({})::bigint FROM {}.{}").format(
                    sql.Identifier(column), sql.Identifier(nsp), sql.Identifier(table)
                )
            ).fetchone()
            top = row[0] if row else None
            if top is None:
                continue
            last = conn.execute(
                sql.SQL("SELECT last_value, is_called FROM {}").format(sql.SQL(seq))
            ).fetchone()
            if last is not None and (int(last[0]) > top or (int(last[0]) == top and last[1])):
                continue
            conn.execute("SELECT setval(%s::regclass, %s, true)", (seq, top))
            moved += 1
    return moved
