"""One capture run: the slot's changes since the last committed segment → one new segment.

    run_capture("orders")        # `lastgood capture --source orders`, the capture function

Order is what makes it safe: read X = the server's flushed WAL position → peek (never
consume) the slot's pgoutput changes of every transaction committed before X → skip the
transactions an earlier segment already holds (commit LSN < its end: a run that crashed after
committing its segment but before advancing the slot re-reads them) → write the parts →
write `segment.json` LAST (create-once) → only then `pg_replication_slot_advance(slot, X)`.
Any failure before the manifest commits nothing and leaves the slot where it was.

A relation message whose shape differs from what the chain knows (a column added, dropped,
retyped; a new table) is a schema change: the segment ends before that transaction, records
the change, and a new base is taken (the stream carries no DDL, so replay cannot cross it).
Past `pitr_max_lag_bytes` the slot is dropped (so the provider's disk never fills), loudly,
and a new base started.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from lastgood.backups.manifest import BackupManifest
from lastgood.backups.store import BackupStore
from lastgood.core.config import SourceConfig
from lastgood.core.errors import BackupError, BackupNotFound, LastgoodError, SourceUnavailable
from lastgood.core.observability import emit_metrics, logger
from lastgood.core.settings import get_secret
from lastgood.core.timefmt import iso_z
from lastgood.engines.pg_connect import connect
from lastgood.pitr import pgoutput as pg
from lastgood.pitr import segments
from lastgood.pitr import slot as slots
from lastgood.pitr.model import LastTransaction, PitrBase, RelationShape, SchemaChange, SegmentManifest

METRIC_CAPTURE_SUCCESS = "PitrCaptureSuccess"
METRIC_CAPTURE_FAILURE = "PitrCaptureFailure"
METRIC_CHANGES = "PitrChanges"
METRIC_SEGMENT_AGE = "PitrSegmentAgeSeconds"  # age of the newest committed segment (RPO)
METRIC_SLOT_LAG = "PitrSlotLagBytes"
METRIC_SCHEMA_CHANGE = "PitrSchemaChange"
METRIC_SLOT_DROPPED = "PitrSlotDropped"

_PEEK = (
    "SELECT (lsn - '0/0'::pg_lsn)::bigint, data FROM pg_logical_slot_peek_binary_changes("
    "%s, %s::pg_lsn, NULL, 'proto_version', '1', 'publication_names', %s)"
)


@dataclass
class CaptureResult:
    source: str
    base_id: str
    status: str  # committed | nothing-new | schema-change | slot-dropped
    message: str
    segment: SegmentManifest | None = None
    skipped_transactions: int = 0
    new_base_id: str | None = None
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "base_id": self.base_id,
            "status": self.status,
            "message": self.message,
            "segment": self.segment.model_dump(mode="json") if self.segment else None,
            "skipped_transactions": self.skipped_transactions,
            "new_base_id": self.new_base_id,
            "seconds": round(self.seconds, 3),
        }


@dataclass
class _Chain:
    """What the next segment continues: its number, start LSN and known relation shapes."""

    seq: int
    start: int
    relations: dict[str, RelationShape]
    closed: SchemaChange | None = None
    last_created: datetime | None = None


def chain_tip(store: BackupStore, manifest: BackupManifest, base: PitrBase) -> _Chain:
    seqs = segments.list_segments(store, manifest.source, manifest.backup_id)
    if not seqs:
        return _Chain(1, base.start_lsn, dict(base.relations))
    last = segments.read_segment(store, manifest.source, manifest.backup_id, seqs[-1])
    return _Chain(last.seq + 1, last.end, dict(last.relations), last.schema_change, last.created_time)


@dataclass
class _Decoder:
    """Groups peeked messages into transactions, skipping those already committed."""

    chain: _Chain
    writer: segments.PartWriter
    relations: dict[str, RelationShape] = field(default_factory=dict)
    raw_relations: dict[int, tuple[int, bytes]] = field(default_factory=dict)
    written_relations: set[int] = field(default_factory=set)
    skipping: bool = False
    begin: pg.Begin | None = None
    spool: Any = None
    transactions: int = 0
    changes: int = 0
    skipped: int = 0
    wal_bytes: int = 0
    first_time: datetime | None = None
    last: LastTransaction | None = None
    schema_change: SchemaChange | None = None

    def feed(self, lsn: int, data: bytes) -> bool:
        """Handle one message; False once a schema change ends the segment."""
        self.wal_bytes += len(data)
        msg = pg.decode(data)
        if isinstance(msg, pg.Begin):
            self.begin = msg
            self.skipping = msg.final_lsn < self.chain.start
            if self.skipping:
                self.skipped += 1
            else:
                self.spool = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024)  # noqa: SIM115 - closed at its commit
                self.spool.write(segments.frame(lsn, data))
            return True
        if isinstance(msg, pg.Relation):
            self.raw_relations[msg.relid] = (lsn, data)
            known = self.relations.get(str(msg.relid))
            if not self.skipping and (known is None or not known.matches(msg)):
                assert self.begin is not None
                self.schema_change = SchemaChange(
                    relation=msg.qualified,
                    relid=msg.relid,
                    commit_lsn=pg.lsn_str(self.begin.final_lsn),
                    commit_time=iso_z(self.begin.commit_time),
                    before=known,
                    after=RelationShape.of(msg),
                )
                return False
            return True
        if self.skipping:
            return True
        if isinstance(msg, pg.Insert | pg.Update | pg.Delete | pg.Truncate):
            relids = msg.relids if isinstance(msg, pg.Truncate) else (msg.relid,)
            for relid in relids:
                if relid not in self.written_relations and relid in self.raw_relations:
                    self.spool.write(segments.frame(*self.raw_relations[relid]))
                    self.written_relations.add(relid)
            self.changes += 1
        self.spool.write(segments.frame(lsn, data))
        if isinstance(msg, pg.Commit):
            assert self.begin is not None
            self.spool.seek(0)
            while chunk := self.spool.read(1024 * 1024):
                self.writer.write(chunk)
            self.spool.close()
            self.spool = None
            self.transactions += 1
            self.first_time = self.first_time or msg.commit_time
            self.last = LastTransaction(
                xid=self.begin.xid,
                commit_lsn=pg.lsn_str(msg.commit_lsn),
                end_lsn=pg.lsn_str(msg.end_lsn),
                commit_time=iso_z(msg.commit_time),
            )
        return True


def capture_base(
    store: BackupStore, source: SourceConfig, manifest: BackupManifest, base: PitrBase, url: str
) -> CaptureResult:
    """Capture the changes of one base's slot into its next segment (see the module docstring)."""
    started = time.perf_counter()
    chain = chain_tip(store, manifest, base)
    if chain.closed is not None:
        raise BackupError(
            f"the change chain of base {manifest.backup_id} ended at a schema change of {chain.closed.relation}: "
            f"take a new base (lastgood backup --source {source.name})"
        )
    with connect(url, timeout_s=10) as conn:
        conn.autocommit = True
        status = slots.require_slot(conn, base.slot, source.name)
        upto = int(conn.execute("SELECT (pg_current_wal_flush_lsn() - '0/0'::pg_lsn)::bigint").fetchone()[0])  # type: ignore[index]
        writer = segments.PartWriter(
            store,
            source.name,
            manifest.backup_id,
            chain.seq,
            source.pitr_part_bytes,
            source.client_side_encryption,
        )
        decoder = _Decoder(chain, writer, relations=dict(chain.relations))
        conn.autocommit = False
        with conn.transaction(), conn.cursor(name="lastgood_pitr_peek") as cur:
            cur.itersize = 2000
            cur.execute(_PEEK, (base.slot, pg.lsn_str(upto), base.publication))
            for lsn, data in cur:
                if not decoder.feed(int(lsn), bytes(data)):
                    break
        conn.autocommit = True
        end = upto
        if decoder.schema_change is not None:
            end = pg.parse_lsn(decoder.schema_change.commit_lsn)
        if decoder.transactions == 0 and decoder.schema_change is None:
            if upto > chain.start:
                _advance(conn, base.slot, upto)
            return CaptureResult(
                source.name, manifest.backup_id, "nothing-new",
                f"{source.name}: no new changes (skipped {decoder.skipped} already committed)",
                skipped_transactions=decoder.skipped, seconds=time.perf_counter() - started,
            )  # fmt: skip
        parts = writer.close()
        segment = SegmentManifest(
            source=source.name,
            base_id=manifest.backup_id,
            seq=chain.seq,
            slot=base.slot,
            start_lsn=pg.lsn_str(chain.start),
            end_lsn=pg.lsn_str(end),
            first_commit_time=iso_z(decoder.first_time) if decoder.first_time else None,
            last_commit_time=decoder.last.commit_time if decoder.last else None,
            last=decoder.last,
            transactions=decoder.transactions,
            changes=decoder.changes,
            wal_bytes=decoder.wal_bytes,
            parts=parts,
            relations=decoder.relations,
            schema_change=decoder.schema_change,
            client_side=source.client_side_encryption,
            created_at=iso_z(datetime.now(UTC)),
        )
        segments.commit_segment(store, segment)  # the commit marker, LAST
        advance_slot(conn, base.slot, end)
        lag = slots.slot_status(conn, base.slot).lag_bytes
    kind = "schema-change" if segment.schema_change else "committed"
    message = (
        f"{source.name}: segment {segment.seq} of base {manifest.backup_id}: {segment.transactions} transaction(s), "
        f"{segment.changes} change(s), LSN {segment.start_lsn}..{segment.end_lsn}"
    )
    logger.info(
        "PITR segment committed", extra={"source": source.name, "seq": segment.seq, "lag": status.lag_bytes}
    )
    emit_metrics(
        {
            METRIC_CAPTURE_SUCCESS: ("Count", 1),
            METRIC_CHANGES: ("Count", segment.changes),
            METRIC_SEGMENT_AGE: ("Seconds", 0),
            METRIC_SLOT_LAG: ("Bytes", lag or 0),
        },
        source=source.name,
    )
    return CaptureResult(
        source.name,
        manifest.backup_id,
        kind,
        message,
        segment,
        decoder.skipped,
        seconds=time.perf_counter() - started,
    )


