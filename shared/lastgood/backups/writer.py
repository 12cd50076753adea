"""The write side of one backup: the `DumpTarget` an engine streams into, committed by its manifest.

`BackupStore.writer(source, backup_id)` returns a `BackupWriter`. Each
`open_object(relpath)` is a context manager around a
`lastgood.storage.multipart.MultipartUpload` of
`backups/<source>/<backup_id>/<relpath>` (SSE-KMS; optionally encrypted
client-side first); the engine writes into it and may set `count` / `counts`,
which go into the object's manifest entry. If the block raises, the upload is
aborted (no orphan parts) and the exception propagates. Every object is a
conditional create (`IfNoneMatch="*"`, as the bucket policy requires under
`backups/`): nothing of a backup is ever replaced.

The commit protocol. `commit(manifest)` writes `manifest.json` with
`IfNoneMatch="*"` after checking it lists exactly what was written. When the
answer is lost (a connection error after the request reached S3, or the
retry's 412 because the first attempt was stored) the writer reads the stored
manifest back: the same content is our own commit → success; a different one
is refused (and nothing is deleted). `discard()` removes what a failed run
wrote, but never once a manifest exists for the backup (or when it cannot
tell): those objects are left for prune's grace rule instead.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from types import TracebackType
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from lastgood.backups.keys import backup_prefix, is_lastgood_document, manifest_key, object_key
from lastgood.backups.manifest import BackupManifest, ObjectEntry
from lastgood.core.errors import BackupError, BackupIntegrityError
from lastgood.core.observability import logger
from lastgood.storage.crypto import CLIENT_SIDE_ENCRYPTION
from lastgood.storage.multipart import MultipartUpload
from lastgood.storage.s3 import error_code, is_not_found, is_precondition_failed

if TYPE_CHECKING:
    from lastgood.backups.store import BackupStore


class _BackupObject:
    """One backup object being written: the engine's `ObjectWriter` over a multipart upload."""

    def __init__(
        self, store: BackupStore, key: str, relpath: str, content_type: str, deadline: float | None = None
    ) -> None:
        self.deadline = deadline
        self.on_bytes = store.on_bytes
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
            create_only=True,
        )

    # ObjectWriter protocol
    def write(self, data: bytes) -> int:
        if self._closed:
            raise ValueError(f"write to closed backup object {self.relpath!r}")
        if self.deadline is not None and time.monotonic() > self.deadline:
            # Stop cleanly (abort, no manifest) before the platform kills the run mid-upload.
            raise BackupError(f"time limit reached while writing {self.relpath!r}; the backup was abandoned")
        written = self._upload.write(data)
        if self.on_bytes is not None:
            self.on_bytes(len(data))
        return written

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
        if is_lastgood_document(relpath):
            raise BackupError(f"backup object path {relpath!r} is reserved for lastgood's own records")
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
            try:
                entry = upload.finish()
            except ClientError as exc:
                if is_precondition_failed(exc):  # conditional create: nothing is ever replaced
                    raise BackupError(f"{key} already exists; refusing to overwrite it") from None
                raise
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
        body = manifest.to_bytes()
        try:
            self.store.put_bytes(key, body, if_none_match=True)
        except (ClientError, BotoCoreError) as exc:
            # 412: a manifest is there (perhaps ours, from an attempt whose answer was lost);
            # any other error may also have followed a stored write. Look before deciding.
            stored = self._stored_manifest(key, exc)
            if stored is None:
                raise
            if not _same_manifest(stored, body):
                raise BackupError(
                    f"backup {self.backup_id} already has a different manifest; refusing to overwrite it "
                    "(its objects are left in place)"
                ) from None
            logger.warning(
                "manifest write answered with an error but our manifest is stored: committed",
                extra={"key": key, "error": error_code(exc) or type(exc).__name__},
            )
        self.committed = True
        return key

    def _stored_manifest(self, key: str, cause: Exception) -> bytes | None:
        """The stored manifest's bytes after a failed put; None if there is none (or no way to tell
        when the put itself was not refused by a 412)."""
        try:
            return bytes(self.store.s3.get_object(Bucket=self.store.bucket, Key=key)["Body"].read())
        except ClientError as exc:
            if is_not_found(exc):
                if isinstance(cause, ClientError) and is_precondition_failed(cause):
                    raise BackupError(
                        f"backup {self.backup_id}: the manifest write was refused (412) but no manifest "
                        "is readable; objects left in place"
                    ) from None
                return None
            if isinstance(cause, ClientError) and is_precondition_failed(cause):
                raise BackupError(
                    f"backup {self.backup_id} already has a manifest that could not be read back "
                    f"({error_code(exc)}); refusing to overwrite it"
                ) from None
            return None
        except BotoCoreError:
            return None

    def discard(self) -> None:
        """After a failed run: abort open uploads and delete this backup's completed objects.

        Never once a manifest exists for the backup, nor when that cannot be checked: then
        the objects stay (an incomplete backup is never restored; prune's grace rule removes it).
        """
        self.abort_open()
        if self.committed or not self._written_keys:
            return
        try:
            if self.store.has_manifest(self.source, self.backup_id):
                logger.warning(
                    "a manifest exists for this backup: its objects are kept",
                    extra={"backup": self.backup_id},
                )
                self._written_keys = []
                return
        except (ClientError, BotoCoreError) as exc:
            logger.warning(
                "could not check for a manifest: the failed backup's objects are left in place",
                extra={"backup": self.backup_id, "error": str(exc)[:200]},
            )
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


def _same_manifest(stored: bytes, ours: bytes) -> bool:
    """Our own commit: byte-identical, or the same manifest content."""
    if stored == ours:
        return True
    try:
        return BackupManifest.from_json(stored).to_dict() == BackupManifest.from_json(ours).to_dict()
    except BackupIntegrityError:
        return False
