"""Restore a PITR source to a time (or LSN): the newest base before it + replay of its chain.

    restore_to("orders", target_url=…, to_time=datetime(…))      # `lastgood restore --to-time`

Refused before the target is touched (exit 2): a time in the future, a time before the oldest
base's consistent point, no base at all. The chain of the chosen base is checked first — every
segment's manifest readable, sequence numbers contiguous, each segment starting at the LSN the
previous one ended (the first at the base's consistent point), every part's SHA-256 — and is cut
before the first segment that fails (a gap is never bridged: later changes are not applied).
A target time past a schema change the chain ended at (with no newer base before the time) is
refused: the stream carries no DDL. Then the base is restored by the ordinary restore
(`lastgood.backups.restore.restore_backup`: production-target refusal, safety backup, counts),
the chain replayed in commit order up to the last transaction committed at or before the time,
sequences fixed, and the exact last transaction applied reported. A cut chain ends with
exit 6 (integrity) after the restore, saying where it stopped.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from lastgood.backups.restore import ProgressFn, RestoreReport, restore_backup
from lastgood.backups.store import BackupStore
from lastgood.core.errors import BackupIntegrityError, BackupNotFound, UsageError
from lastgood.core.observability import logger
from lastgood.core.timefmt import iso_z, parse_time
from lastgood.engines.pg_connect import connect
from lastgood.pitr import pgoutput as pg
from lastgood.pitr import segments
from lastgood.pitr.base import pitr_bases
from lastgood.pitr.model import PitrBase, SegmentManifest
from lastgood.pitr.replay import Applied, Replayer, fix_sequences

CLOCK_SKEW = timedelta(seconds=1)


@dataclass
class Chain:
    segments: list[SegmentManifest] = field(default_factory=list)
    cut: str | None = None  # why the chain stops before its stored end

    @property
    def closed_by(self) -> str | None:
        last = self.segments[-1] if self.segments else None
        return last.schema_change.commit_time if last and last.schema_change else None


def load_chain(
    store: BackupStore, source: str, base_id: str, base: PitrBase, *, verify_parts: bool = True
) -> Chain:
    chain = Chain()
    expected_start = base.start_lsn
    for index, seq in enumerate(segments.list_segments(store, source, base_id), start=1):
        if seq != index:
            chain.cut = f"segment {index} is missing (the next stored one is {seq}): a gap in the change log"
            break
        try:
            segment = segments.read_segment(store, source, base_id, seq)
            if segment.start != expected_start:
                raise BackupIntegrityError(
                    f"segment {seq} starts at {segment.start_lsn}, the chain is at {pg.lsn_str(expected_start)}"
                )
            if verify_parts:
                for part in segment.parts:
                    segments.check_part(store, segment, part)
        except BackupIntegrityError as exc:
            chain.cut = f"segment {seq} is damaged ({exc})"
            break
        chain.segments.append(segment)
        expected_start = segment.end
        if segment.schema_change is not None:
            break
    return chain


@dataclass
class PitrRestoreReport:
    source: str
    base_id: str
    target_time: str | None
    target_lsn: str | None
    base: RestoreReport
    last: Applied | None
    transactions: int
    changes: int
    segments: int
    sequences_fixed: int
    replay_seconds: float
    stopped: str | None  # the chain was cut before the target: changes after `last` are NOT applied

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "base_id": self.base_id,
            "to_time": self.target_time,
            "to_lsn": self.target_lsn,
            "base_restore": self.base.as_dict(),
            "last_transaction": self.last.as_dict() if self.last else None,
            "transactions": self.transactions,
            "changes": self.changes,
            "segments": self.segments,
            "sequences_fixed": self.sequences_fixed,
            "replay_seconds": round(self.replay_seconds, 3),
            "stopped": self.stopped,
        }


def parse_target_time(text: str, now: datetime | None = None) -> datetime:
    moment = now or datetime.now(UTC)
    if text.strip().lower() in ("latest", "now"):
        return moment
    try:
        value = parse_time(text)
    except ValueError:
        raise UsageError(
            f"--to-time {text!r} is not a time (expected e.g. 2026-12-01T14:01:00Z, or latest)"
        ) from None
    if value > moment + CLOCK_SKEW:
        raise UsageError(
            f"--to-time {iso_z(value)} is in the future (now is {iso_z(moment)}): nothing to restore to yet"
        )
    return value


def choose_base(
    store: BackupStore, source: str, *, to_time: datetime | None, to_lsn: int | None
) -> tuple[Any, PitrBase]:
    bases = pitr_bases(store, source)
    if not bases:
        raise BackupNotFound(
            f"source {source!r} has no PITR base backup: point-in-time restore is not possible"
        )
    for manifest, info in bases:  # newest first
        if (to_time is not None and info.consistent_time <= to_time) or (
            to_lsn is not None and info.start_lsn <= to_lsn
        ):
            return manifest, info
    oldest = bases[-1][1]
    asked = iso_z(to_time) if to_time is not None else pg.lsn_str(to_lsn or 0)
    raise UsageError(
        f"{asked} is before the oldest PITR base of {source!r} (consistent at {oldest.consistent_at}, "
        f"LSN {oldest.consistent_lsn}): the earliest restorable point"
    )


def restore_to(
    source: str,
    *,
    target_url: str,
    to_time: datetime | None = None,
    to_lsn: int | None = None,
    store: BackupStore | None = None,
    force: bool = False,
    yes: bool = False,
    safety_backup: bool = True,
    progress: ProgressFn | None = None,
) -> PitrRestoreReport:
    if (to_time is None) == (to_lsn is None):
        raise UsageError("give exactly one of --to-time or --to-lsn")
    say = progress or (lambda _: None)
    store = store or BackupStore.from_settings()
    manifest, base = choose_base(store, source, to_time=to_time, to_lsn=to_lsn)
    say(f"base {manifest.backup_id} (consistent at {base.consistent_at}); checking its change chain")
    chain = load_chain(store, source, manifest.backup_id, base)
    closed = chain.closed_by
    if closed is not None and to_time is not None and parse_time(closed) <= to_time:
        raise UsageError(
            f"{iso_z(to_time)} is after a schema change at {closed} that the change log cannot replay (no DDL in "
            f"logical decoding) and before the next base; the latest restorable point of base {manifest.backup_id} "
            f"is {chain.segments[-1].last_commit_time or base.consistent_at}"
        )
    report = restore_backup(
        manifest.backup_id, source=source, target_url=target_url, force=force, store=store,
        progress=progress, yes=yes, safety_backup=safety_backup,
    )  # fmt: skip
    started = time.perf_counter()
    with connect(target_url, timeout_s=10) as conn:
        replayer = Replayer(conn)
        last, stopped = _replay(store, chain, replayer, to_time, to_lsn, say)
        conn.autocommit = True
        fixed = fix_sequences(conn)
    result = PitrRestoreReport(
        source, manifest.backup_id, iso_z(to_time) if to_time else None, pg.lsn_str(to_lsn) if to_lsn is not None else None,
        report, last, replayer.transactions, replayer.changes, len(chain.segments), fixed,
        time.perf_counter() - started, stopped or chain.cut,
    )  # fmt: skip
    logger.info("PITR restore finished", extra=result.as_dict())
    return result


def _replay(
    store: BackupStore,
    chain: Chain,
    replayer: Replayer,
    to_time: datetime | None,
    to_lsn: int | None,
    say: ProgressFn,
) -> tuple[Applied | None, str | None]:
    last: Applied | None = None
    for segment in chain.segments:
        say(f"replaying segment {segment.seq} ({segment.transactions} transaction(s))")
        begin: pg.Begin | None = None
        applying = False
        frames = segments.FrameReader(f"segment {segment.seq}")
        for part in segment.parts:
            try:
                plain = segments.read_part(store, segment, part)
            except BackupIntegrityError as exc:  # changed since the check: stop before it
                replayer.abandon()
                return last, f"segment {segment.seq} is damaged ({exc})"
            for _, data in frames.feed(plain):
                msg = pg.decode(data)
                if isinstance(msg, pg.Begin):
                    begin = msg
                    if (to_time is not None and msg.commit_time > to_time) or (
                        to_lsn is not None and msg.final_lsn > to_lsn
                    ):
                        replayer.abandon()
                        return last, None
                    applying = True
                    replayer.begin()
                elif isinstance(msg, pg.Commit):
                    if applying and begin is not None:
                        replayer.commit()
                        last = Applied(
                            begin.xid,
                            pg.lsn_str(msg.commit_lsn),
                            pg.lsn_str(msg.end_lsn),
                            iso_z(msg.commit_time),
                        )
                    applying = False
                elif isinstance(msg, pg.Relation) or applying:
                    replayer.apply(msg)
        replayer.abandon()  # a segment ends at a commit: anything open here has no commit
        try:
            frames.finish()
        except BackupIntegrityError as exc:
            return last, str(exc)
    return last, None


@dataclass
class PitrDrill:
    report: PitrRestoreReport
    recovery_time_s: float
    rto_s: int

    @property
    def passed(self) -> bool:
        return self.report.stopped is None and self.report.base.ok and self.recovery_time_s <= self.rto_s

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.report.as_dict(),
            "passed": self.passed,
            "recovery_time_seconds": round(self.recovery_time_s, 3),
            "rto_seconds": self.rto_s,
        }


def drill_to(
    source: str, *, to_time: datetime, store: BackupStore | None = None, progress: ProgressFn | None = None
) -> PitrDrill:
    """A PITR restore drill into the source's scratch target (refused when it is production; wiped
    before and after), timed against the RTO."""
    from lastgood.backups.targets import guard_scratch
    from lastgood.backups.verify import scratch_target
    from lastgood.core.config import get_config
    from lastgood.engines import get_engine

    store = store or BackupStore.from_settings()
    scratch, token = scratch_target(source)
    manifest, _ = choose_base(store, source, to_time=to_time, to_lsn=None)
    guard_scratch(manifest, scratch, token)
    engine = get_engine("postgres")
    engine.wipe(scratch)
    started = time.perf_counter()
    try:
        report = restore_to(
            source, target_url=scratch, to_time=to_time, store=store, safety_backup=False, progress=progress
        )
        seconds = time.perf_counter() - started
    finally:
        engine.wipe(scratch)
    return PitrDrill(report, seconds, get_config().source(source).rto_seconds)
