"""`accepted.json`: a person's acceptance of a suspect backup, the one model its writer and readers use.

A backup the run marked `suspect` (it shrank sharply or is empty: `lastgood.backups.suspect`)
satisfies no retention rule and is skipped by `restore --latest` and the drill. When the
new size is expected (a table was archived on purpose), a person runs `lastgood accept ID`:
that writes `backups/<source>/<backup_id>/accepted.json` next to the backup — a create-once
object (`If-None-Match: *`), because committed manifests are never rewritten — and from
then on the backup counts as a normal one (retention, baselines, restore --latest).

The store reads it for `lastgood list` (`BackupListing.acceptance`); a record that cannot
be read counts as "not accepted" (the safe side: the good backup stays kept).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, ValidationError, field_serializer

from lastgood.backups.keys import acceptance_key, is_acceptance_key
from lastgood.core.errors import ConfigError, LastgoodError
from lastgood.core.observability import logger
from lastgood.core.timefmt import iso_z
from lastgood.storage.s3 import error_code, is_precondition_failed

if TYPE_CHECKING:
    from lastgood.backups.catalog import BackupListing
    from lastgood.backups.store import BackupStore

FORMAT: Literal[1] = 1


class AcceptanceRecord(BaseModel):
    """Who accepted which suspect backup, when, and the suspect reason they accepted."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    format: Literal[1] = FORMAT
    source: str
    backup_id: str
    accepted_at: datetime
    accepted_by: str | None = None
    suspect_reason: str | None = None
    note: str | None = None

    @field_serializer("accepted_at")
    def _ser_time(self, value: datetime) -> str:
        return iso_z(value)

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    @classmethod
    def from_json(cls, body: bytes | str) -> AcceptanceRecord:
        try:
            return cls.model_validate(json.loads(body))
        except (ValueError, ValidationError) as exc:
            raise ValueError(f"accepted.json is not readable: {str(exc)[:200]}") from None


def read_acceptance(store: BackupStore, source: str, backup_id: str) -> AcceptanceRecord | None:
    """The backup's acceptance record; None when absent or unreadable (= not accepted)."""
    key = acceptance_key(source, backup_id)
    body = store.get_bytes(key)
    if body is None:
        return None
    try:
        record = AcceptanceRecord.from_json(body)
    except ValueError as exc:
        logger.warning("unreadable acceptance record", extra={"key": key, "error": str(exc)})
        return None
    return record if (record.source, record.backup_id) == (source, backup_id) else None


def acceptance_of(store: BackupStore, item: BackupListing) -> AcceptanceRecord | None:
    """A listed suspect backup's acceptance (read only when the listing shows `accepted.json`)."""
    if item.manifest is None or not item.manifest.suspect:
        return None
    if not any(is_acceptance_key(k) for k in item.keys):
        return None
    return read_acceptance(store, item.source, item.backup_id)


def accept_backup(
    backup_id: str,
    *,
    store: BackupStore | None = None,
    by: str | None = None,
    note: str | None = None,
    now: datetime | None = None,
) -> tuple[AcceptanceRecord, bool]:
    """Accept a suspect backup: (the record, True if written now / False if it was already)."""
    from lastgood.backups.restore import find_backup
    from lastgood.backups.store import BackupStore

    store = store or BackupStore.from_settings()
    manifest = find_backup(store, backup_id)  # unknown / incomplete / unreadable: refused here
    if not manifest.suspect:
        raise ConfigError(
            f"backup {manifest.source}/{manifest.backup_id} is not suspect: there is nothing to accept"
        )
    existing = read_acceptance(store, manifest.source, manifest.backup_id)
    if existing is not None:
        return existing, False
    record = AcceptanceRecord(
        source=manifest.source,
        backup_id=manifest.backup_id,
        accepted_at=now or datetime.now(UTC),
        accepted_by=by,
        suspect_reason=manifest.suspect_reason,
        note=note,
    )
    key = acceptance_key(manifest.source, manifest.backup_id)
    try:
        store.put_json(key, record.to_dict(), if_none_match=True)
    except ClientError as exc:
        if is_precondition_failed(exc):  # accepted concurrently (or an unreadable record is there)
            raced = read_acceptance(store, manifest.source, manifest.backup_id)
            if raced is not None:
                return raced, False
            raise LastgoodError(f"{key} exists but cannot be read; inspect it before accepting") from None
        raise LastgoodError(f"could not write {key}: {error_code(exc) or type(exc).__name__}") from None
    from lastgood.storage import audit

    audit.record("accept", result="ok", **record.to_dict())
    return record, True
