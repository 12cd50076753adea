"""The backup bucket: object layout, streaming writes, verified reads, listing, slot locks.

Layout (bucket `BACKUP_BUCKET`)::

    backups/<source>/<backup_id>/<relpath>        data objects (streamed, SSE-KMS)
    backups/<source>/<backup_id>/manifest.json    written LAST: the commit marker
    backups/<source>/<backup_id>/verification.json  written by the restore drill (verify)
    locks/<source>/<slot>.lock                    one per schedule slot (conditional write)

Writing: `BackupStore.writer(source, backup_id)` returns a `BackupWriter`, the
`DumpTarget` an engine streams into. Each `open_object(relpath)` is a context
manager whose writer uploads S3 multipart parts of `part_size` bytes (8 MiB by
default) from a bounded buffer, at most `max_inflight` parts in flight on a
background thread, with a SHA-256 per part (sent as `ChecksumSHA256`) and a
running SHA-256 + byte count of the whole object. Objects smaller than one
part are a single `put_object`. If the block raises, the multipart upload is
aborted (no orphan parts) and the exception propagates. `commit(manifest)`
writes `manifest.json` with `IfNoneMatch="*"`; `discard()` removes what a
failed run wrote. Memory per open object: about (max_inflight + 1) * part_size.

Reading: `read_manifest`, `list_backups` (status complete / incomplete /
verified, size, pinned), `open_object` (raw stored bytes), `verify_object`
(size + SHA-256 against the manifest), and `object_source(manifest)` — a
`VerifiedObjectSource` (the engines' `ObjectSource`) that verifies every object
before the restore touches its target and re-checks while streaming.

The store knows nothing of databases. Deleting backups is the prune module's job.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, BinaryIO, Literal

from botocore.exceptions import BotoCoreError, ClientError

from lastgood.backups.manifest import (
    BackupManifest,
    ObjectEntry,
    backup_id_time,
    is_backup_id,
    new_backup_id,
    slot_label,
    validate_relpath,
)
from lastgood.backups.verification import UnreadableVerification, VerificationRecord
from lastgood.core.errors import BackupError, BackupIntegrityError, BackupNotFound, ConfigError
from lastgood.core.observability import logger
from lastgood.core.timefmt import iso_z, parse_time

PART_SIZE = 8 * 1024 * 1024  # S3 minimum is 5 MiB (except the last part)
MIN_PART_SIZE = 5 * 1024 * 1024
MAX_INFLIGHT_PARTS = 2
READ_CHUNK = 1024 * 1024
# A lock older than this whose backup never committed belongs to a run that died
# (Lambda's hard limit is 15 minutes); a retry of the slot may take it over.
LOCK_LEASE_S = 20 * 60

MANIFEST_NAME = "manifest.json"
VERIFICATION_NAME = "verification.json"
CLIENT_SIDE_ENCRYPTION = "aws:kms+aws-encryption-sdk"

BackupStatus = Literal["complete", "incomplete", "verified"]


# --------------------------------------------------------------------------- layout


def backup_prefix(source: str, backup_id: str) -> str:
    return f"backups/{source}/{backup_id}/"


def object_key(source: str, backup_id: str, relpath: str) -> str:
    return backup_prefix(source, backup_id) + validate_relpath(relpath)


def manifest_key(source: str, backup_id: str) -> str:
    return backup_prefix(source, backup_id) + MANIFEST_NAME


def verification_key(source: str, backup_id: str) -> str:
    return backup_prefix(source, backup_id) + VERIFICATION_NAME


def lock_key(source: str, slot: datetime) -> str:
    return f"locks/{source}/{slot_label(slot)}.lock"


def _b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode("ascii")


def _error_code(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


def _is_missing(exc: Exception) -> bool:
    return _error_code(exc) in {"NoSuchKey", "404", "NotFound"}


def _is_precondition(exc: Exception) -> bool:
    return _error_code(exc) in {"PreconditionFailed", "412", "ConditionalRequestConflict", "409"}


# --------------------------------------------------------------------------- listing model


@dataclass
class BackupListing:
    """One backup as `lastgood list` / prune / health see it."""

    source: str
    backup_id: str
    created_at: datetime
    status: BackupStatus
    size: int  # bytes stored under the backup's prefix (data objects + manifest)
    objects: int  # data objects stored (manifest/verification excluded)
    pinned: bool = False
    pin_reason: str | None = None
    manifest: BackupManifest | None = None
    verification: VerificationRecord | None = None
    keys: list[str] = field(default_factory=list)  # every S3 key under the prefix
    last_modified: datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "backup_id": self.backup_id,
            "time": iso_z(self.created_at),
            "status": self.status,
            "size": self.size,
            "objects": self.objects,
            "pinned": self.pinned,
            "pin_reason": self.pin_reason,
            "count": self.manifest.totals.count if self.manifest else None,
            "duration_s": self.manifest.duration_s if self.manifest else None,
        }


def verification_passed(record: VerificationRecord | None) -> bool:
    """A backup counts as verified when its newest `verification.json` passed."""
    return record is not None and record.passed


@dataclass
class SlotLock:
    """Result of `acquire_slot_lock`: `acquired` or held by `holder` (the lock's JSON body)."""

    source: str
    slot: datetime
    key: str
    acquired: bool
    etag: str | None = None
    holder: dict[str, Any] = field(default_factory=dict)
    taken_over: bool = False


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
        extra: dict[str, Any] = {"IfNoneMatch": "*"} if if_none_match else {}
        resp = self.s3.put_object(
            Bucket=self.bucket,
            Key=key,
            Body=body,
            ContentType="application/json",
            ChecksumSHA256=_b64(hashlib.sha256(body).digest()),
            **self.sse_args(),
            **extra,
        )
        return str(resp.get("ETag", ""))

    # ----------------------------------------------------------------- slot locks

    def acquire_slot_lock(
        self,
        source: str,
        slot: datetime,
        *,
        backup_id: str,
        now: datetime | None = None,
        lease_s: int = LOCK_LEASE_S,
    ) -> SlotLock:
        """Create `locks/<source>/<slot>.lock` unless it exists (`IfNoneMatch="*"`).

        A lock still `running` after `lease_s` whose backup never committed is a
        dead run's: it is taken over with `IfMatch` on its ETag (so two retries
        cannot both take it). Anything else → `acquired=False` with the holder.
        """
        key = lock_key(source, slot)
        moment = now or datetime.now(UTC)
        body = {
            "source": source,
            "slot": iso_z(slot),
            "backup_id": backup_id,
            "state": "running",
            "acquired_at": iso_z(moment),
        }
        try:
            etag = self.put_json(key, body, if_none_match=True)
            return SlotLock(source, slot, key, True, etag=etag, holder=body)
        except ClientError as exc:
            if not _is_precondition(exc):
                raise
        try:
            resp = self.s3.get_object(Bucket=self.bucket, Key=key)
            holder = json.loads(resp["Body"].read())
            etag = str(resp.get("ETag", ""))
        except ClientError as exc:
            if _is_missing(exc):  # released between our put and get: let the caller retry later
                return SlotLock(source, slot, key, False, holder={"state": "released"})
            raise
        if holder.get("state") == "running" and self._lock_is_stale(source, holder, moment, lease_s):
            try:
                resp = self.s3.put_object(
                    Bucket=self.bucket,
                    Key=key,
                    Body=json.dumps(body).encode(),
                    ContentType="application/json",
                    IfMatch=etag,
                    **self.sse_args(),
                )
            except ClientError as exc:
                if _is_precondition(exc) or _is_missing(exc):
                    return SlotLock(source, slot, key, False, holder=holder)
                raise
            logger.warning("took over a stale slot lock", extra={"lock": key, "stale_holder": holder})
            return SlotLock(
                source, slot, key, True, etag=str(resp.get("ETag", "")), holder=body, taken_over=True
            )
        return SlotLock(source, slot, key, False, holder=holder)

    def _lock_is_stale(self, source: str, holder: dict[str, Any], now: datetime, lease_s: int) -> bool:
        try:
            acquired = parse_time(str(holder.get("acquired_at", "")))
        except ConfigError:
            return True
        if (now - acquired).total_seconds() < lease_s:
            return False
        other = str(holder.get("backup_id", ""))
        return not (is_backup_id(other) and self.has_manifest(source, other))

    def complete_slot_lock(self, lock: SlotLock, backup_id: str) -> None:
        """Mark the slot done (kept forever: a later duplicate invocation is skipped)."""
        self.put_json(
            lock.key,
            {**lock.holder, "backup_id": backup_id, "state": "done", "done_at": iso_z(datetime.now(UTC))},
        )

    def release_slot_lock(self, lock: SlotLock) -> None:
        """Delete the lock after a failed run so a retry of the slot can run."""
        try:
            self.s3.delete_object(Bucket=self.bucket, Key=lock.key)
        except (ClientError, BotoCoreError) as exc:
            logger.warning("could not release slot lock", extra={"lock": lock.key, "error": str(exc)[:200]})

    # ----------------------------------------------------------------- reading

    def has_manifest(self, source: str, backup_id: str) -> bool:
        try:
            self.s3.head_object(Bucket=self.bucket, Key=manifest_key(source, backup_id))
            return True
        except ClientError as exc:
            if _error_code(exc) in {"404", "NoSuchKey", "NotFound"}:
                return False
            raise

    def read_manifest(self, source: str, backup_id: str) -> BackupManifest:
        """The committed manifest; BackupNotFound if the backup has none (incomplete or absent)."""
        key = manifest_key(source, backup_id)
        try:
            body = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except ClientError as exc:
            if _is_missing(exc):
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
        try:
            body = self.s3.get_object(Bucket=self.bucket, Key=verification_key(source, backup_id))[
                "Body"
            ].read()
        except ClientError as exc:
            if _is_missing(exc):
                return None
            raise
        try:
            return VerificationRecord.from_json(body)
        except UnreadableVerification as exc:  # shown as not passed, with the reason
            return VerificationRecord.unreadable(source, backup_id, datetime.now(UTC), str(exc))

    def list_sources(self) -> list[str]:
        """Source names that have anything under `backups/`."""
        names: list[str] = []
        paginator = self.s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix="backups/", Delimiter="/"):
            for common in page.get("CommonPrefixes", []):
                names.append(common["Prefix"].split("/")[1])
        return sorted(names)

    def list_backups(self, source: str | None = None, *, with_details: bool = True) -> list[BackupListing]:
        """Backups newest first (all sources when `source` is None).

        Status: `incomplete` (no manifest), `complete`, or `verified` (a passed
        `verification.json`). With `with_details`, manifests and verification
        documents are read (in parallel) for pinned flags and totals.
        """
        sources = [source] if source else self.list_sources()
        listings: list[BackupListing] = []
        for name in sources:
            listings.extend(self._list_source(name))
        if with_details and listings:
            with ThreadPoolExecutor(max_workers=8) as pool:
                list(pool.map(self._fill_details, listings))
        listings.sort(key=lambda item: (item.created_at, item.backup_id), reverse=True)
        return listings

    def _list_source(self, source: str) -> list[BackupListing]:
        grouped: dict[str, BackupListing] = {}
        paginator = self.s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=f"backups/{source}/"):
            for obj in page.get("Contents", []):
                parts = obj["Key"].split("/", 3)
                if len(parts) < 4 or not is_backup_id(parts[2]):
                    continue
                backup_id, name = parts[2], parts[3]
                item = grouped.get(backup_id)
                if item is None:
                    item = BackupListing(source, backup_id, backup_id_time(backup_id), "incomplete", 0, 0)
                    grouped[backup_id] = item
                item.keys.append(obj["Key"])
                item.size += int(obj.get("Size", 0))
                modified = obj.get("LastModified")
                if modified is not None and (item.last_modified is None or modified > item.last_modified):
                    item.last_modified = modified
                if name == MANIFEST_NAME:
                    item.status = "complete"
                elif name != VERIFICATION_NAME:
                    item.objects += 1
        return list(grouped.values())

    def _fill_details(self, item: BackupListing) -> None:
        if item.status == "incomplete":
            return
        try:
            item.manifest = self.read_manifest(item.source, item.backup_id)
        except (BackupNotFound, BackupIntegrityError) as exc:
            logger.warning("unreadable manifest", extra={"backup": item.backup_id, "error": str(exc)[:200]})
            item.status = "incomplete"
            return
        item.pinned = item.manifest.pinned
        item.pin_reason = item.manifest.pin_reason
        if any(k.endswith("/" + VERIFICATION_NAME) for k in item.keys):
            item.verification = self.read_verification(item.source, item.backup_id)
            if verification_passed(item.verification):
                item.status = "verified"

    def latest_backup(self, source: str, *, include_incomplete: bool = False) -> BackupListing | None:
        """The newest committed (complete or verified) backup of `source`."""
        for item in self.list_backups(source):
            if include_incomplete or item.status != "incomplete":
                return item
        return None

    @contextmanager
    def open_object(self, source: str, backup_id: str, relpath: str) -> Iterator[BinaryIO]:
        """A streaming body of the stored bytes (ciphertext if client-side encrypted), unverified."""
        key = object_key(source, backup_id, relpath)
        try:
            body = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"]
        except ClientError as exc:
            if _is_missing(exc):
                raise BackupIntegrityError(f"s3://{self.bucket}/{key} is missing") from None
            raise
        try:
            yield body
        finally:
            body.close()

    def verify_object(self, manifest: BackupManifest, relpath: str) -> ObjectEntry:
        """Re-read an object and compare its size and SHA-256 with the manifest (BackupIntegrityError)."""
        entry = manifest.object(relpath)
        digest = hashlib.sha256()
        size = 0
        with self.open_object(manifest.source, manifest.backup_id, relpath) as body:
            while chunk := body.read(READ_CHUNK):
                digest.update(chunk)
                size += len(chunk)
        _check_entry(manifest, entry, size, digest.hexdigest())
        return entry

    def object_source(self, manifest: BackupManifest, *, verify_first: bool = True) -> VerifiedObjectSource:
        """The `ObjectSource` a restore reads from; verifies every object first unless told not to."""
        source = VerifiedObjectSource(self, manifest)
        if verify_first:
            source.verify_all()
        return source


