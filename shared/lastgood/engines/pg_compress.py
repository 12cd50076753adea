"""pg_dump's uncompressed custom-format archive, compressed on several cores as it streams.

`pg_dump -Fc` compresses every table's data with zlib on its one thread: at the default
level that is over 80% of a dump's CPU time (a 700 MB table dump: 21 s of compression,
under 2 s for everything else pg_dump does). With more than one core to use, lastgood runs
`pg_dump --compress=0` and compresses here instead, the way pigz does: each data block's rows
are cut into 1 MiB pieces, deflated on a thread pool (zlib releases the GIL) with the previous
piece's last 32 KiB as the dictionary, flushed to a byte boundary, and the pieces are written
in order as one zlib stream per block: zlib header, the raw deflate pieces (the last one final),
the Adler-32 of the block's data. The result is what `pg_dump -Fc` writes: the same header and
TOC with compression `gzip`, the same blocks, one zlib stream per table (and per large object)
at the same level, read by any pg_restore as pg_dump's own.

Layout (pg_dump's `pg_backup_custom.c`): after the TOC (`lastgood.engines.pg_archive`), data
blocks follow: a block type byte, the entry's dump id, then length-prefixed chunks ending with
a zero length (`BLK_DATA`); or, for large objects (`BLK_BLOBS`), per object its OID and such
chunks, ended by a zero OID. Uncompressed, pg_dump writes one chunk per row. Whatever follows
the last block passes through unchanged. An archive whose header or TOC this module does not
know passes through unchanged too (a valid, uncompressed archive); one that stops parsing
after its TOC raises `BackupError`, and the backup is not committed.
"""

from __future__ import annotations

import collections
import os
import struct
import zlib
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from lastgood.core.errors import BackupError
from lastgood.engines import pg_archive

PIECE = 1024 * 1024  # rows gathered per deflate job
WINDOW = 32 * 1024  # zlib's window: the dictionary a piece starts with
FLUSH_AT = 1024 * 1024  # output handed to the writer in about this size
BLK_DATA = 1
BLK_BLOBS = 3
GZIP = 1  # the header's compression algorithm (1.15+: none 0, gzip 1, lz4 2, zstd 3)
ZLIB_HEAD = b"\x78\x9c"  # deflate, 32 KiB window, default level, no preset dictionary
LAMBDA_MB_PER_VCPU = 1769  # Lambda allots CPU in proportion to memory: 1,769 MB is one vCPU
THREADS_ENV = "LASTGOOD_COMPRESS_THREADS"
UNRECOGNISED = (
    "pg_dump's archive was not one lastgood compresses (valid for pg_restore, just larger); "
    "set LASTGOOD_COMPRESS_THREADS=0 to let pg_dump compress"
)
CPU_MAX = Path("/sys/fs/cgroup/cpu.max")  # cgroup v2: "<quota> <period>" or "max <period>"


def usable_cpus() -> float:
    """The cores this process may really use: its CPU affinity, capped by a cgroup CPU quota
    (Fargate, containers) and, on Lambda, by the share its memory size buys."""
    cpus = float(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
    try:
        quota, period = CPU_MAX.read_text().split()[:2]
        if quota != "max":
            cpus = min(cpus, int(quota) / int(period))
    except (OSError, ValueError):
        pass
    memory = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "")
    if memory.isdigit():
        cpus = min(cpus, int(memory) / LAMBDA_MB_PER_VCPU)
    return cpus


def compress_threads(switches: list[str], pg_dump_version: str) -> int:
    """Threads lastgood compresses a dump on; 0 leaves it to pg_dump: a `compress` the config
    chose, a pg_dump older than 16 (archive 1.14, not rewritten here), or one usable core
    (where the extra parsing would only cost time). `LASTGOOD_COMPRESS_THREADS` overrides the
    core count (0: off)."""
    major = pg_dump_version.split(".")[0]
    if any(s.startswith("--compress") for s in switches) or not major.isdigit() or int(major) < 16:
        return 0
    forced = os.environ.get(THREADS_ENV, "").strip()
    if forced:
        if not forced.isdigit():
            raise BackupError(f"{THREADS_ENV}={forced!r}: expected a whole number of threads (0: off)")
        return min(int(forced), 32)
    cpus = int(usable_cpus())
    return min(cpus, 8) if cpus >= 2 else 0


