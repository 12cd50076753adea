"""GzipSink: the background compressor writes what the inline one writes, and stops on error."""

from __future__ import annotations

import gzip
import os
import threading

import pytest
from lastgood.engines.gzipsink import GzipSink


class Collect:
    """An ObjectWriter that keeps what it is given; `fail_at` makes that write raise."""

    def __init__(self, fail_at: int | None = None) -> None:
        self.count: int | None = None
        self.parts: list[bytes] = []
        self.fail_at = fail_at
        self.threads: set[str] = set()

    def write(self, data: bytes) -> int:
        self.threads.add(threading.current_thread().name)
        if self.fail_at is not None and len(self.parts) == self.fail_at:
            raise OSError("disk full (injected)")
        self.parts.append(data)
        return len(data)


def _gzip_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("gzip")]


# compressible and random runs, in odd sizes that straddle the 64 KiB buffers below
PIECES = [(b"key:%d value " % i) * 700 + os.urandom(3000) for i in range(60)]


def test_the_background_compressor_writes_the_same_bytes_in_the_same_order_as_inline() -> None:
    inline, background = Collect(), Collect()
    for writer, on_thread in ((inline, False), (background, True)):
        with GzipSink(writer, buffer_size=1 << 16, background=on_thread) as sink:
            for piece in PIECES:
                sink.write(piece)
            sink.close()
    assert b"".join(background.parts) == b"".join(inline.parts)
    assert gzip.decompress(b"".join(background.parts)) == b"".join(PIECES)
    assert any(name.startswith("gzip") for name in background.threads)  # it did run on the worker
    assert _gzip_threads() == []


def test_a_writer_error_on_the_worker_is_raised_to_the_producer_and_nothing_is_written_after_it() -> None:
    writer = Collect(fail_at=2)
    with (
        pytest.raises(OSError, match="disk full"),
        GzipSink(writer, buffer_size=1 << 16, background=True) as sink,
    ):
        for piece in PIECES:
            sink.write(piece)
        sink.close()
    assert len(writer.parts) == 2  # the two writes before the failing one, none after
    assert _gzip_threads() == []


def test_leaving_the_sink_by_an_exception_stops_the_worker_without_finishing_the_gzip_member() -> None:
    writer = Collect()
    with (
        pytest.raises(RuntimeError, match="SCAN failed"),
        GzipSink(writer, buffer_size=1 << 16, background=True) as sink,
    ):
        for piece in PIECES[:30]:
            sink.write(piece)
        raise RuntimeError("SCAN failed (injected)")
    assert _gzip_threads() == []
    data = b"".join(writer.parts)
    with pytest.raises(EOFError):  # no trailer: a truncated member, never mistaken for a whole one
        gzip.decompress(data)