def _check_entry(manifest: BackupManifest, entry: ObjectEntry, size: int, sha256: str) -> None:
    where = f"{manifest.source}/{manifest.backup_id}/{entry.key}"
    if size != entry.bytes:
        raise BackupIntegrityError(f"{where}: size {size} differs from the manifest's {entry.bytes}")
    if sha256 != entry.sha256:
        raise BackupIntegrityError(f"{where}: SHA-256 {sha256} differs from the manifest's {entry.sha256}")


# --------------------------------------------------------------------------- restore side


class _VerifyingReader:
    """Streams a body while hashing; at EOF a size/SHA-256 mismatch raises BackupIntegrityError."""

    def __init__(self, body: BinaryIO, manifest: BackupManifest, entry: ObjectEntry) -> None:
        self._body = body
        self._manifest = manifest
        self._entry = entry
        self._digest = hashlib.sha256()
        self._size = 0
        self._done = False

    def read(self, size: int = -1) -> bytes:
        if self._done:
            return b""
        chunk = self._body.read() if size is None or size < 0 else self._body.read(size)
        if chunk:
            self._digest.update(chunk)
            self._size += len(chunk)
            if self._size > self._entry.bytes:
                _check_entry(self._manifest, self._entry, self._size, self._digest.hexdigest())
        if not chunk or (size is not None and size < 0):
            self._done = True
            _check_entry(self._manifest, self._entry, self._size, self._digest.hexdigest())
        return chunk

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self._body.close()


