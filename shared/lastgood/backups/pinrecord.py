"""Pin records: a backup's pin state, stored apart from its manifest so it survives a broken one.

`backups/<source>/<backup_id>/pins/<stamp>.<pin|unpin>.json` (`keys.pin_key`), one
`PinRecord` per `lastgood pin` / `unpin` / `backup --pin` / migrate safety backup.
Records are append-only: each is created with `IfNoneMatch="*"` (the bucket policy
allows no other write under `backups/`) and never rewritten; `unpin` adds an
`.unpin.json` record instead of deleting anything (only the prune role may delete
under `backups/`). The newest record is the backup's pin state; prune deletes the
records together with the backup they belong to.

Reading (`pin_state`) is fail-safe: the state is in the key name too, so a reader
without permission to read the record (health, summary) still sees it, and a record
that exists but cannot be parsed counts as pinned. A backup without any record
falls back to the `pinned` flag its manifest was committed with (backups taken
before pin records existed, or a `backup --pin` whose record write failed).
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, ConfigDict, ValidationError

from lastgood.backups.keys import backup_prefix, is_pin_key, pin_key, pin_state_from_key
from lastgood.backups.manifest import BackupManifest
from lastgood.core.errors import BackupIntegrityError
from lastgood.core.observability import logger
from lastgood.core.timefmt import iso_z
from lastgood.storage.s3 import checksum_sha256, error_code

if TYPE_CHECKING:
    from lastgood.backups.store import BackupStore

PIN_FORMAT = 1


class PinRecord(BaseModel):
    """One pin or unpin of one backup (the stored document of a pin record)."""

    model_config = ConfigDict(extra="ignore")

    format: Literal[1] = 1  # PIN_FORMAT
    source: str
    backup_id: str
    pinned: bool
    reason: str | None = None
    at: str
    by: str | None = None

    def to_bytes(self) -> bytes:
        return (json.dumps(self.model_dump(mode="json"), indent=2, ensure_ascii=False) + "\n").encode()

    @classmethod
    def from_json(cls, data: bytes | str, *, where: str = "pin record") -> PinRecord:
        try:
            return cls.model_validate(json.loads(data))
        except (ValueError, ValidationError) as exc:
            raise BackupIntegrityError(f"{where} is unreadable: {str(exc)[:200]}") from None


@dataclass
class PinState:
    pinned: bool
    reason: str | None = None
    record_key: str | None = None  # the newest pin record, None when the manifest's flag decided


def _who() -> str | None:
    return os.environ.get("AWS_LAMBDA_FUNCTION_NAME") or os.environ.get("USER") or None


def write_pin_record(
    s3: Any,
    bucket: str,
    sse_args: dict[str, str],
    source: str,
    backup_id: str,
    *,
    pinned: bool,
    reason: str | None,
    now: datetime | None = None,
) -> str:
    """Create a new pin record (conditional create, never an overwrite); returns its key."""
    moment = now or datetime.now(UTC)
    record = PinRecord(
        source=source,
        backup_id=backup_id,
        pinned=pinned,
        reason=reason if pinned else None,
        at=iso_z(moment),
        by=_who(),
    )
    key = pin_key(source, backup_id, moment, secrets.token_hex(3), pinned=pinned)
    body = record.to_bytes()
    s3.put_object(
        Bucket=bucket,
        Key=key,
        Body=body,
        ContentType="application/json",
        ChecksumSHA256=checksum_sha256(body),
        IfNoneMatch="*",
        **sse_args,
    )
    return key


def pin_state(s3: Any, bucket: str, keys: list[str], manifest: BackupManifest | None) -> PinState:
    """The pin state of a backup from the keys under its prefix (see the module docstring)."""
    records = sorted(k for k in keys if is_pin_key(k))
    if not records:
        if manifest is not None and manifest.pinned:
            return PinState(True, manifest.pin_reason)
        return PinState(False)
    newest = records[-1]
    by_name = pin_state_from_key(newest)
    try:
        body = s3.get_object(Bucket=bucket, Key=newest)["Body"].read()
    except (ClientError, BotoCoreError) as exc:
        # Not readable here (a role that reads manifests only, an outage): the name says the state.
        logger.debug("pin record not read", extra={"key": newest, "error": error_code(exc) or str(exc)[:100]})
        return PinState(by_name, None, newest)
    try:
        record = PinRecord.from_json(body, where=f"s3://{bucket}/{newest}")
    except BackupIntegrityError as exc:
        logger.warning("unreadable pin record: kept as pinned", extra={"key": newest, "error": str(exc)})
        return PinState(True, "pin record unreadable: kept", newest)
    if record.pinned != by_name:  # a record that contradicts its own name: keep the backup
        return PinState(True, record.reason or "pin record inconsistent: kept", newest)
    return PinState(record.pinned, record.reason, newest)


# --------------------------------------------------------------------------- pinning


@dataclass
class PinResult:
    source: str
    backup_id: str
    pinned: bool
    pin_reason: str | None
    record_key: str
    legal_hold: bool  # Object Lock legal holds were set (pin) or released (unpin)


def object_lock_enabled(store: BackupStore) -> bool:
    """Whether the backup bucket has S3 Object Lock enabled (legal holds are possible)."""
    try:
        config = store.s3.get_object_lock_configuration(Bucket=store.bucket)
    except ClientError as exc:
        if error_code(exc) != "ObjectLockConfigurationNotFoundError":
            logger.warning("object lock configuration not readable", extra={"error": str(exc)[:200]})
        return False
    return str(config.get("ObjectLockConfiguration", {}).get("ObjectLockEnabled", "")) == "Enabled"


def legal_hold(store: BackupStore, keys: list[str], on: bool) -> bool:
    if not keys or not object_lock_enabled(store):
        return False
    for key in keys:
        store.s3.put_object_legal_hold(
            Bucket=store.bucket, Key=key, LegalHold={"Status": "ON" if on else "OFF"}
        )
    return True


def _keys_of(store: BackupStore, source: str, backup_id: str) -> list[str]:
    paginator = store.s3.get_paginator("list_objects_v2")
    prefix = backup_prefix(source, backup_id)
    return [
        o["Key"]
        for page in paginator.paginate(Bucket=store.bucket, Prefix=prefix)
        for o in page.get("Contents", [])
    ]


def protect(store: BackupStore, source: str, backup_id: str, *, reason: str | None) -> PinResult:
    """Pin one backup: a pin record, then legal holds (Object Lock buckets)."""
    key = write_pin_record(
        store.s3, store.bucket, store.sse_args(), source, backup_id, pinned=True, reason=reason
    )
    held = legal_hold(store, _keys_of(store, source, backup_id), True)
    return PinResult(source, backup_id, True, reason, key, held)