def _deflate(
    data: bytes, zdict: bytes, level: int, head: bytes, trailer: bytes | None, int_size: int
) -> bytes:
    """One piece of a zlib stream, framed as one archive chunk (its length, then its bytes)."""
    if zdict:
        comp = zlib.compressobj(level, zlib.DEFLATED, -15, 8, zlib.Z_DEFAULT_STRATEGY, zdict)
    else:
        comp = zlib.compressobj(level, zlib.DEFLATED, -15)
    body = comp.compress(data) + comp.flush(zlib.Z_SYNC_FLUSH if trailer is None else zlib.Z_FINISH)
    body = head + body + (trailer or b"")
    return pg_archive.encode_int(len(body), int_size) + body


class ParallelCompressor:
    """A writer for pg_dump's `--compress=0` output that writes the gzip-compressed archive to
    `write`. Feed it with `write`, then `close` it; `with` shuts its threads down either way."""

    def __init__(self, write: Callable[[bytes], object], *, threads: int, level: int = -1) -> None:
        self._out = write
        self._level = level
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="pg-deflate")
        self._pending: collections.deque[bytes | Future[bytes]] = collections.deque()
        self._max_pending = 2 * threads + 2
        self._buf = b""
        self._at = 0
        self._state = "head"
        self._after_stream = "block"  # where a finished zlib stream returns: "block" or "oid"
        self._left = 0  # payload bytes of a long chunk still to come
        self._parts: list[bytes] = []
        self._size = 0
        self._adler = 1
        self._tail = b""
        self._started = False
        self._int_size = 4
        self._hdr = 5
        self._unpack = struct.Struct("<BI").unpack_from
        self._outbuf = bytearray()
        self._head_retry = 0
        self.compressed = False  # whether the archive was recognised (else it passed through)

    # ------------------------------------------------------------------ the writer's side

    def __enter__(self) -> ParallelCompressor:
        return self

    def __exit__(self, *exc: object) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def write(self, data: bytes) -> int:
        self._buf, self._at = self._buf[self._at :] + data, 0
        self._run()
        return len(data)

    def close(self) -> None:
        """The end of pg_dump's output: the archive must end between blocks."""
        if self._state == "head":
            self._head(final=True)
            self._run()
        rest = self._buf[self._at :]
        if self._state == "block" and rest and rest[0] not in (BLK_DATA, BLK_BLOBS):
            self._state = "rest"
        if self._state in ("head", "rest"):
            self._emit(rest)  # a head too short for a TOC passes through: pg_restore says what it is
        elif self._state != "block" or rest:
            raise BackupError(
                f"pg_dump's archive ended inside a data block (at byte {len(rest)} from its end, "
                f"reading {self._state}): nothing was committed; run the backup again"
            )
        self._buf, self._at = b"", 0
        while self._pending:
            self._write_out(self._pending.popleft())
        self._flush_out(final=True)

    # ------------------------------------------------------------------ parsing

    def _avail(self) -> int:
        return len(self._buf) - self._at

    def _take(self, n: int) -> bytes:
        out = self._buf[self._at : self._at + n]
        self._at += n
        return out

    def _int(self) -> int | None:
        """The next int, or None (and nothing consumed) if it has not all arrived."""
        if self._avail() < self._hdr:
            return None
        sign, value = self._unpack(self._buf, self._at)
        self._at += self._hdr
        if sign:
            raise BackupError(
                f"pg_dump's archive has a negative length or id near byte {self._at}: nothing committed"
            )
        return int(value)

    def _run(self) -> None:
        while True:
            state = self._state
            if state == "head":
                if not self._head():
                    return
            elif state == "block":
                if self._avail() < 1 + self._hdr:
                    return
                kind = self._buf[self._at]
                if kind not in (BLK_DATA, BLK_BLOBS):
                    self._state = "rest"  # after the last block: passes through as it is
                    continue
                self._emit(self._take(1 + self._hdr))
                if kind == BLK_DATA:
                    self._begin_stream("block")
                else:
                    self._state = "oid"
            elif state == "oid":
                at = self._at
                oid = self._int()
                if oid is None:
                    return
                self._emit(self._buf[at : self._at])
                if oid == 0:
                    self._state = "block"
                else:
                    self._begin_stream("oid")
            elif state == "chunks":
                if not self._chunks():
                    return
            elif state == "payload":
                if not self._payload():
                    return
            else:  # "rest"
                if self._avail():
                    self._emit(self._take(self._avail()))
                return

    def _head(self, *, final: bool = False) -> bool:
        if len(self._buf) < self._head_retry and not final:
            return False  # a long TOC is parsed again only each time the buffer doubles
        try:
            toc = pg_archive.read_toc(self._buf)
        except pg_archive.TocIncomplete:
            if len(self._buf) <= pg_archive.TOC_LIMIT and not final:
                self._head_retry = 2 * len(self._buf)
                return False
            self._state = "rest"
            return True
        except pg_archive.Unsupported:
            self._state = "rest"
            return True
        if toc.version < (1, 15) or toc.offsets or self._buf[toc.compression_at] != 0:
            self._state = "rest"  # older header layout, offsets to move, or already compressed
            return True
        head = bytearray(self._buf[: toc.end])
        head[toc.compression_at] = GZIP
        self._emit(bytes(head))
        self._at = toc.end
        self._int_size = toc.int_size
        self._hdr = 1 + toc.int_size
        self._unpack = struct.Struct("<BI" if toc.int_size == 4 else "<BQ").unpack_from
        self.compressed = True
        self._state = "block"
        return True

    def _begin_stream(self, after: str) -> None:
        self._after_stream = after
        self._parts, self._size, self._adler, self._tail, self._started = [], 0, 1, b"", False
        self._state = "chunks"

    def _chunks(self) -> bool:
        """Rows of the current stream; True when its end (or a long chunk) is reached."""
        buf, at, end, hdr = self._buf, self._at, len(self._buf), self._hdr
        unpack, parts, size = self._unpack, self._parts, self._size
        while at + hdr <= end:
            sign, n = unpack(buf, at)
            if sign:
                self._at = at
                raise BackupError(
                    f"pg_dump's archive has a negative chunk length near byte {at}: nothing committed"
                )
            if n == 0:
                self._at, self._size = at + hdr, size
                self._end_stream()
                return True
            stop = at + hdr + n
            if stop > end:
                if n > PIECE:  # a long row or large-object chunk: take it as it arrives
                    self._at, self._size, self._left = at + hdr, size, n
                    self._state = "payload"
                    return True
                break
            parts.append(buf[at + hdr : stop])
            size += n
            at = stop
            if size >= PIECE:
                self._size = size
                self._piece()
                parts, size = self._parts, 0
        self._at, self._size = at, size
        return False

    def _payload(self) -> bool:
        n = min(self._left, self._avail())
        if n == 0:
            return False
        self._parts.append(self._take(n))
        self._size += n
        self._left -= n
        if self._size >= PIECE:
            self._piece()
        if self._left == 0:
            self._state = "chunks"
        return True

    # ------------------------------------------------------------------ compressing

    def _piece(self, *, last: bool = False) -> None:
        data = b"".join(self._parts)
        self._parts, self._size = [], 0
        self._adler = zlib.adler32(data, self._adler)
        head = b"" if self._started else ZLIB_HEAD
        self._started = True
        trailer = self._adler.to_bytes(4, "big") if last else None
        job = self._pool.submit(_deflate, data, self._tail, self._level, head, trailer, self._int_size)
        self._tail = data[-WINDOW:] if len(data) >= WINDOW else (self._tail + data)[-WINDOW:]
        self._queue(job)

    def _end_stream(self) -> None:
        self._piece(last=True)
        self._emit(pg_archive.encode_int(0, self._int_size))
        self._state = self._after_stream

    # ------------------------------------------------------------------ output, in order

    def _emit(self, data: bytes) -> None:
        if data:
            self._queue(data)

    def _queue(self, item: bytes | Future[bytes]) -> None:
        pending = self._pending
        pending.append(item)
        while pending and (
            len(pending) > self._max_pending or not isinstance(pending[0], Future) or pending[0].done()
        ):
            self._write_out(pending.popleft())

    def _write_out(self, item: bytes | Future[bytes]) -> None:
        self._outbuf += item.result() if isinstance(item, Future) else item
        self._flush_out()

    def _flush_out(self, *, final: bool = False) -> None:
        if self._outbuf and (final or len(self._outbuf) >= FLUSH_AT):
            self._out(bytes(self._outbuf))
            self._outbuf.clear()
