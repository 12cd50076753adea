"""Change segments in the backup bucket: framing, parts, the manifest written last, reading back.

A part is a zlib stream of frames `>QI` (message LSN, length) + the raw pgoutput message,
optionally encrypted client-side (`lastgood.storage.crypto`), always SSE-KMS; its SHA-256
and size (of the stored bytes) are in the segment manifest. Every object is a create-once
write (`IfNoneMatch="*"`): a committed segment is immutable, and two captures racing for the
same sequence number cannot both commit it.
"""

from __future__ import annotations

import hashlib
import secrets
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field

from botocore.exceptions import ClientError

from lastgood.backups import segment_keys as keys
from lastgood.backups.store import BackupStore
from lastgood.core.errors import BackupError, BackupIntegrityError
from lastgood.pitr.model import SegmentManifest, SegmentPart
from lastgood.storage.s3 import is_not_found, is_precondition_failed

_FRAME = struct.Struct(">QI")


def frame(lsn: int, data: bytes) -> bytes:
    return _FRAME.pack(lsn, len(data)) + data


class FrameReader:
    """Frames out of a segment's parts in order; a frame may span parts (stitched here)."""

    def __init__(self, where: str) -> None:
        self.where = where
        self._pending = b""

    def feed(self, plain: bytes) -> Iterator[tuple[int, bytes]]:
        data = self._pending + plain if self._pending else plain
        pos = 0
        while pos + _FRAME.size <= len(data):
            lsn, size = _FRAME.unpack_from(data, pos)
            if pos + _FRAME.size + size > len(data):
                break
            start = pos + _FRAME.size
            yield lsn, data[start : start + size]
            pos = start + size
        self._pending = data[pos:]

    def finish(self) -> None:
        if self._pending:
            raise BackupIntegrityError(
                f"{self.where}: ends inside a frame ({len(self._pending)} bytes left over)"
            )


@dataclass
class PartWriter:
    """Collects frames and stores a part each time `max_bytes` of plaintext is reached."""

    store: BackupStore
    source: str
    base_id: str
    seq: int
    max_bytes: int
    client_side: bool = False
    run: str = field(default_factory=lambda: secrets.token_hex(4))
    parts: list[SegmentPart] = field(default_factory=list)
    _buffer: bytearray = field(default_factory=bytearray)

    def write(self, data: bytes) -> None:
        self._buffer += data
        while len(self._buffer) >= self.max_bytes:
            chunk = bytes(self._buffer[: self.max_bytes])
            del self._buffer[: self.max_bytes]
            self._store(chunk)

    def close(self) -> list[SegmentPart]:
        if self._buffer:
            self._store(bytes(self._buffer))
            self._buffer.clear()
        return self.parts

    def _store(self, plain: bytes) -> None:
        body = zlib.compress(plain, 6)
        if self.client_side:
            from lastgood.storage.crypto import encrypt_bytes

            if not self.store.kms_key_id:
                raise BackupError("client_side_encryption needs KMS_KEY_ID for PITR segments")
            body = encrypt_bytes(body, self.store.kms_key_id)
        name = keys.part_name(self.run, len(self.parts) + 1)
        key = keys.part_key(self.source, self.base_id, self.seq, name)
        self.store.put_bytes(key, body, content_type="application/octet-stream", if_none_match=True)
        self.parts.append(
            SegmentPart(
                name=name,
                bytes=len(body),
                sha256=hashlib.sha256(body).hexdigest(),
                plaintext_bytes=len(plain),
            )
        )


def commit_segment(store: BackupStore, manifest: SegmentManifest) -> None:
    """Write `segment.json` (create-once). A 412 whose stored document is ours is our own commit
    (a lost response retried); another one is a concurrent capture's: BackupError."""
    key = keys.segment_manifest_key(manifest.source, manifest.base_id, manifest.seq)
    body = manifest.to_bytes()
    try:
        store.put_bytes(key, body, if_none_match=True)
    except ClientError as exc:
        if not is_precondition_failed(exc):
            raise
        stored = store.s3.get_object(Bucket=store.bucket, Key=key)["Body"].read()
        if stored != body:
            raise BackupError(
                f"segment {manifest.seq} of {manifest.source}/{manifest.base_id} was committed by another "
                "capture run meanwhile; this run's changes are not committed and the slot was not advanced"
            ) from None


def list_segments(store: BackupStore, source: str, base_id: str) -> list[int]:
    """Sequence numbers of the committed segments of a base, ascending."""
    seqs: list[int] = []
    paginator = store.s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=store.bucket, Prefix=keys.segments_prefix(source, base_id)):
        for obj in page.get("Contents", []):
            seq = keys.segment_seq(obj["Key"])
            if seq is not None:
                seqs.append(seq)
    return sorted(seqs)


def read_segment(store: BackupStore, source: str, base_id: str, seq: int) -> SegmentManifest:
    key = keys.segment_manifest_key(source, base_id, seq)
    where = f"s3://{store.bucket}/{key}"
    try:
        body = store.s3.get_object(Bucket=store.bucket, Key=key)["Body"].read()
    except ClientError as exc:
        if is_not_found(exc):
            raise BackupIntegrityError(f"{where} is missing") from None
        raise
    manifest = SegmentManifest.from_json(body, where=where)
    if (manifest.source, manifest.base_id, manifest.seq) != (source, base_id, seq):
        raise BackupIntegrityError(f"{where} describes {manifest.source}/{manifest.base_id} #{manifest.seq}")
    return manifest


def read_part(store: BackupStore, manifest: SegmentManifest, part: SegmentPart) -> bytes:
    """The part's plaintext, after its size and SHA-256 match the manifest (BackupIntegrityError)."""
    key = keys.part_key(manifest.source, manifest.base_id, manifest.seq, part.name)
    where = f"s3://{store.bucket}/{key}"
    try:
        body: bytes = store.s3.get_object(Bucket=store.bucket, Key=key)["Body"].read()
    except ClientError as exc:
        if is_not_found(exc):
            raise BackupIntegrityError(f"{where} is missing") from None
        raise
    if len(body) != part.bytes or hashlib.sha256(body).hexdigest() != part.sha256:
        raise BackupIntegrityError(f"{where}: size or SHA-256 differs from its segment manifest (corrupt)")
    if manifest.client_side:
        from lastgood.storage.crypto import decrypt_bytes

        body = decrypt_bytes(body, store.kms_key_id or "")
    try:
        plain = zlib.decompress(body)
    except zlib.error as exc:
        raise BackupIntegrityError(f"{where}: does not decompress ({exc})") from None
    if len(plain) != part.plaintext_bytes:
        raise BackupIntegrityError(
            f"{where}: {len(plain)} plaintext bytes, the manifest says {part.plaintext_bytes}"
        )
    return plain


def check_part(store: BackupStore, manifest: SegmentManifest, part: SegmentPart) -> None:
    read_part(store, manifest, part)
