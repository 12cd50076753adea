"""The backup manifest and the pure rules around backup ids and schedule slots.

`manifest.json` is the commit marker of a backup: the store writes it last, after
every object is complete, so a backup without one is incomplete and is never
used for restore. This module is pure (no I/O); `lastgood.backups.store` reads and
writes it.

Layout of a manifest (``format: 1``)::

    {
      "format": 1,
      "backup_id": "20250129T020000Z-3f9a1c",       # sortable by UTC time
      "source": "postgres", "engine": "postgres", "server_version": "18.6",
      "slot": "2025-01-29T02:00:00Z" | null,          # schedule slot (null: on-demand run)
      "started_at": "...Z", "finished_at": "...Z", "duration_s": 12.3,
      "objects": [{"key": "app.dump", "bytes": 123, "sha256": "<hex>", "count": 42,
                   "content_type": "...", "encryption": "aws:kms", "parts": 1,
                   "plaintext_bytes": null, "counts": {"public.users": 40, ...}}],
      "counts": {"public.users": 40, ...},            # what engine.counts() returns after a restore
      "totals": {"bytes": 123, "objects": 1, "count": 42},
      "tool_versions": {"lastgood": "0.1.0", "pg_dump": "18.6", ...},
      "pinned": false, "pin_reason": null,
      "suspect": false, "suspect_reason": null,       # optional: shrank sharply (lastgood.backups.suspect)
      "encryption": {"sse": "aws:kms", "key": "<KMS key id>", "client_side": false},
      "source_identity": {"engine": "postgres", "server_id": "pg-system:7714…", "database": "app",
                          "method": "...", "aliases": []} | null,   # optional: which server was dumped
      "peak_rss_bytes": 123456789 | null,             # optional: the run's peak memory (with pg_dump)
      "extra": {...}                                  # engine-specific, informational
    }

`ObjectEntry.key` is the object's path relative to the backup prefix
(`backups/<source>/<backup_id>/`); `sha256` and `bytes` describe the bytes
stored in S3 (the ciphertext when client-side encryption is on; then
`plaintext_bytes` is the size before encryption).
"""

from __future__ import annotations

import json
import re
import secrets
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from lastgood.core.errors import BackupIntegrityError
from lastgood.core.timefmt import human_bytes, iso_z, to_utc
from lastgood.engines.base import ServerIdentity
from lastgood.engines.base import validate_relpath as validate_relpath

MANIFEST_FORMAT = 1

BACKUP_ID_RE = re.compile(r"^(?P<ts>\d{8}T\d{6}Z)-(?P<rand>[0-9a-f]{6})$")
_ID_TIME_FORMAT = "%Y%m%dT%H%M%SZ"


# --------------------------------------------------------------------------- ids


def new_backup_id(now: datetime | None = None, *, rand: str | None = None) -> str:
    """A new backup id `YYYYMMDDTHHMMSSZ-<6 hex>`; lexical order is UTC time order.

    The suffix is the microsecond (5 hex digits) and one random digit, so two backups of the
    same second still sort in the order they were taken ("the newest" is never a coin toss);
    a whole-second time gets 6 random digits.
    """
    moment = to_utc(now or datetime.now(UTC))
    if rand is not None:
        suffix = rand
    elif moment.microsecond:
        suffix = f"{moment.microsecond:05x}{secrets.randbelow(16):x}"
    else:  # a whole-second time (given by a caller): no finer order to keep, all random
        suffix = secrets.token_hex(3)
    if not re.fullmatch(r"[0-9a-f]{6}", suffix):
        raise ValueError(f"backup id suffix must be 6 lowercase hex digits, got {suffix!r}")
    return f"{moment.strftime(_ID_TIME_FORMAT)}-{suffix}"


def is_backup_id(text: str) -> bool:
    return BACKUP_ID_RE.match(text) is not None


def backup_id_time(backup_id: str) -> datetime:
    """The UTC time encoded in a backup id (raises ValueError on a malformed id)."""
    match = BACKUP_ID_RE.match(backup_id)
    if not match:
        raise ValueError(f"not a backup id (expected YYYYMMDDTHHMMSSZ-xxxxxx): {backup_id!r}")
    return datetime.strptime(match["ts"], _ID_TIME_FORMAT).replace(tzinfo=UTC)


def slot_label(slot: datetime) -> str:
    """The slot's name in lock keys: `20250129T020000Z`."""
    return to_utc(slot).strftime(_ID_TIME_FORMAT)


def slot_from_label(label: str) -> datetime:
    return datetime.strptime(label, _ID_TIME_FORMAT).replace(tzinfo=UTC)


# --------------------------------------------------------------------------- model


class _Model(BaseModel):
    # Unknown fields from a newer writer are ignored (forward compatible within a format).
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class ObjectEntry(_Model):
    """One stored object of a backup, as written (bytes and SHA-256 of what S3 holds)."""

    key: str
    bytes: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    count: int | None = None
    content_type: str = "application/octet-stream"
    encryption: str = "aws:kms"
    parts: int = Field(1, ge=1)
    plaintext_bytes: int | None = None
    counts: dict[str, int] = Field(default_factory=dict)

    @field_validator("key")
    @classmethod
    def _check_key(cls, value: str) -> str:
        return validate_relpath(value)


class Totals(_Model):
    bytes: int = 0
    objects: int = 0
    count: int = 0


class EncryptionInfo(_Model):
    sse: Literal["aws:kms"] = "aws:kms"
    key: str | None = None
    client_side: bool = False


