"""Streaming a backup object into a transactional restore: the tail is held until the whole is proven.

`HeldTailReader` reads one object's stored bytes (a pinned S3 body) in large
chunks, hashing them as they pass, and hands them on at once — all but the last
`hold` bytes (by the manifest's size). Those are released only after the body
has ended and its size and SHA-256 equal the manifest's; a mismatch raises
`BackupIntegrityError` instead, and the tail is never handed on.

It is for a consumer that cannot finish without the end of the object and
applies nothing until it finishes: `pg_restore --single-transaction` reading
a custom-format archive from stdin needs the archive's last bytes (the end
marker of its last data block) before it builds the indexes and commits. So a
restore overlaps the download with pg_restore's work, yet a byte that fails the
check rolls the whole transaction back (the caller kills pg_restore): nothing
from the object is ever committed. `released` tells the caller whether the
consumer got everything — a consumer that ended before the tail was released
never saw the end of the object.

Memory: one chunk plus the held tail.
"""

from __future__ import annotations

import hashlib
from typing import BinaryIO

from lastgood.backups.manifest import BackupManifest, ObjectEntry
from lastgood.backups.reader import check_entry

HOLD = 64 * 1024
STREAM_CHUNK = 4 * 1024 * 1024


class HeldTailReader:
    """`read(n)`: the object's bytes as they arrive, except the last `hold`, given only once proven."""

    def __init__(
        self, body: BinaryIO, manifest: BackupManifest, entry: ObjectEntry, *, hold: int = HOLD
    ) -> None:
        self._body = body
        self._manifest = manifest
        self._entry = entry
        self._digest = hashlib.sha256()
        self._size = 0  # bytes read from the body
        self._given = 0  # bytes handed on
        self._boundary = max(0, entry.bytes - max(1, hold))  # bytes past this wait for the proof
        self._held = bytearray()
        self._proven = False
        self.released = False  # the held tail was handed on (the consumer got the whole object)

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        want = STREAM_CHUNK if size is None or size < 0 else max(1, size)
        if self._given < self._boundary:
            chunk = self._body.read(want)
            if chunk:
                self._take(chunk)
                free = self._boundary - self._given
                if len(chunk) <= free:
                    self._given += len(chunk)
                    return chunk
                # past the boundary: give what comes before it, hold the rest
                self._held += chunk[free:]
                self._given += free
                if free:
                    return chunk[:free]
            # the body ended (or reached the boundary): the rest waits for the proof
        if not self._proven:
            self._prove()
        if self._held:
            out = bytes(self._held[:want])
            del self._held[:want]
            self._given += len(out)
            self.released = True
            return out
        self.released = True
        return b""

    def drain(self) -> None:
        """Read (and check) the rest of the body without handing anything on: BackupIntegrityError
        if the object is not the manifest's."""
        if self._proven:
            return
        while chunk := self._body.read(STREAM_CHUNK):
            self._take(chunk)
        check_entry(self._manifest, self._entry, self._size, self._digest.hexdigest())
        self._proven = True

    def _take(self, chunk: bytes) -> None:
        self._digest.update(chunk)
        self._size += len(chunk)
        if self._size > self._entry.bytes:  # longer than the manifest says: refuse at once
            check_entry(self._manifest, self._entry, self._size, self._digest.hexdigest())

    def _prove(self) -> None:
        while chunk := self._body.read(STREAM_CHUNK):
            self._take(chunk)
            self._held += chunk
        check_entry(self._manifest, self._entry, self._size, self._digest.hexdigest())
        self._proven = True

    def close(self) -> None:
        self._body.close()