class VerifiedObjectSource:
    """`ObjectSource` over one committed backup: integrity before anything reaches a target.

    `verify_all()` re-hashes every object (size + SHA-256 vs the manifest) —
    the restore calls it before touching the target; `open_object` then streams
    the object again, re-checking as it goes (raising at EOF on a mismatch),
    and decrypts client-side-encrypted objects.
    """

    def __init__(self, store: BackupStore, manifest: BackupManifest) -> None:
        self.store = store
        self.manifest = manifest
        self.verified: set[str] = set()

    def list_objects(self) -> list[str]:
        return [entry.key for entry in self.manifest.objects]

    def expected_count(self, relpath: str) -> int | None:
        return self.manifest.object(relpath).count

    def expected_counts(self, relpath: str) -> dict[str, int]:
        """Per-table/collection counts recorded for one object (may be empty)."""
        return dict(self.manifest.object(relpath).counts)

    def verify_object(self, relpath: str) -> ObjectEntry:
        entry = self.store.verify_object(self.manifest, relpath)
        self.verified.add(relpath)
        return entry

    def verify_all(self) -> None:
        for relpath in self.list_objects():
            self.verify_object(relpath)

    def open_object(self, relpath: str) -> AbstractContextManager[BinaryIO]:
        return self._open(relpath)

    @contextmanager
    def _open(self, relpath: str) -> Iterator[BinaryIO]:
        entry = self.manifest.object(relpath)
        with self.store.open_object(self.manifest.source, self.manifest.backup_id, relpath) as body:
            reader: Any = _VerifyingReader(body, self.manifest, entry)
            if entry.encryption == CLIENT_SIDE_ENCRYPTION:
                from lastgood.storage.crypto import decrypting_reader

                with decrypting_reader(
                    reader, self.manifest.encryption.key or self.store.kms_key_id
                ) as plain:
                    yield plain
                return
            yield reader


