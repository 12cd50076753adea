"""PostgreSQL engine: connection policy, probe, dump (`pg_dump -Fc`), restore (`pg_restore`).

Connections and the TLS rule (non-loopback hosts need `sslmode=require`/verify-* unless
ALLOW_INSECURE_TRANSPORT is set): `lastgood.engines.pg_connect`.

Dump: one object `<database>.dump` in pg_dump's custom format — a file the
stock `pg_restore` reads as is. pg_dump's stdout is streamed straight into the
backup writer (never the whole dump in memory or /tmp); with two or more usable cores
pg_dump writes it uncompressed and `lastgood.engines.pg_compress` compresses it on all of
them into the same format. The dump and the
per-table row counts share one snapshot: a REPEATABLE READ transaction exports
it (`pg_export_snapshot()`), pg_dump runs with `--snapshot`, and the exact
`count(*)` of every dumped table runs on the exporting connection while pg_dump
streams — so the recorded counts are exactly the rows inside the dump even
while the application keeps writing.

The password is never in argv or logs (`PGPASSWORD`; stderr bounded and redacted).

Options (`EngineOptions`): `include` / `exclude` (a dot = table pattern `-t`/`-T`, else schema
`-n`/`-N`) and the allow-listed `pg_dump_args` — `lastgood.engines.pg_selection`; binaries
and their pipes — `lastgood.engines.pg_tools`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
from psycopg import sql

from lastgood.core.errors import RestoreError, SourceUnavailable
from lastgood.core.observability import logger
from lastgood.core.redact import redact_text
from lastgood.engines.base import (
    DumpResult,
    DumpTarget,
    EngineOptions,
    ObjectSource,
    ProbeResult,
    ProgressFn,
    RestoreResult,
    ServerIdentity,
    SizeEstimate,
    Stopwatch,
    endpoint_names,
)
from lastgood.engines.pg_archive import WithEntry
from lastgood.engines.pg_compress import UNRECOGNISED, ParallelCompressor, compress_threads
from lastgood.engines.pg_connect import connect, database_name, libpq_args
from lastgood.engines.pg_counts import (
    IN_TRANSACTION_DESC,
    IN_TRANSACTION_TAG,
    USER_TABLES,
    CountWorker,
    TransactionCounts,
    count_tables,
)
from lastgood.engines.pg_selection import Selection
from lastgood.engines.pg_tools import Readable, pg_bin_dir, stream_pg_dump, stream_pg_restore, tool_version

CONTENT_TYPE = "application/vnd.postgresql.custom-dump"
_SYSTEM_SCHEMAS = ("pg_catalog", "information_schema")


# --------------------------------------------------------------------------- connection plumbing


def _listener(url: str) -> psycopg.Connection[Any] | None:
    """An autocommit connection to LISTEN on for the in-transaction counts; None if none."""
    try:
        return connect(url, timeout_s=10, autocommit=True)
    except psycopg.Error:
        return None


# --------------------------------------------------------------------------- queries

_USER_RELATIONS = """
SELECT count(*)
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
   AND n.nspname NOT IN ('pg_catalog', 'information_schema')
   AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'
   AND NOT EXISTS (SELECT 1 FROM pg_depend d
                    WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
"""


def _source_error(exc: Exception, url: str, what: str) -> SourceUnavailable:
    return SourceUnavailable(
        f"PostgreSQL {what}: {type(exc).__name__}: {redact_text(str(exc), (url,))}"[:500]
    )


# --------------------------------------------------------------------------- the engine


class PostgresEngine:
    """The Engine protocol for PostgreSQL (see the module docstring)."""

    name = "postgres"
    # the restore checks each object while pg_restore applies it in one transaction, and a
    # mismatch rolls it back: the restore need not download and re-hash every object first
    verifies_while_restoring = True

    def probe(self, url: str, *, timeout_s: float, token: str | None = None) -> ProbeResult:
        watch = Stopwatch()
        try:
            with connect(url, timeout_s=timeout_s) as conn:
                conn.execute(
                    "SELECT set_config('statement_timeout', %s, false)", (str(int(timeout_s * 1000)),)
                )
                row = conn.execute("SELECT current_setting('server_version')").fetchone()
            return ProbeResult("postgres", True, watch.ms, detail={"server_version": row[0] if row else None})
        except psycopg.Error as exc:
            return ProbeResult(
                "postgres", False, watch.ms, f"{type(exc).__name__}: {redact_text(str(exc), (url,))}"[:300]
            )

    # ----------------------------------------------------------------- dump

    def dump(
        self, url: str, target: DumpTarget, *, options: EngineOptions, token: str | None = None
    ) -> DumpResult:
        selection = Selection.from_options(options)
        dbname, env = libpq_args(url)
        binary = pg_bin_dir() / "pg_dump"
        secrets = (url, env.get("PGPASSWORD", ""))
        try:
            conn = connect(url, timeout_s=10)
        except psycopg.Error as exc:
            raise _source_error(exc, url, "connection failed") from None
        with conn:
            try:
                conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
                conn.read_only = True
                server_version = str(conn.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]
                if options.snapshot:  # a replication slot's exported snapshot (PITR base)
                    conn.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(options.snapshot)))
                    snapshot = options.snapshot
                else:
                    snapshot = str(conn.execute("SELECT pg_export_snapshot()").fetchone()[0])  # type: ignore[index]
                all_tables = [(str(s), str(t)) for s, t in conn.execute(USER_TABLES).fetchall()]
            except psycopg.Error as exc:
                raise _source_error(exc, url, "snapshot failed") from None
            threads = compress_threads(selection.pg_dump_switches(), tool_version("pg_dump"))
            dumped = [(s, t) for s, t in all_tables if selection.dumps_table(s, t)]
            counted = [(s, t) for s, t in dumped if selection.dumps_rows(s, t)]
            args = [
                str(binary),
                "--format=custom",
                "--no-password",
                f"--snapshot={snapshot}",
                # a PITR base: the publication lastgood created for its slot stays on the source
                *(["--no-publications"] if options.snapshot else []),
                *selection.pg_dump_switches(),
                *(["--compress=0"] if threads else []),  # compressed here, on `threads` cores
                f"--dbname={dbname}",
            ]
            relpath = f"{database_name(url)}.dump"
            extra = {"object": relpath, "tables": len(dumped), "switches": selection.pg_dump_switches()}
            logger.info("pg_dump starting", extra=extra | {"compress_threads": threads})
            counter = CountWorker(conn, counted)
            try:
                with target.open_object(relpath, content_type=CONTENT_TYPE) as writer:
                    if threads:
                        with ParallelCompressor(writer.write, threads=threads) as compressor:
                            stream_pg_dump(args, env, compressor, secrets)
                            compressor.close()
                        if not compressor.compressed:
                            logger.warning(f"{relpath} stored uncompressed: {UNRECOGNISED}")
                    else:
                        stream_pg_dump(args, env, writer, secrets)
                    counter.thread.join()
                    if counter.error is not None:
                        raise _source_error(
                            counter.error if isinstance(counter.error, Exception) else RuntimeError("counts"),
                            url,
                            "row counts failed",
                        )
                    counts = {f"{s}.{t}": 0 for s, t in dumped} | counter.counts
                    writer.count = sum(counts.values())
                    recorded = getattr(writer, "counts", None)
                    if isinstance(recorded, dict):
                        recorded.update(counts)
            finally:
                counter.stop()
        return DumpResult(
            server_version=server_version,
            tool_versions={"pg_dump": tool_version("pg_dump")},
            extra={"counts": counts, "database": database_name(url), "tables": len(dumped)},
        )

    # ----------------------------------------------------------------- restore

    def restore(
        self,
        url: str,
        source: ObjectSource,
        *,
        only: list[str] | None = None,
        force: bool = False,
        token: str | None = None,
        progress: ProgressFn | None = None,
    ) -> RestoreResult:
        """`pg_restore` each dump object into `url` through stdin, in one transaction.

        From a source that can stream (`stream_object`: the backup reader's held-tail stream),
        the object goes to pg_restore as it downloads, hashed on the way; its last bytes are
        released only once the whole object matched the manifest. pg_restore cannot finish a
        custom-format archive without them (the end marker of its last data block), and it
        runs `--single-transaction`: a mismatch kills it before it commits, so nothing of a
        damaged object is ever applied. Other sources hand over an object only once it is
        proven whole (spooled and re-hashed first).

        Refuses a non-empty target unless `force` (then `--clean --if-exists`, inside the same
        transaction: a failed restore leaves the target as it was). The result's counts are
        the target's exact counts (`exact`), taken inside pg_restore's transaction before it
        commits (a TOC entry appended to the last object, `lastgood.engines.pg_archive`, reporting
        with NOTIFY: `pg_counts.TransactionCounts`), else after the commit.
        """
        if not force and not self.is_empty(url):
            raise RestoreError(
                f"target database {database_name(url)!r} is not empty; restore refuses to overwrite it without force"
            )
        dbname, env = libpq_args(url)
        secrets = (url, env.get("PGPASSWORD", ""))
        args = [
            str(pg_bin_dir() / "pg_restore"),
            "--no-owner",
            "--no-privileges",
            "--exit-on-error",
            "--single-transaction",
            "--no-password",
            f"--dbname={dbname}",
        ]
        if force:
            args += ["--clean", "--if-exists"]
        objects = [p for p in source.list_objects() if p.endswith(".dump") and (only is None or p in only)]
        if not objects:
            raise RestoreError("the backup has no PostgreSQL dump object to restore")
        opener = getattr(source, "stream_object", None) or source.open_object
        tally = TransactionCounts(_listener(url))
        appended = False
        try:
            for i, relpath in enumerate(objects):
                if progress:
                    progress(f"pg_restore {relpath}")
                with opener(relpath) as stream:
                    feed: Readable = stream
                    if tally.active and i == len(objects) - 1:  # the last restore sees every table
                        feed = WithEntry(
                            stream, tag=IN_TRANSACTION_TAG, desc=IN_TRANSACTION_DESC, defn=tally.statement()
                        )
                    stream_pg_restore(args, env, feed, secrets, relpath)
                    appended = isinstance(feed, WithEntry) and feed.appended
            counts = tally.collect() if appended else None
        finally:
            tally.close()
        if counts is None:  # the archive or the target did not allow it: count after the commit
            logger.info("counting the restored rows after the commit")
            counts = self.counts(url)
        return RestoreResult(counts=counts, exact=True)

    # ----------------------------------------------------------------- inspection

    def is_empty(self, url: str, *, token: str | None = None) -> bool:
        """No user relations (tables, views, sequences…) outside the system schemas."""
        try:
            with connect(url, timeout_s=10) as conn:
                row = conn.execute(_USER_RELATIONS).fetchone()
        except psycopg.Error as exc:
            raise _source_error(exc, url, "inspection failed") from None
        return not row or int(row[0]) == 0

    def counts(self, url: str, *, token: str | None = None) -> dict[str, int]:
        """Exact rows per `schema.table` (one REPEATABLE READ snapshot), like the manifest's `counts`."""
        try:
            with connect(url, timeout_s=10) as conn:
                conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
                conn.read_only = True
                tables = [(str(s), str(t)) for s, t in conn.execute(USER_TABLES).fetchall()]
                return count_tables(conn, tables)
        except psycopg.Error as exc:
            raise _source_error(exc, url, "count failed") from None

    def wipe(self, url: str, *, token: str | None = None) -> None:
        """Drop every user schema (and recreate an empty `public`) in one transaction.

        Used for scratch drill targets and for a migration rollback, where objects
        the failed migration created must go too, not only those in the dump.
        """
        try:
            with connect(url, timeout_s=10) as conn, conn.transaction():
                schemas = [
                    str(r[0])
                    for r in conn.execute(
                        "SELECT nspname FROM pg_namespace WHERE nspname NOT IN ('pg_catalog', 'information_schema')"
                        " AND nspname NOT LIKE 'pg\\_%'"
                    ).fetchall()
                ]
                for schema in schemas:
                    conn.execute(
                        psycopg.sql.SQL("DROP SCHEMA {} CASCADE").format(psycopg.sql.Identifier(schema))
                    )
                conn.execute("CREATE SCHEMA public AUTHORIZATION pg_database_owner")
                conn.execute("GRANT USAGE ON SCHEMA public TO PUBLIC")
        except psycopg.Error as exc:
            raise _source_error(exc, url, "wipe failed") from None

    def identity(self, url: str, token: str | None = None) -> ServerIdentity:
        """`pg_control_system().system_identifier` (fixed at initdb, the same whatever the URL calls
        the host) + `current_database()`; where that function is not granted, the resolved host:port."""
        try:
            with connect(url, timeout_s=5) as conn:
                database = str(conn.execute("SELECT current_database()").fetchone()[0])  # type: ignore[index]
                try:
                    row = conn.execute("SELECT system_identifier FROM pg_control_system()").fetchone()
                except psycopg.Error:
                    conn.rollback()
                    row = None
                if row and row[0] is not None:
                    return ServerIdentity(
                        engine="postgres",
                        server_id=f"pg-system:{row[0]}",
                        database=database,
                        method="system_identifier from pg_control_system()",
                    )
                names = endpoint_names(conn.info.host, conn.info.port, resolve=True)
        except psycopg.Error as exc:
            raise _source_error(exc, url, "identity failed") from None
        return ServerIdentity(
            engine="postgres",
            server_id="hosts:" + ",".join(names),
            database=database,
            method="resolved host:port (pg_control_system() is not granted to this role)",
            aliases=tuple(f"addr:{n}" for n in names),
        )

    def estimate_size(
        self, url: str, *, token: str | None = None, database: str | None = None
    ) -> SizeEstimate:
        from lastgood.engines.sizes import postgres_size  # pg_database_size (lastgood.engines.sizes)

        return postgres_size(url)


def iter_tables(url: str) -> Iterator[tuple[str, str]]:
    with connect(url, timeout_s=10) as conn:
        yield from ((str(s), str(t)) for s, t in conn.execute(USER_TABLES).fetchall())


ENGINE = PostgresEngine()
