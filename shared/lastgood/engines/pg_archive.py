"""One entry appended to a custom-format archive's table of contents as it streams to pg_restore.

`pg_restore --single-transaction` runs an archive's TOC entries in order (the data, then
the indexes and constraints) and commits after the last one. An entry appended to the TOC
(post-data, no data of its own) therefore runs inside that transaction, after everything
else of the main pass. lastgood appends the row count of `lastgood.engines.pg_counts`
there: it sees the restored rows before the commit. Counted after the commit, the first
scan of every restored page sets its tuples' hint bits; with data checksums on (the
default since PostgreSQL 18), each such page also goes to the WAL as a full-page image.
For a 200 MB dump that is about 930 MB of WAL and 2 s.

Layout read here (pg_dump's `pg_backup_archiver.c` ReadHead/ReadToc, and
`pg_backup_custom.c` for the per-entry data offset):

- header: `PGDMP`, version (3 bytes), int size, offset size, format, compression,
  creation time (7 ints), database name, server version, pg_dump version;
- TOC: an entry count, then per entry its id, had-data flag, catalog ids, tag, desc,
  section, definition, drop and copy statements, schema, tablespace, table AM,
  relkind (1.16), owner, "false", its dependencies (ended by a null string), and the
  data offset (flag byte and `offset size` bytes).

An int is a sign byte and `int size` little-endian bytes; a string is an int length (-1: null)
and its bytes. Only versions 1.14 to 1.16 (pg_dump 12 to 18) of the custom format are
rewritten. For anything else, or a TOC that does not parse, the stream passes through byte
for byte and the caller counts after the commit. Data blocks follow the TOC, so every data
offset set in the TOC moves by the appended entry's length: the result is a valid archive
both from a pipe and from a file. The stored object itself is never changed: the stream is
hashed before this rewrite (`lastgood.backups.heldtail`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, BinaryIO

MAGIC = b"PGDMP"
SUPPORTED = ((1, 14), (1, 15), (1, 16))
FORMAT_CUSTOM = 1
SECTION_POST_DATA = 4
OFFSET_POS_SET = 2
OFFSET_NO_DATA = 3
READ_CHUNK = 4 * 1024 * 1024
TOC_LIMIT = 64 * 1024 * 1024  # a TOC bigger than this (a schema of ~100k objects) is passed through


class TocIncomplete(Exception):
    """The buffer ends before the TOC does."""


class Unsupported(Exception):
    """Not an archive this module rewrites (format, version, or a TOC that does not parse)."""


@dataclass
class Toc:
    """Where the parts of an archive's TOC are, in its first bytes."""

    version: tuple[int, int]
    int_size: int
    off_size: int
    count_at: int  # the entry count's position
    compression_at: int  # the compression byte (1.15+) or int (1.14)
    count: int
    end: int  # first byte after the last entry
    max_dump_id: int
    offsets: list[int]  # positions of the data offsets that are set


class _Cursor:
    def __init__(self, buf: bytes | bytearray) -> None:
        self.buf = buf
        self.at = 0
        self.int_size = 4

    def take(self, n: int) -> bytes:
        if self.at + n > len(self.buf):
            raise TocIncomplete
        out = bytes(self.buf[self.at : self.at + n])
        self.at += n
        return out

    def byte(self) -> int:
        return self.take(1)[0]

    def int_(self) -> int:
        sign = self.byte()
        value = int.from_bytes(self.take(self.int_size), "little")
        return -value if sign else value

    def str_(self) -> bytes | None:
        n = self.int_()
        if n < -1 or n > TOC_LIMIT:  # longer than the buffer but possible: `take` asks for more
            raise Unsupported(f"string length {n} at byte {self.at}")
        return None if n == -1 else self.take(n)