# --------------------------------------------------------------------------- write side


class _ObjectUpload:
    """One object being written: bounded buffer → multipart parts (or one put for small objects)."""

    def __init__(
        self, store: BackupStore, key: str, relpath: str, content_type: str, deadline: float | None = None
    ) -> None:
        self.store = store
        self.deadline = deadline
        self.key = key
        self.relpath = relpath
        self.content_type = content_type
        self.count: int | None = None
        self.counts: dict[str, int] = {}
        self.encryption = "aws:kms"
        self.plaintext_bytes: int | None = None
        self._buffer = bytearray()
        self._digest = hashlib.sha256()
        self._size = 0
        self._upload_id: str | None = None
        self._parts: list[dict[str, Any]] = []
        self._futures: list[Future[dict[str, Any]]] = []
        self._slots = threading.BoundedSemaphore(store.max_inflight)
        self._pool: ThreadPoolExecutor | None = None
        self._closed = False

    # ObjectWriter protocol
    def write(self, data: bytes) -> int:
        if self._closed:
            raise ValueError(f"write to closed backup object {self.relpath!r}")
        if self.deadline is not None and time.monotonic() > self.deadline:
            # Stop cleanly (abort, no manifest) before the platform kills the run mid-upload.
            raise BackupError(f"time limit reached while writing {self.relpath!r}; the backup was abandoned")
        view = memoryview(data)
        self._digest.update(view)
        self._size += len(view)
        self._buffer += view
        part_size = self.store.part_size
        while len(self._buffer) >= part_size:
            part = bytes(self._buffer[:part_size])
            del self._buffer[:part_size]
            self._submit(part)
        return len(view)

    @property
    def bytes_written(self) -> int:
        return self._size

    def _submit(self, part: bytes) -> None:
        self._raise_failed_part()
        s3 = self.store.s3
        if self._upload_id is None:
            resp = s3.create_multipart_upload(
                Bucket=self.store.bucket,
                Key=self.key,
                ContentType=self.content_type,
                ChecksumAlgorithm="SHA256",
                **self.store.sse_args(),
            )
            self._upload_id = str(resp["UploadId"])
            self._pool = ThreadPoolExecutor(max_workers=self.store.max_inflight, thread_name_prefix="s3-part")
        number = len(self._futures) + 1
        self._slots.acquire()  # bounds memory: at most max_inflight parts queued or uploading
        assert self._pool is not None
        future = self._pool.submit(self._upload_part, number, part)
        future.add_done_callback(lambda _f: self._slots.release())
        self._futures.append(future)

    def _upload_part(self, number: int, data: bytes) -> dict[str, Any]:
        checksum = _b64(hashlib.sha256(data).digest())
        resp = self.store.s3.upload_part(
            Bucket=self.store.bucket,
            Key=self.key,
            UploadId=self._upload_id,
            PartNumber=number,
            Body=data,
            ChecksumSHA256=checksum,
        )
        return {
            "PartNumber": number,
            "ETag": resp["ETag"],
            "ChecksumSHA256": resp.get("ChecksumSHA256", checksum),
        }

    def _raise_failed_part(self) -> None:
        for future in self._futures:
            if future.done() and future.exception() is not None:
                raise BackupError(
                    f"upload of {self.relpath!r} failed: {type(future.exception()).__name__}: {future.exception()}"
                )

    def finish(self) -> ObjectEntry:
        """Upload the tail, complete the upload and return the manifest entry."""
        self._closed = True
        s3 = self.store.s3
        if self._upload_id is None:
            body = bytes(self._buffer)
            self._buffer.clear()
            s3.put_object(
                Bucket=self.store.bucket,
                Key=self.key,
                Body=body,
                ContentType=self.content_type,
                ChecksumSHA256=_b64(hashlib.sha256(body).digest()),
                **self.store.sse_args(),
            )
            parts = 1
        else:
            if self._buffer:
                tail = bytes(self._buffer)
                self._buffer.clear()
                self._submit(tail)
            results = [future.result() for future in self._futures]
            self._shutdown()
            s3.complete_multipart_upload(
                Bucket=self.store.bucket,
                Key=self.key,
                UploadId=self._upload_id,
                MultipartUpload={"Parts": results},
            )
            parts = len(results)
            self._upload_id = None
        return ObjectEntry(
            key=self.relpath,
            bytes=self._size,
            sha256=self._digest.hexdigest(),
            count=self.count,
            content_type=self.content_type,
            encryption=self.encryption,
            parts=parts,
            plaintext_bytes=self.plaintext_bytes,
            counts=dict(self.counts),
        )

    def abort(self) -> None:
        """Stop: wait for in-flight parts, then abort the multipart upload (no orphan parts)."""
        self._closed = True
        self._buffer.clear()
        for future in self._futures:
            future.cancel()
        self._shutdown()
        if self._upload_id is None:
            return
        upload_id, self._upload_id = self._upload_id, None
        try:
            self.store.s3.abort_multipart_upload(Bucket=self.store.bucket, Key=self.key, UploadId=upload_id)
        except (ClientError, BotoCoreError) as exc:
            # The bucket's AbortIncompleteMultipartUpload lifecycle rule is the backstop.
            logger.error("could not abort multipart upload", extra={"key": self.key, "error": str(exc)[:300]})

    def _shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


