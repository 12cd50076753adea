"""The restore side of the backup bucket: a restore applies exactly the bytes it verified.

`VerifiedObjectSource` is the engines' `ObjectSource` over one committed
backup (`BackupStore.object_source(manifest)`): `verify_all()` re-hashes every
object (size + SHA-256) before the restore touches its target and pins each to
the stored version that passed (its `ObjectPin`: ETag and, in the versioned
backup bucket, VersionId). `open_object` then reads the object again, pinned to
that version (`IfMatch` + `VersionId`: bytes changed in between are refused by
S3 or never served), into a spool file while hashing it through
`VerifyingReader`; only once the whole object is proven again does the engine
get it (decrypted, for client-side-encrypted objects). No engine ever applies a
byte before the end-of-object check: a mismatch found there leaves nothing of
that object in the target. Memory stays bounded (1 MiB chunks); the spool is a
temporary file (`TMPDIR`, `/tmp` in Lambda) as large as the biggest object,
refused up front when it would not fit.

`stream_object` is the other way, for an engine that commits nothing before the end of
the object (PostgreSQL: pg_restore in one transaction): one pinned read, no spool, the
bytes handed on as they arrive but the object's tail only once the whole object is
proven (`lastgood.backups.heldtail`), so a mismatch rolls the engine's transaction back.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO, cast

from lastgood.backups.manifest import BackupManifest, ObjectEntry
from lastgood.core.errors import BackupIntegrityError, RestoreError
from lastgood.storage.crypto import CLIENT_SIDE_ENCRYPTION

if TYPE_CHECKING:
    from lastgood.backups.store import BackupStore


SPOOL_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class ObjectPin:
    """The stored version of an object that was verified: its ETag and (versioned bucket) VersionId."""

    etag: str | None
    version_id: str | None = None

    @classmethod
    def of(cls, response: Mapping[str, Any]) -> ObjectPin:
        version = response.get("VersionId")
        return cls(
            etag=str(response["ETag"]) if response.get("ETag") else None,
            version_id=str(version) if version and version != "null" else None,
        )

    def get_args(self) -> dict[str, str]:
        """GetObject arguments that read exactly this version (or fail)."""
        args: dict[str, str] = {}
        if self.etag:
            args["IfMatch"] = self.etag
        if self.version_id:
            args["VersionId"] = self.version_id
        return args


def check_entry(manifest: BackupManifest, entry: ObjectEntry, size: int, sha256: str) -> None:
    """BackupIntegrityError unless `size` and `sha256` are the manifest's for `entry`."""
    where = f"{manifest.source}/{manifest.backup_id}/{entry.key}"
    if size != entry.bytes:
        raise BackupIntegrityError(f"{where}: size {size} differs from the manifest's {entry.bytes}")
    if sha256 != entry.sha256:
        raise BackupIntegrityError(f"{where}: SHA-256 {sha256} differs from the manifest's {entry.sha256}")


class VerifyingReader:
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
                check_entry(self._manifest, self._entry, self._size, self._digest.hexdigest())
        if not chunk or (size is not None and size < 0):
            self._done = True
            check_entry(self._manifest, self._entry, self._size, self._digest.hexdigest())
        return chunk

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self._body.close()