def advance_slot(conn: Any, slot: str, lsn: int) -> None:
    """`pg_replication_slot_advance` — only ever after the segment holding those changes is committed."""
    _advance(conn, slot, lsn)


def _advance(conn: Any, slot: str, lsn: int) -> None:
    conn.execute("SELECT pg_replication_slot_advance(%s, %s::pg_lsn)", (slot, pg.lsn_str(lsn)))


def run_capture(source_name: str, *, store: BackupStore | None = None) -> CaptureResult:
    """Capture the active (newest) base's slot of a PITR source; handles the hard lag limit and
    schema changes (a new base). Raises a LastgoodError on failure (nothing committed)."""
    from lastgood.pitr.base import pitr_bases, pitr_source, take_base

    source = pitr_source(source_name)
    store = store or BackupStore.from_settings()
    try:
        url = str(get_secret(source.url_secret))
        bases = pitr_bases(store, source.name)
        if not bases:
            raise BackupNotFound(
                f"PITR source {source.name!r} has no base backup yet: take one with lastgood backup --source {source.name}"
            )
        manifest, base = bases[0]
        dropped = _enforce_lag_limit(source, base, url)
        if dropped is not None:
            new = take_base(source.name, on_demand=True, store=store, retire_previous=False)
            return CaptureResult(
                source.name, manifest.backup_id, "slot-dropped", dropped, new_base_id=new.backup_id
            )
        result = capture_base(store, source, manifest, base, url)
    except Exception as exc:
        emit_metrics({METRIC_CAPTURE_FAILURE: ("Count", 1)}, source=source.name)
        logger.error(
            "PITR capture failed; the slot was not advanced",
            extra={"source": source.name, "error": str(exc)[:500]},
        )
        if isinstance(exc, LastgoodError | BotoCoreError | ClientError):  # S3 down: exit 4 (the CLI's table)
            raise
        raise BackupError(
            f"capture of {source.name!r} failed; nothing was committed and the slot was not advanced: "
            f"{type(exc).__name__}: {str(exc)[:300]}"
        ) from None
    if result.segment is not None and result.segment.schema_change is not None:
        change = result.segment.schema_change
        logger.error(
            "PITR schema change: the change chain ends here; taking a new base",
            extra={"source": source.name, "relation": change.relation, "lsn": change.commit_lsn},
        )
        emit_metrics({METRIC_SCHEMA_CHANGE: ("Count", 1)}, source=source.name)
        new = take_base(source.name, on_demand=True, store=store, retire_previous=False)
        slots.drop_slot(url, base.slot)
        result.new_base_id = new.backup_id
        result.message += f"; schema change of {change.relation}: new base {new.backup_id}"
    return result


def _enforce_lag_limit(source: SourceConfig, base: PitrBase, url: str) -> str | None:
    try:
        with connect(url, timeout_s=10, autocommit=True) as conn:
            status = slots.slot_status(conn, base.slot)
    except Exception as exc:
        raise SourceUnavailable(f"PostgreSQL of {source.name!r} unreachable: {type(exc).__name__}") from None
    if status.lag_bytes is None or status.lag_bytes <= source.pitr_max_lag_bytes:
        return None
    slots.drop_slot(url, base.slot)
    message = (
        f"{source.name}: replication slot {base.slot} held {status.lag_bytes} bytes of WAL, past "
        f"pitr_max_lag_bytes ({source.pitr_max_lag_bytes}): DROPPED so the database's disk cannot fill; "
        "changes since the last segment are not recoverable to a point in time; a new base is being taken"
    )
    logger.error("PITR slot dropped at the hard lag limit", extra={"source": source.name, "slot": base.slot})
    emit_metrics({METRIC_SLOT_DROPPED: ("Count", 1)}, source=source.name)
    return message
