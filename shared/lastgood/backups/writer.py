"""The write side of one backup: the `DumpTarget` an engine streams into, committed by its manifest.

`BackupStore.writer(source, backup_id)` returns a `BackupWriter`. Each
`open_object(relpath)` is a context manager around a
`lastgood.storage.multipart.MultipartUpload` of
`backups/<source>/<backup_id>/<relpath>` (SSE-KMS; optionally encrypted
client-side first); the engine writes into it and may set `count` / `counts`,
which go into the object's manifest entry. If the block raises, the upload is
aborted (no orphan parts) and the exception propagates. `commit(manifest)`
writes `manifest.json` with `IfNoneMatch="*"` after checking it lists exactly
what was written; `discard()` removes what a failed run wrote.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from types import TracebackType
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from lastgood.backups.keys import backup_prefix, manifest_key, object_key
from lastgood.backups.manifest import BackupManifest, ObjectEntry
from lastgood.core.errors import BackupError
from lastgood.core.observability import logger
from lastgood.storage.crypto import CLIENT_SIDE_ENCRYPTION
from lastgood.storage.multipart import MultipartUpload
from lastgood.storage.s3 import checksum_sha256, is_precondition_failed

if TYPE_CHECKING:
    from lastgood.backups.store import BackupStore


class _BackupObject:
    """One backup object being written: the engine's `ObjectWriter` over a multipart upload."""

    def __init__(
        self, store: BackupStore, key: str, relpath: str, content_type: str, deadline: float | None = None
    ) -> None:
        self.deadline = deadline
        self.key = key
        self.relpath = relpath
        self.content_type = content_type
        self.count: int | None = None
        self.counts: dict[str, int] = {}
        self.encryption = "aws:kms"
        self.plaintext_bytes: int | None = None
        self._closed = False
        self._upload = MultipartUpload(
            store.s3,
            store.bucket,
            key,
            content_type=content_type,
            part_size=store.part_size,
            max_inflight=store.max_inflight,
            extra_args=store.sse_args(),
            name=relpath,
            error=BackupError,
        )

    # ObjectWriter protocol
    def write(self, data: bytes) -> int:
        if self._closed:
            raise ValueError(f"write to closed backup object {self.relpath!r}")
        if self.deadline is not None and time.monotonic() > self.deadline:
            # Stop cleanly (abort, no manifest) before the platform kills the run mid-upload.
            raise BackupError(f"time limit reached while writing {self.relpath!r}; the backup was abandoned")
        return self._upload.write(data)

    @property
    def bytes_written(self) -> int:
        return self._upload.bytes_written

    def finish(self) -> ObjectEntry:
        """Upload the tail, complete the upload and return the manifest entry."""
        self._closed = True
        stored = self._upload.finish()
        return ObjectEntry(
            key=self.relpath,
            bytes=stored.bytes,
            sha256=stored.sha256,
            count=self.count,
            content_type=self.content_type,
            encryption=self.encryption,
            parts=stored.parts,
            plaintext_bytes=self.plaintext_bytes,
            counts=dict(self.counts),
        )

    def abort(self) -> None:
        """Stop: wait for in-flight parts, then abort the multipart upload (no orphan parts)."""
        self._closed = True
        self._upload.abort()


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
        self._open: dict[str, _BackupObject] = {}
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
        upload = _BackupObject(self.store, key, relpath, content_type, self.deadline)
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
                ChecksumSHA256=checksum_sha256(manifest.to_bytes()),
                IfNoneMatch="*",
                **self.store.sse_args(),
            )
        except ClientError as exc:
            if is_precondition_failed(exc):
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