class BackupWriter:
    """`DumpTarget` for one backup: streams objects, then commits the manifest last."""

    def __init__(
        self,
        store: BackupStore,
        source: str,
        backup_id: str,
        *,
        client_side_encryption: bool = False,
        deadline: float | None = None,
    ) -> None:
        self.store = store
        self.deadline = deadline
        self.source = source
        self.backup_id = backup_id
        self.client_side_encryption = client_side_encryption
        self.entries: list[ObjectEntry] = []
        self._open: dict[str, _ObjectUpload] = {}
        self._written_keys: list[str] = []
        self.committed = False

    @property
    def prefix(self) -> str:
        return backup_prefix(self.source, self.backup_id)

    @property
    def bytes_written(self) -> int:
        """Bytes of completed objects plus those streamed so far into open ones."""
        return sum(e.bytes for e in self.entries) + sum(u.bytes_written for u in self._open.values())

    def open_object(
        self, relpath: str, *, content_type: str = "application/octet-stream"
    ) -> AbstractContextManager[Any]:
        """Stream `backups/<source>/<backup_id>/<relpath>`; an exception in the block aborts it."""
        return self._object(relpath, content_type)

    @contextmanager
    def _object(self, relpath: str, content_type: str) -> Iterator[Any]:
        if self.committed:
            raise BackupError(f"backup {self.backup_id} is already committed")
        key = object_key(self.source, self.backup_id, relpath)
        if relpath in self._open or any(e.key == relpath for e in self.entries):
            raise BackupError(f"backup object {relpath!r} written twice")
        upload = _ObjectUpload(self.store, key, relpath, content_type, self.deadline)
        self._open[relpath] = upload
        try:
            if self.client_side_encryption:
                from lastgood.storage.crypto import EncryptingWriter

                upload.encryption = CLIENT_SIDE_ENCRYPTION
                with EncryptingWriter(upload, self.store.kms_key_id) as plain:
                    yield plain
                upload.count = plain.count
                upload.counts = dict(getattr(plain, "counts", {}) or {})
                upload.plaintext_bytes = plain.bytes_written
            else:
                yield upload
            entry = upload.finish()
        except BaseException:
            upload.abort()
            raise
        finally:
            self._open.pop(relpath, None)
        self._written_keys.append(key)
        self.entries.append(entry)
        logger.debug("backup object stored", extra={"key": key, "bytes": entry.bytes, "parts": entry.parts})

    def abort_open(self) -> None:
        for upload in list(self._open.values()):
            upload.abort()
        self._open.clear()

    def commit(self, manifest: BackupManifest) -> str:
        """Write `manifest.json` (IfNoneMatch="*") after checking it lists exactly what was written."""
        if self._open:
            raise BackupError(f"cannot commit {self.backup_id}: objects still open: {sorted(self._open)}")
        if manifest.backup_id != self.backup_id or manifest.source != self.source:
            raise BackupError("manifest does not describe this backup")
        written = {(e.key, e.sha256, e.bytes) for e in self.entries}
        listed = {(e.key, e.sha256, e.bytes) for e in manifest.objects}
        if written != listed:
            raise BackupError(f"manifest objects differ from the objects written for {self.backup_id}")
        manifest.check_consistent()
        key = manifest_key(self.source, self.backup_id)
        try:
            self.store.s3.put_object(
                Bucket=self.store.bucket,
                Key=key,
                Body=manifest.to_bytes(),
                ContentType="application/json",
                ChecksumSHA256=_b64(hashlib.sha256(manifest.to_bytes()).digest()),
                IfNoneMatch="*",
                **self.store.sse_args(),
            )
        except ClientError as exc:
            if _is_precondition(exc):
                raise BackupError(
                    f"backup {self.backup_id} already has a manifest; refusing to overwrite"
                ) from None
            raise
        self.committed = True
        return key

    def discard(self) -> None:
        """After a failed run: abort open uploads and delete this backup's completed objects."""
        self.abort_open()
        if self.committed or not self._written_keys:
            return
        keys, self._written_keys = self._written_keys, []
        try:
            self.store.s3.delete_objects(
                Bucket=self.store.bucket, Delete={"Objects": [{"Key": k} for k in keys], "Quiet": True}
            )
        except (ClientError, BotoCoreError) as exc:
            # Left as an incomplete backup (no manifest): never restored, removed by prune's grace rule.
            logger.warning("could not delete a failed backup's objects", extra={"error": str(exc)[:200]})

    def __enter__(self) -> BackupWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is not None or not self.committed:
            self.discard()
