"""Streaming gzip into an `ObjectWriter`: bounded memory, one gzip member per object.

The output is a standard `.gz` file (`gzip -d`, `mongorestore --gzip`,
`gunzip | redis-cli --pipe` all read it). Input is buffered up to
`buffer_size` bytes before compressing so the writer sees few, large writes.

With `background=True` the buffers are compressed and written on one worker thread, in
order, while the caller produces the next one (zlib releases the GIL): a producer that
waits on the network (a SCAN page) then no longer also waits for the compressor. At most
`_IN_FLIGHT` buffers are queued; the worker's error is raised by the next `write` or by
`close`. Use the sink as a context manager: leaving it by an exception stops the worker
without writing anything more.
"""

from __future__ import annotations

import zlib
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType

from lastgood.engines.base import ObjectWriter

_IN_FLIGHT = 2  # buffers queued for the worker (bounded memory: 2 buffers of buffer_size)


class GzipSink:
    def __init__(
        self,
        writer: ObjectWriter,
        *,
        level: int = 6,
        buffer_size: int = 1 << 18,
        background: bool = False,
    ) -> None:
        self._writer = writer
        self._zlib = zlib.compressobj(level, zlib.DEFLATED, 31)  # wbits 31: gzip container
        self._pending = bytearray()
        self._buffer_size = buffer_size
        self.raw_bytes = 0
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="gzip") if background else None
        self._queued: deque[Future[None]] = deque()

    def __enter__(self) -> GzipSink:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if kind is not None:
            self.discard()

    def write(self, data: bytes) -> None:
        self._pending += data
        self.raw_bytes += len(data)
        if len(self._pending) >= self._buffer_size:
            self._flush_pending()

    def _flush_pending(self) -> None:
        if not self._pending:
            return
        data = bytes(self._pending)
        self._pending.clear()
        if self._pool is None:
            self._compress(data)
            return
        while len(self._queued) >= _IN_FLIGHT:
            self._queued.popleft().result()  # re-raises the worker's error
        self._queued.append(self._pool.submit(self._compress, data))

    def _compress(self, data: bytes) -> None:
        out = self._zlib.compress(data)
        if out:
            self._writer.write(out)

    def close(self) -> None:
        """Finish the gzip member (trailer with CRC-32 and size). Call once, on success only."""
        try:
            self._flush_pending()
            while self._queued:
                self._queued.popleft().result()
            tail = self._zlib.flush(zlib.Z_FINISH)
            if tail:
                self._writer.write(tail)
        finally:
            self.discard()

    def discard(self) -> None:
        """Stop the worker: queued buffers are dropped, a running one finishes; nothing more is written."""
        for future in self._queued:
            future.cancel()
        self._queued.clear()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