class BackupManifest(_Model):
    """What a backup contains; written last (`manifest.json`) as its commit marker."""

    format: int = MANIFEST_FORMAT
    backup_id: str
    source: str
    engine: str
    server_version: str | None = None
    slot: str | None = None
    started_at: str
    finished_at: str
    duration_s: float = Field(ge=0)
    objects: list[ObjectEntry] = Field(default_factory=list)
    counts: dict[str, int] = Field(default_factory=dict)
    totals: Totals = Field(default_factory=Totals)
    tool_versions: dict[str, str] = Field(default_factory=dict)
    pinned: bool = False
    pin_reason: str | None = None
    # Set by the backup run when the dump shrank sharply or is empty (optional: format 1 without them
    # reads as not suspect). Acceptance is a separate record (`lastgood.backups.acceptance`).
    suspect: bool = False
    suspect_reason: str | None = None
    encryption: EncryptionInfo = Field(default_factory=EncryptionInfo)
    # The server the backup was taken from (`engine.identity`), so a drill can refuse a target
    # that is that server without reading the source's secret. Optional: older manifests lack it.
    source_identity: ServerIdentity | None = None
    # Peak resident memory of the process that ran the backup, its tools (pg_dump) added
    # (`lastgood backup --estimate` reads it). Optional: older manifests lack it.
    peak_rss_bytes: int | None = Field(None, ge=0)
    extra: dict[str, Any] = Field(default_factory=dict)

    @field_validator("format")
    @classmethod
    def _check_format(cls, value: int) -> int:
        if value != MANIFEST_FORMAT:
            raise ValueError(
                f"unsupported manifest format {value} (this lastgood reads format {MANIFEST_FORMAT})"
            )
        return value

    @field_validator("backup_id")
    @classmethod
    def _check_id(cls, value: str) -> str:
        if not is_backup_id(value):
            raise ValueError(f"malformed backup id {value!r}")
        return value

    # ----------------------------------------------------------------- building

    @classmethod
    def build(
        cls,
        *,
        backup_id: str,
        source: str,
        engine: str,
        started_at: datetime,
        finished_at: datetime,
        objects: list[ObjectEntry],
        server_version: str | None = None,
        slot: datetime | None = None,
        counts: dict[str, int] | None = None,
        tool_versions: dict[str, str] | None = None,
        pinned: bool = False,
        pin_reason: str | None = None,
        kms_key_id: str | None = None,
        client_side: bool = False,
        source_identity: ServerIdentity | None = None,
        peak_rss_bytes: int | None = None,
        extra: dict[str, Any] | None = None,
    ) -> BackupManifest:
        """Assemble a manifest; totals and (absent engine counts) per-object counts are derived."""
        if pin_reason and not pinned:
            raise ValueError("pin_reason given for an unpinned backup")
        derived = {o.key: o.count for o in objects if o.count is not None}
        return cls(
            backup_id=backup_id,
            source=source,
            engine=engine,
            server_version=server_version,
            slot=iso_z(slot) if slot is not None else None,
            started_at=iso_z(started_at),
            finished_at=iso_z(finished_at),
            duration_s=round(max(0.0, (to_utc(finished_at) - to_utc(started_at)).total_seconds()), 3),
            objects=list(objects),
            counts=dict(counts) if counts else derived,
            totals=compute_totals(objects),
            tool_versions=dict(tool_versions or {}),
            pinned=pinned,
            pin_reason=pin_reason,
            encryption=EncryptionInfo(key=kms_key_id, client_side=client_side),
            source_identity=source_identity,
            peak_rss_bytes=peak_rss_bytes,
            extra=dict(extra or {}),
        )

    # ----------------------------------------------------------------- queries

    @property
    def created_at(self) -> datetime:
        """The backup's time (from its id)."""
        return backup_id_time(self.backup_id)

    def object(self, relpath: str) -> ObjectEntry:
        for entry in self.objects:
            if entry.key == relpath:
                return entry
        raise BackupIntegrityError(f"backup {self.source}/{self.backup_id} has no object {relpath!r}")

    def check_consistent(self) -> None:
        """Raise BackupIntegrityError if totals disagree with objects or keys repeat."""
        keys = [o.key for o in self.objects]
        if len(keys) != len(set(keys)):
            raise BackupIntegrityError(f"manifest {self.backup_id}: duplicate object keys")
        if compute_totals(self.objects) != self.totals:
            raise BackupIntegrityError(f"manifest {self.backup_id}: totals do not match its objects")

    # ----------------------------------------------------------------- (de)serialization

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def to_json(self, *, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, sort_keys=False, ensure_ascii=False)

    def to_bytes(self) -> bytes:
        return (self.to_json() + "\n").encode("utf-8")

    @classmethod
    def from_json(cls, data: str | bytes, *, where: str = "manifest") -> BackupManifest:
        """Parse and validate; any problem is a BackupIntegrityError naming `where`."""
        try:
            manifest = cls.model_validate(json.loads(data))
        except (ValueError, ValidationError) as exc:
            raise BackupIntegrityError(f"{where} is unreadable: {_short(exc)}") from None
        manifest.check_consistent()
        return manifest

    def summary(self) -> str:
        """One line for humans: id, size, objects, rows, duration."""
        pin = f", pinned ({self.pin_reason})" if self.pinned else ""
        suspect = f", SUSPECT: {self.suspect_reason}" if self.suspect else ""
        return (
            f"{self.source} backup {self.backup_id}: {human_bytes(self.totals.bytes)} in "
            f"{self.totals.objects} object(s), {self.totals.count} record(s), "
            f"{self.duration_s:.1f}s{pin}{suspect}"
        )


def compute_totals(objects: list[ObjectEntry]) -> Totals:
    return Totals(
        bytes=sum(o.bytes for o in objects),
        objects=len(objects),
        count=sum(o.count or 0 for o in objects),
    )


def _short(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(root)'}: {err['msg']}" for err in exc.errors()[:5]
        )
    return str(exc)[:300]
