"""`verification.json`: the one model of what verify (integrity check + restore drill) records.

Written next to a backup by `backups.verify` (`VerificationRecord.to_json`), read by the
catalog (`lastgood list`), the daily summary, freshness/health and retention ("the newest
verified backup is kept") through `VerificationRecord.from_json` — never by digging in a
dict, so a renamed field is a type error rather than a summary that silently stops
reporting drills.

An integrity-only verify has `drill = None`; only a record with a drill section is a
restore drill (it carries the measured recovery time and whether it met the RTO).

A PITR base's record may also carry `pitr` (`PitrDrillRecord`): the weekly point-in-time drill
(`lastgood.pitr.drill`) restored that base and replayed its change log to the newest committed
change. It does not change `passed` (the snapshot verification of the base): the PITR drill
has its own `ok`, alarm metric and summary line.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_serializer

from lastgood.core.timefmt import iso_z

FORMAT: Literal[1] = 1


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class RestoredCount(_Model):
    expected: int | None = None
    restored: int | None = None


class IntegrityRecord(_Model):
    """Every object re-hashed against the manifest; the bad ones named with the reason."""

    ok: bool
    objects: int = 0
    bytes: int = 0
    bad_objects: dict[str, str] = Field(default_factory=dict)


class DrillRecord(_Model):
    """A restore into a scratch target: counts compared, recovery time measured against the RTO."""

    ok: bool
    error: str | None = None
    target: str | None = None  # redacted
    verify_seconds: float | None = None
    restore_seconds: float | None = None
    recovery_time_seconds: float | None = None
    counts: dict[str, RestoredCount] = Field(default_factory=dict)
    rto_seconds: int | None = None
    within_rto: bool | None = None


class PitrDrillRecord(_Model):
    """A point-in-time drill of this base: base restored + change log replayed into the scratch
    target up to `to_time` (the newest committed change), timed against the RTO."""

    ok: bool
    checked_at: datetime
    to_time: str | None = None
    error: str | None = None  # why it could not run, or where the change log was cut (`stopped`)
    stopped: str | None = None
    last_commit_time: str | None = None  # the last transaction applied
    last_commit_lsn: str | None = None
    transactions: int = 0
    changes: int = 0
    segments: int = 0
    recovery_time_seconds: float | None = None
    rto_seconds: int | None = None
    within_rto: bool | None = None

    @field_serializer("checked_at")
    def _ser_time(self, value: datetime) -> str:
        return iso_z(value)


class VerificationRecord(_Model):
    format: Literal[1] = FORMAT
    source: str
    backup_id: str
    checked_at: datetime
    passed: bool
    integrity: IntegrityRecord
    drill: DrillRecord | None = None
    pitr: PitrDrillRecord | None = None  # the weekly PITR drill of this base (PITR sources)

    @field_serializer("checked_at")
    def _ser_time(self, value: datetime) -> str:
        return iso_z(value)

    @property
    def is_drill(self) -> bool:
        """True when a restore drill ran (or was attempted); False for an integrity-only verify."""
        return self.drill is not None

    @property
    def over_rto(self) -> bool:
        return self.drill is not None and self.drill.within_rto is False

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def to_json(self) -> bytes:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True).encode()

    @classmethod
    def from_json(cls, body: bytes | str) -> VerificationRecord:
        """Parse a stored record; `UnreadableVerification` names what is wrong."""
        try:
            return cls.model_validate_json(body)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ())) or "document"
            raise UnreadableVerification(
                f"verification.json is not readable ({where}: {first['msg']})"
            ) from None

    @classmethod
    def unreadable(cls, source: str, backup_id: str, checked_at: datetime, reason: str) -> VerificationRecord:
        """What a reader reports for a record it cannot parse: not passed, with the reason."""
        return cls(
            source=source,
            backup_id=backup_id,
            checked_at=checked_at,
            passed=False,
            integrity=IntegrityRecord(ok=False, bad_objects={"verification.json": reason}),
        )


class UnreadableVerification(ValueError):
    """A stored verification.json that does not parse as this model."""