def read_toc(buf: bytes | bytearray) -> Toc:
    """The TOC of a custom-format archive starting `buf`; `TocIncomplete` if `buf` ends inside it."""
    cur = _Cursor(buf)
    if cur.take(5) != MAGIC:
        raise Unsupported("not a custom-format archive")
    version = (cur.byte(), cur.byte())
    cur.byte()  # revision
    if version not in SUPPORTED:
        raise Unsupported(f"archive version {version[0]}.{version[1]}")
    cur.int_size = cur.byte()
    off_size = cur.byte()
    if cur.int_size not in (4, 8) or off_size not in (4, 8):
        raise Unsupported("unexpected integer sizes")
    if cur.byte() != FORMAT_CUSTOM:
        raise Unsupported("not the custom format")
    compression_at = cur.at
    if version >= (1, 15):
        cur.byte()  # compression algorithm
    else:
        cur.int_()  # compression level
    for _ in range(7):
        cur.int_()  # creation time
    for _ in range(3):
        cur.str_()  # database name, server version, pg_dump version
    count_at = cur.at
    count = cur.int_()
    if count < 0:
        raise Unsupported("negative TOC entry count")
    max_id = 0
    offsets: list[int] = []
    for _ in range(count):
        dump_id = cur.int_()
        if dump_id <= 0:
            raise Unsupported(f"TOC entry id {dump_id}")
        max_id = max(max_id, dump_id)
        cur.int_()  # had a data dumper
        for _ in range(4):
            cur.str_()  # tableoid, oid, tag, desc
        cur.int_()  # section
        for _ in range(6):
            cur.str_()  # definition, drop, copy, schema, tablespace, table access method
        if version >= (1, 16):
            cur.int_()  # relkind
        cur.str_()  # owner
        cur.str_()  # "false" (no OIDs)
        while cur.str_() is not None:
            pass  # dependencies
        flag = cur.byte()
        if flag == OFFSET_POS_SET:
            offsets.append(cur.at)
        cur.take(off_size)
    return Toc(version, cur.int_size, off_size, count_at, compression_at, count, cur.at, max_id, offsets)


def encode_int(value: int, size: int) -> bytes:
    return bytes([1 if value < 0 else 0]) + abs(value).to_bytes(size, "little")


def _str(value: str | None, size: int) -> bytes:
    if value is None:
        return encode_int(-1, size)
    raw = value.encode()
    return encode_int(len(raw), size) + raw


def entry_bytes(toc: Toc, *, tag: str, desc: str, defn: str) -> bytes:
    """A post-data TOC entry without data, numbered after the archive's last."""
    n = toc.int_size
    out = encode_int(toc.max_dump_id + 1, n) + encode_int(0, n)
    out += _str("0", n) + _str("0", n) + _str(tag, n) + _str(desc, n) + encode_int(SECTION_POST_DATA, n)
    out += _str(defn, n) + _str("", n) + _str("", n) + _str(None, n) + _str(None, n) + _str(None, n)
    if toc.version >= (1, 16):  # relkind
        out += encode_int(0, n)
    out += _str("", n) + _str("false", n) + _str(None, n)
    return out + bytes([OFFSET_NO_DATA]) + bytes(toc.off_size)


def append_entry(buf: bytes | bytearray, toc: Toc, entry: bytes) -> bytes:
    """`buf` (the archive's first bytes, the whole TOC among them) with `entry` after the last
    TOC entry, the entry count raised by one and every set data offset moved by its length."""
    out = bytearray(buf)
    for at in toc.offsets:
        moved = int.from_bytes(out[at : at + toc.off_size], "little") + len(entry)
        out[at : at + toc.off_size] = moved.to_bytes(toc.off_size, "little")
    out[toc.count_at : toc.count_at + 1 + toc.int_size] = encode_int(toc.count + 1, toc.int_size)
    out[toc.end : toc.end] = entry
    return bytes(out)


class WithEntry:
    """`stream` (a custom-format archive) with one TOC entry appended, read as it streams.

    `appended` says whether it was (after the first `read`); other attributes are the
    wrapped stream's (`drain`, `released` of a held-tail reader).
    """

    def __init__(self, stream: BinaryIO, *, tag: str, desc: str, defn: str) -> None:
        self._stream = stream
        self._entry = {"tag": tag, "desc": desc, "defn": defn}
        self._pending: bytes | None = None
        self.appended = False

    def _start(self) -> bytes:
        buf = bytearray()
        while True:
            chunk = self._stream.read(READ_CHUNK)
            buf += chunk
            try:
                toc = read_toc(buf)
            except TocIncomplete:
                if chunk and len(buf) <= TOC_LIMIT:
                    continue
                return bytes(buf)
            except Unsupported:
                return bytes(buf)
            entry = entry_bytes(toc, **self._entry)
            self.appended = True
            return append_entry(buf, toc, entry)

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if self._pending is None:
            self._pending = self._start()
        if self._pending:
            n = len(self._pending) if size is None or size < 0 else size
            out, self._pending = self._pending[:n], self._pending[n:]
            return out
        return self._stream.read(size)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)
