"""PITR lag of a source: the slot's retained WAL (bytes) and the newest committed segment's age.

Health and the summary report it; `lastgood pitr status` prints it. A slot holding more than
`pitr_lag_alarm_bytes`, a missing slot, or a newest segment older than twice the capture
interval (plus one minute) is a reason (the RPO is slipping); the hard limit is enforced by capture.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from lastgood.backups.store import BackupStore
from lastgood.core.settings import get_secret
from lastgood.core.timefmt import iso_z, parse_time
from lastgood.engines.pg_connect import connect
from lastgood.pitr import slot as slots
from lastgood.pitr.base import pitr_bases, pitr_source
from lastgood.pitr.segments import list_segments, read_segment


@dataclass
class PitrStatus:
    source: str
    base_id: str | None
    slot: str | None
    lag_bytes: int | None
    newest_segment_at: str | None
    segment_age_s: float | None
    reasons: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.reasons

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "ok": self.ok}

    def line(self) -> str:
        age = f"{self.segment_age_s:.0f}s" if self.segment_age_s is not None else "none yet"
        head = (
            f"{self.source}: base {self.base_id or '(none)'}, slot {self.slot or '(none)'}, lag "
            f"{self.lag_bytes if self.lag_bytes is not None else '?'} bytes, newest segment {age}"
        )
        return head + ("" if self.ok else " — " + "; ".join(self.reasons))


def pitr_status(
    source_name: str, *, store: BackupStore | None = None, now: datetime | None = None
) -> PitrStatus:
    source = pitr_source(source_name)
    store = store or BackupStore.from_settings()
    moment = now or datetime.now(UTC)
    bases = pitr_bases(store, source.name)
    if not bases:
        return PitrStatus(source.name, None, None, None, None, None, ["no PITR base backup yet"])
    manifest, base = bases[0]
    seqs = list_segments(store, source.name, manifest.backup_id)
    newest = read_segment(store, source.name, manifest.backup_id, seqs[-1]).created_at if seqs else None
    since = parse_time(newest) if newest else base.consistent_time
    age = (moment - since).total_seconds()
    status = PitrStatus(source.name, manifest.backup_id, base.slot, None, newest, age if newest else None)
    limit = 2 * source.capture_interval_seconds + 60
    if age > limit:
        status.reasons.append(f"newest change captured {age:.0f}s ago (since {iso_z(since)}), past {limit}s")
    with connect(str(get_secret(source.url_secret)), timeout_s=5, autocommit=True) as conn:
        slot = slots.slot_status(conn, base.slot)
    if not slot.exists:
        status.reasons.append(f"replication slot {base.slot} is missing: a new base is needed")
    else:
        status.lag_bytes = slot.lag_bytes
        if slot.lag_bytes is not None and slot.lag_bytes > source.pitr_lag_alarm_bytes:
            status.reasons.append(
                f"slot {base.slot} holds {slot.lag_bytes} bytes of WAL, past pitr_lag_alarm_bytes "
                f"({source.pitr_lag_alarm_bytes})"
            )
    return status


def newest_segment_time(store: BackupStore, committed: list[Any]) -> datetime | None:
    """When the newest change segment of the newest PITR base (catalog listings, newest first) that
    has one was committed; None without any."""
    from lastgood.pitr.model import PitrBase

    for item in committed:
        if item.manifest is None or PitrBase.of(item.manifest) is None:
            continue
        seqs = list_segments(store, item.source, item.backup_id)
        if seqs:
            return read_segment(store, item.source, item.backup_id, seqs[-1]).created_time
    return None
