"""The restore side of the backup bucket: objects are checked against the manifest before use.

`VerifiedObjectSource` is the engines' `ObjectSource` over one committed
backup (`BackupStore.object_source(manifest)`): `verify_all()` re-hashes every
object (size + SHA-256) before the restore touches its target; `open_object`
streams an object again through `VerifyingReader`, which re-checks while
reading (raising `BackupIntegrityError` at EOF, or as soon as the object runs
past its recorded size), and decrypts client-side-encrypted objects.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Any, BinaryIO

from lastgood.backups.manifest import BackupManifest, ObjectEntry
from lastgood.core.errors import BackupIntegrityError
from lastgood.storage.crypto import CLIENT_SIDE_ENCRYPTION

if TYPE_CHECKING:
    from lastgood.backups.store import BackupStore


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
            reader: Any = VerifyingReader(body, self.manifest, entry)
            if entry.encryption == CLIENT_SIDE_ENCRYPTION:
                from lastgood.storage.crypto import decrypting_reader

                with decrypting_reader(
                    reader, self.manifest.encryption.key or self.store.kms_key_id
                ) as plain:
                    yield plain
                return
            yield reader
