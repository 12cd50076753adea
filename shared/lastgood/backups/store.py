"""The backup bucket: `BackupStore`, the facade over writes, verified reads, listing and slot locks.

Layout: `lastgood.backups.keys` (data objects, `manifest.json` written LAST as
the commit marker, `verification.json` from the restore drill, slot locks).

Writing: `BackupStore.writer(source, backup_id)` returns a `BackupWriter`
(`lastgood.backups.writer`), the `DumpTarget` an engine streams into; each
object is a threaded multipart upload (`lastgood.storage.multipart`: parts of
`part_size` bytes, 8 MiB by default, at most `max_inflight` in flight, a
CRC32 per part that S3 checks, a SHA-256 of the whole object that every read checks). Memory per open object: about
(max_inflight + 1) * part_size.

Reading: `read_manifest`, `list_backups` (`lastgood.backups.catalog`; status
complete / incomplete / verified, size, pinned), `open_object` (raw stored
bytes; with a pin, exactly the version that was verified), `verify_object` /
`pin_object` (size + SHA-256 against the manifest; the pin is the ETag and
version of the bytes that passed), and `object_source(manifest)` — a
`VerifiedObjectSource` (`lastgood.backups.reader`) that verifies every object
before the restore touches its target, then hands the engine only bytes proven
again (pinned read, spooled and re-hashed before the first byte is applied).

Slot locks: `acquire_slot_lock` / `complete_slot_lock` / `release_slot_lock`
(`lastgood.backups.locks`).

The store knows nothing of databases. Deleting backups is the prune module's job.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, BinaryIO

from botocore.exceptions import ClientError

from lastgood.backups import catalog, locks
from lastgood.backups.acceptance import acceptance_of
from lastgood.backups.catalog import BackupListing
from lastgood.backups.keys import is_verification_key, manifest_key, object_key, verification_key
from lastgood.backups.locks import SlotLock
from lastgood.backups.manifest import BackupManifest, ObjectEntry, is_backup_id, new_backup_id
from lastgood.backups.reader import ObjectPin, VerifiedObjectSource, check_entry
from lastgood.backups.verification import UnreadableVerification, VerificationRecord
from lastgood.backups.writer import BackupWriter
from lastgood.core.errors import BackupIntegrityError, BackupNotFound, ConfigError
from lastgood.core.observability import logger
from lastgood.storage.multipart import MAX_INFLIGHT_PARTS, MIN_PART_SIZE, PART_SIZE
from lastgood.storage.s3 import checksum_sha256, is_not_found, is_precondition_failed

READ_CHUNK = 1024 * 1024


def verification_passed(record: VerificationRecord | None) -> bool:
    """A backup counts as verified when its newest `verification.json` passed."""
    return record is not None and record.passed


# --------------------------------------------------------------------------- the store


class BackupStore:
    """S3 access for backups in one bucket (SSE-KMS with `kms_key_id`; None = the bucket's default key)."""

    def __init__(
        self,
        bucket: str,
        kms_key_id: str | None,
        s3_client: Any = None,
        *,
        part_size: int = PART_SIZE,
        max_inflight: int = MAX_INFLIGHT_PARTS,
    ) -> None:
        if not bucket:
            raise ConfigError("BACKUP_BUCKET is not set: it is required for backups")
        if part_size < MIN_PART_SIZE:
            raise ValueError(f"part_size must be at least {MIN_PART_SIZE} bytes (S3 minimum)")
        self.bucket = bucket
        self.kms_key_id = kms_key_id
        self._s3 = s3_client
        self.part_size = part_size
        self.max_inflight = max(1, max_inflight)
        # Called with the byte count of every write a backup's engine makes (the CLI's progress).
        self.on_bytes: Callable[[int], None] | None = None

    @classmethod
    def from_settings(cls) -> BackupStore:
        from lastgood.core.settings import get_settings

        settings = get_settings()
        return cls(settings.require("backup_bucket"), settings.kms_key_id)

    @property
    def s3(self) -> Any:
        if self._s3 is None:
            from lastgood.core import aws

            self._s3 = aws.client("s3")
        return self._s3

    def sse_args(self) -> dict[str, str]:
        args = {"ServerSideEncryption": "aws:kms"}
        if self.kms_key_id:
            args["SSEKMSKeyId"] = self.kms_key_id
        return args

    # ----------------------------------------------------------------- writing

    @staticmethod
    def new_backup_id(now: datetime | None = None) -> str:
        return new_backup_id(now)

    def writer(
        self,
        source: str,
        backup_id: str,
        *,
        client_side_encryption: bool = False,
        deadline: float | None = None,
    ) -> BackupWriter:
        """A `DumpTarget` for one backup. `deadline` (time.monotonic()) stops writes past it."""
        if not is_backup_id(backup_id):
            raise ValueError(f"malformed backup id {backup_id!r}")
        return BackupWriter(
            self, source, backup_id, client_side_encryption=client_side_encryption, deadline=deadline
        )

    def put_json(self, key: str, doc: dict[str, Any], *, if_none_match: bool = False) -> str:
        """Write a small JSON object (SSE-KMS, SHA-256 checksum); returns its ETag."""
        body = (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
        return self.put_bytes(key, body, if_none_match=if_none_match)

    def put_bytes(
        self, key: str, body: bytes, *, content_type: str = "application/json", if_none_match: bool = False
    ) -> str:
        """Write these exact bytes (SSE-KMS, SHA-256 checksum; `if_none_match`: create-once, S3
        answers 412 when the key exists); returns the ETag. S3 errors are the caller's to read."""
        extra: dict[str, Any] = {"IfNoneMatch": "*"} if if_none_match else {}
        resp = self.s3.put_object(
            Bucket=self.bucket,
            Key=key,
            Body=body,
            ContentType=content_type,
            ChecksumSHA256=checksum_sha256(body),
            **self.sse_args(),
            **extra,
        )
        return str(resp.get("ETag", ""))

    def get_bytes(self, key: str) -> bytes | None:
        """A small object's bytes, or None when there is no such key (other S3 errors raise)."""
        try:
            return bytes(self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read())
        except ClientError as exc:
            if is_not_found(exc):
                return None
            raise

    # ----------------------------------------------------------------- slot locks (lastgood.backups.locks)

    def acquire_slot_lock(
        self,
        source: str,
        slot: datetime,
        *,
        backup_id: str,
        now: datetime | None = None,
        lease_s: int | None = None,
    ) -> SlotLock:
        return locks.acquire_slot_lock(self, source, slot, backup_id=backup_id, now=now, lease_s=lease_s)

    def complete_slot_lock(self, lock: SlotLock, backup_id: str) -> None:
        locks.complete_slot_lock(self, lock, backup_id)

    def release_slot_lock(self, lock: SlotLock) -> None:
        locks.release_slot_lock(self, lock)

    # ----------------------------------------------------------------- reading

    def has_manifest(self, source: str, backup_id: str) -> bool:
        try:
            self.s3.head_object(Bucket=self.bucket, Key=manifest_key(source, backup_id))
            return True
        except ClientError as exc:
            if is_not_found(exc):
                return False
            raise

    def read_manifest(self, source: str, backup_id: str) -> BackupManifest:
        """The committed manifest; BackupNotFound if the backup has none (incomplete or absent)."""
        key = manifest_key(source, backup_id)
        try:
            body = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except ClientError as exc:
            if is_not_found(exc):
                raise BackupNotFound(
                    f"backup {source}/{backup_id} has no manifest (absent or incomplete: never used for restore)"
                ) from None
            raise
        manifest = BackupManifest.from_json(body, where=f"s3://{self.bucket}/{key}")
        if manifest.backup_id != backup_id or manifest.source != source:
            raise BackupIntegrityError(
                f"s3://{self.bucket}/{key} describes {manifest.source}/{manifest.backup_id}"
            )
        return manifest

    def read_verification(self, source: str, backup_id: str) -> VerificationRecord | None:
        body = self.get_bytes(verification_key(source, backup_id))
        if body is None:
            return None
        try:
            return VerificationRecord.from_json(body)
        except UnreadableVerification as exc:  # shown as not passed, with the reason
            return VerificationRecord.unreadable(source, backup_id, datetime.now(UTC), str(exc))

    def list_sources(self) -> list[str]:
        """Source names that have anything under `backups/`."""
        return catalog.list_sources(self.s3, self.bucket)

    def list_backups(self, source: str | None = None, *, with_details: bool = True) -> list[BackupListing]:
        """Backups newest first (all sources when `source` is None).

        Status: `incomplete` (no manifest object), `unreadable` (a manifest that
        cannot be parsed or has an unknown format), `complete`, or `verified` (a
        passed `verification.json`). With `with_details`, manifests, pin records
        (`lastgood.backups.pinrecord`) and verification documents are read (in
        parallel) for pinned flags and totals.
        """
        sources = [source] if source else self.list_sources()
        listings: list[BackupListing] = []
        for name in sources:
            listings.extend(catalog.list_source(self.s3, self.bucket, name))
        if with_details and listings:
            with ThreadPoolExecutor(max_workers=8) as pool:
                list(pool.map(self._fill_details, listings))
        return catalog.newest_first(listings)

    def _fill_details(self, item: BackupListing) -> None:
        from lastgood.backups.pinrecord import pin_state

        if item.status == "incomplete":  # no manifest object: a pin record may still be there
            state = pin_state(self.s3, self.bucket, item.keys, None)
            item.pinned, item.pin_reason = state.pinned, state.reason
            return
        try:
            item.manifest = self.read_manifest(item.source, item.backup_id)
        except BackupNotFound:  # deleted since the listing (a prune): it is going away
            item.status = "incomplete"
        except BackupIntegrityError as exc:
            # The manifest exists but cannot be read (cut, newer format…): kept, listed, alarmed.
            logger.warning("unreadable manifest", extra={"backup": item.backup_id, "error": str(exc)[:200]})
            item.status = "unreadable"
            item.unreadable_reason = str(exc)[:300]
        state = pin_state(self.s3, self.bucket, item.keys, item.manifest)
        item.pinned, item.pin_reason = state.pinned, state.reason
        if item.manifest is None:
            return
        item.acceptance = acceptance_of(self, item)
        if any(is_verification_key(k) for k in item.keys):
            item.verification = self.read_verification(item.source, item.backup_id)
            if verification_passed(item.verification):
                item.status = "verified"

    def latest_backup(self, source: str, *, include_incomplete: bool = False) -> BackupListing | None:
        """The newest committed (complete or verified) backup of `source` (never an unreadable one)."""
        for item in self.list_backups(source):
            if include_incomplete or item.committed:
                return item
        return None

    @contextmanager
    def open_object(
        self, source: str, backup_id: str, relpath: str, *, pin: ObjectPin | None = None
    ) -> Iterator[BinaryIO]:
        """A streaming body of the stored bytes (ciphertext if client-side encrypted), unverified.

        With `pin`, the read is of exactly that stored version (`VersionId`, `IfMatch` on its
        ETag): an object changed since it was pinned is a BackupIntegrityError, never other bytes.
        """
        with self.open_pinned(source, backup_id, relpath, pin) as (body, _):
            yield body

    @contextmanager
    def open_pinned(
        self, source: str, backup_id: str, relpath: str, pin: ObjectPin | None = None
    ) -> Iterator[tuple[BinaryIO, ObjectPin]]:
        """`open_object`, also yielding the pin (ETag, version) of the bytes being read."""
        key = object_key(source, backup_id, relpath)
        where = f"s3://{self.bucket}/{key}"
        try:
            response = self.s3.get_object(Bucket=self.bucket, Key=key, **(pin.get_args() if pin else {}))
        except ClientError as exc:
            if is_not_found(exc):
                detail = " (the version that was verified is gone)" if pin else ""
                raise BackupIntegrityError(f"{where} is missing{detail}") from None
            if pin and is_precondition_failed(exc):
                raise BackupIntegrityError(
                    f"{where} changed after it was verified (its ETag is no longer {pin.etag})"
                ) from None
            raise
        body = response["Body"]
        try:
            yield body, ObjectPin.of(response)
        finally:
            body.close()

    def pin_object(self, manifest: BackupManifest, relpath: str) -> ObjectPin:
        """Re-read an object, check its size and SHA-256 against the manifest, and return the
        pin (ETag, version) of the bytes that passed — later reads use it (BackupIntegrityError)."""
        entry = manifest.object(relpath)
        digest = hashlib.sha256()
        size = 0
        with self.open_pinned(manifest.source, manifest.backup_id, relpath) as (body, pin):
            while chunk := body.read(READ_CHUNK):
                digest.update(chunk)
                size += len(chunk)
        check_entry(manifest, entry, size, digest.hexdigest())
        return pin

    def verify_object(self, manifest: BackupManifest, relpath: str) -> ObjectEntry:
        """Re-read an object and compare its size and SHA-256 with the manifest (BackupIntegrityError)."""
        self.pin_object(manifest, relpath)
        return manifest.object(relpath)

    def object_source(self, manifest: BackupManifest, *, verify_first: bool = True) -> VerifiedObjectSource:
        """The `ObjectSource` a restore reads from; verifies every object first unless told not to."""
        source = VerifiedObjectSource(self, manifest)
        if verify_first:
            source.verify_all()
        return source
