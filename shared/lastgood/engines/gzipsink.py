"""Streaming gzip into an `ObjectWriter`: bounded memory, one gzip member per object.

The output is a standard `.gz` file (`gzip -d`, `mongorestore --gzip`,
`gunzip | redis-cli --pipe` all read it). Input is buffered up to
`buffer_size` bytes before compressing so the writer sees few, large writes.
"""

from __future__ import annotations

import zlib

from lastgood.engines.base import ObjectWriter


class GzipSink:
    def __init__(self, writer: ObjectWriter, *, level: int = 6, buffer_size: int = 1 << 18) -> None:
        self._writer = writer
        self._zlib = zlib.compressobj(level, zlib.DEFLATED, 31)  # wbits 31: gzip container
        self._pending = bytearray()
        self._buffer_size = buffer_size
        self.raw_bytes = 0

    def write(self, data: bytes) -> None:
        self._pending += data
        self.raw_bytes += len(data)
        if len(self._pending) >= self._buffer_size:
            self._flush_pending()

    def _flush_pending(self) -> None:
        if self._pending:
            out = self._zlib.compress(bytes(self._pending))
            self._pending.clear()
            if out:
                self._writer.write(out)

    def close(self) -> None:
        """Finish the gzip member (trailer with CRC-32 and size). Call once, on success only."""
        self._flush_pending()
        tail = self._zlib.flush(zlib.Z_FINISH)
        if tail:
            self._writer.write(tail)
