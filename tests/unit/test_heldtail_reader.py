"""The held-tail stream: bytes flow as they arrive, but the object's end only once it is proven whole."""

from __future__ import annotations

import hashlib
import io
from datetime import UTC, datetime

import pytest
from lastgood.backups.heldtail import HeldTailReader
from lastgood.backups.manifest import BackupManifest, ObjectEntry
from lastgood.core.errors import BackupIntegrityError

T0 = datetime(2026, 6, 1, tzinfo=UTC)
DATA = bytes(range(256)) * 4096  # 1 MiB


def _manifest(data: bytes) -> tuple[BackupManifest, ObjectEntry]:
    entry = ObjectEntry(key="app.dump", bytes=len(data), sha256=hashlib.sha256(data).hexdigest())
    manifest = BackupManifest.build(
        backup_id="20260601T000000Z-aaaaaa",
        source="pg",
        engine="postgres",
        started_at=T0,
        finished_at=T0,
        objects=[entry],
    )
    return manifest, entry


class _Body(io.BytesIO):
    """A body that records how far it has been read (what was downloaded when)."""


def _reader(stored: bytes, committed: bytes = DATA, hold: int = 4096) -> tuple[HeldTailReader, _Body]:
    manifest, entry = _manifest(committed)
    body = _Body(stored)
    return HeldTailReader(body, manifest, entry, hold=hold), body


def _read_all(reader: HeldTailReader, size: int = 100_000) -> bytes:
    out = bytearray()
    while chunk := reader.read(size):
        out += chunk
    return bytes(out)


def test_an_intact_object_streams_whole_and_its_tail_only_after_the_body_ended() -> None:
    # Given an object that matches its manifest
    reader, body = _reader(DATA)
    # When it is read in chunks smaller than the object
    first = reader.read(100_000)
    # Then bytes flow before the body has been read to its end (the download overlaps the consumer)
    assert first == DATA[:100_000] and body.tell() < len(DATA)
    given = bytearray(first)
    while not reader.released and (chunk := reader.read(100_000)):
        if len(given) + len(chunk) > len(DATA) - 4096:
            # And nothing of the held tail is handed on before the whole body was read and checked
            assert body.tell() == len(DATA)
        given += chunk
    given += _read_all(reader)
    assert bytes(given) == DATA and reader.released


@pytest.mark.parametrize(
    "at", [10, len(DATA) // 2, len(DATA) - 4097, len(DATA) - 1], ids=["start", "middle", "edge", "last"]
)
def test_a_flipped_byte_anywhere_is_refused_before_the_tail_is_given(at: int) -> None:
    # Given the stored bytes with one byte flipped
    stored = bytearray(DATA)
    stored[at] ^= 0x01
    reader, _ = _reader(bytes(stored))
    given = bytearray()
    # When it is streamed
    with pytest.raises(BackupIntegrityError, match="SHA-256"):
        while chunk := reader.read(65536):
            given += chunk
    # Then the consumer never got the object's last bytes: it cannot have finished (or committed)
    assert len(given) <= len(DATA) - 4096 and not reader.released


def test_a_truncated_or_longer_object_is_refused() -> None:
    # A body shorter than the manifest says never releases its (missing) end
    short, _ = _reader(DATA[:-10])
    with pytest.raises(BackupIntegrityError, match="size"):
        _read_all(short)
    assert not short.released
    # And a longer one is refused as soon as it passes the manifest's size
    long, _ = _reader(DATA + b"extra")
    with pytest.raises(BackupIntegrityError, match="size"):
        _read_all(long)


def test_an_object_smaller_than_the_tail_is_proven_before_its_first_byte() -> None:
    # Given a tiny object (smaller than the held tail)
    data = b"PGDMP tiny"
    reader, body = _reader(data, committed=data, hold=4096)
    # When the first read returns
    first = reader.read(3)
    # Then the whole body was read and checked first
    assert body.tell() == len(data) and first == b"PGD"
    assert first + _read_all(reader) == data


def test_drain_checks_the_rest_without_handing_it_on() -> None:
    # Given a consumer that stopped early (pg_restore failed) over a damaged object
    stored = bytearray(DATA)
    stored[-1] ^= 0x01
    reader, _ = _reader(bytes(stored))
    reader.read(1000)
    # When the rest is drained, the damage is reported
    with pytest.raises(BackupIntegrityError, match="SHA-256"):
        reader.drain()
    # And over an intact object, draining passes
    good, _ = _reader(DATA)
    good.read(1000)
    good.drain()