class VerifiedObjectSource:
    """`ObjectSource` over one committed backup: only proven bytes reach a target.

    `verify_all()` re-hashes every object (size + SHA-256 vs the manifest) and
    pins each to the version that passed — the restore calls it before touching
    the target; `open_object` re-reads the pinned version into a spool file,
    re-checking it, and yields it (decrypted when client-side encrypted) only
    once the whole object is proven. `delivered` lists the objects handed out.
    """

    def __init__(self, store: BackupStore, manifest: BackupManifest, *, spool_dir: str | None = None) -> None:
        self.store = store
        self.manifest = manifest
        self.verified: set[str] = set()
        self.pins: dict[str, ObjectPin] = {}
        self.delivered: list[str] = []
        self.spool_dir = spool_dir

    def list_objects(self) -> list[str]:
        return [entry.key for entry in self.manifest.objects]

    def expected_count(self, relpath: str) -> int | None:
        return self.manifest.object(relpath).count

    def expected_counts(self, relpath: str) -> dict[str, int]:
        """Per-table/collection counts recorded for one object (may be empty)."""
        return dict(self.manifest.object(relpath).counts)

    def verify_object(self, relpath: str) -> ObjectEntry:
        self.pins[relpath] = self.store.pin_object(self.manifest, relpath)
        self.verified.add(relpath)
        return self.manifest.object(relpath)

    def verify_all(self) -> None:
        for relpath in self.list_objects():
            self.verify_object(relpath)

    def open_object(self, relpath: str) -> AbstractContextManager[BinaryIO]:
        return self._open(relpath)

    def stream_object(self, relpath: str) -> AbstractContextManager[BinaryIO]:
        """For a consumer that commits nothing before the end of the object (pg_restore in one
        transaction): the pinned bytes as they arrive, the tail held until the whole object is
        proven (`lastgood.backups.heldtail`), no spool. Client-side-encrypted objects are spooled
        and proven first (`open_object`)."""
        if self.manifest.object(relpath).encryption == CLIENT_SIDE_ENCRYPTION:
            return self._open(relpath)
        return self._stream(relpath)

    @contextmanager
    def _stream(self, relpath: str) -> Iterator[BinaryIO]:
        from lastgood.backups.heldtail import HeldTailReader

        entry = self.manifest.object(relpath)
        with self.store.open_pinned(
            self.manifest.source, self.manifest.backup_id, relpath, self.pins.get(relpath)
        ) as (body, pin):
            self.pins.setdefault(relpath, pin)
            try:
                yield cast(BinaryIO, HeldTailReader(body, self.manifest, entry))
                self.delivered.append(relpath)
            except BackupIntegrityError as exc:
                text = str(exc)
                if relpath in self.verified and "after it was verified" not in text:
                    text += " (its bytes changed after it was verified)"
                raise BackupIntegrityError(
                    f"{text}; nothing from {relpath} was applied (its restore was rolled back)"
                ) from None

    @contextmanager
    def _open(self, relpath: str) -> Iterator[BinaryIO]:
        entry = self.manifest.object(relpath)
        spool_dir = self.spool_dir or tempfile.gettempdir()
        free = shutil.disk_usage(spool_dir).free
        if free < entry.bytes:
            raise RestoreError(
                f"{relpath}: {entry.bytes} bytes do not fit in {spool_dir} ({free} free); the restore "
                "proves each object in a spool file before applying it: point TMPDIR at a larger disk "
                "(in Lambda, raise the function's EphemeralStorage)"
            )
        with tempfile.TemporaryFile(dir=spool_dir, prefix="lastgood-restore-") as spool:
            self._spool(relpath, entry, cast(BinaryIO, spool))
            spool.seek(0)
            self.delivered.append(relpath)
            if entry.encryption == CLIENT_SIDE_ENCRYPTION:
                from lastgood.storage.crypto import decrypting_reader

                with decrypting_reader(spool, self.manifest.encryption.key or self.store.kms_key_id) as plain:
                    yield plain
                return
            yield cast(BinaryIO, spool)

    def _spool(self, relpath: str, entry: ObjectEntry, spool: BinaryIO) -> None:
        """Copy the pinned version into `spool`, proving size and SHA-256 at its end."""
        try:
            with self.store.open_object(
                self.manifest.source, self.manifest.backup_id, relpath, pin=self.pins.get(relpath)
            ) as body:
                reader = VerifyingReader(body, self.manifest, entry)
                while chunk := reader.read(SPOOL_CHUNK):
                    spool.write(chunk)
        except BackupIntegrityError as exc:
            text = str(exc)
            if relpath in self.verified and "after it was verified" not in text:
                text += " (its bytes changed after it was verified)"
            raise BackupIntegrityError(f"{text}; nothing from {relpath} was applied") from None
