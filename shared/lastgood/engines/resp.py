"""RESP (REdis Serialization Protocol) command streams: encoding and parsing. Pure, no I/O of its own.

A Redis/Upstash backup is a sequence of commands, each a RESP array of bulk
strings (`*<n>\\r\\n$<len>\\r\\n<bytes>\\r\\n…`). That is exactly what
`redis-cli --pipe` sends to a server, so a gunzipped backup loads into any
Redis or Valkey with the database's own tool. Arguments are bytes end to end:
a bulk string carries its length, so binary keys and values need no escaping.

`iter_commands` reads such a stream back incrementally (bounded memory) for a
restore that pipelines the commands itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import BinaryIO

RespArg = bytes | str | int | float


class RespProtocolError(ValueError):
    """The stream is not a well-formed sequence of RESP command arrays."""


def _arg_bytes(arg: RespArg) -> bytes:
    if isinstance(arg, bytes):
        return arg
    if isinstance(arg, bool):  # bool is an int: refuse the ambiguity
        raise TypeError("RESP arguments cannot be booleans")
    if isinstance(arg, int):
        return str(arg).encode("ascii")
    if isinstance(arg, float):
        return repr(arg).encode("ascii")
    return arg.encode("utf-8")


def encode_command(args: Sequence[RespArg]) -> bytes:
    """One command as a RESP array of bulk strings."""
    if not args:
        raise ValueError("a RESP command needs at least one argument")
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = _arg_bytes(arg)
        parts.append(b"$%d\r\n" % len(data))
        parts.append(data)
        parts.append(b"\r\n")
    return b"".join(parts)


def encode_commands(commands: Iterable[Sequence[RespArg]]) -> bytes:
    return b"".join(encode_command(cmd) for cmd in commands)


class _Reader:
    """Buffered line/exact reads over a binary stream (the gzip stream of a backup)."""

    def __init__(self, stream: BinaryIO, chunk_size: int) -> None:
        self._stream = stream
        self._chunk = chunk_size
        self._buf = bytearray()
        self._pos = 0
        self.offset = 0  # bytes consumed, for error messages

    def _fill(self) -> bool:
        data = self._stream.read(self._chunk)
        if not data:
            return False
        if self._pos:
            del self._buf[: self._pos]
            self._pos = 0
        self._buf += data
        return True

    def at_eof(self) -> bool:
        return self._pos >= len(self._buf) and not self._fill()

    def line(self) -> bytes:
        while True:
            end = self._buf.find(b"\r\n", self._pos)
            if end >= 0:
                out = bytes(self._buf[self._pos : end])
                self.offset += end + 2 - self._pos
                self._pos = end + 2
                return out
            if not self._fill():
                raise RespProtocolError(f"truncated RESP stream at byte {self.offset} (no line end)")

    def exact(self, size: int) -> bytes:
        while len(self._buf) - self._pos < size + 2:
            if not self._fill():
                raise RespProtocolError(f"truncated RESP stream at byte {self.offset} (short bulk string)")
        out = bytes(self._buf[self._pos : self._pos + size])
        if self._buf[self._pos + size : self._pos + size + 2] != b"\r\n":
            raise RespProtocolError(f"bulk string not terminated by CRLF at byte {self.offset + size}")
        self._pos += size + 2
        self.offset += size + 2
        return out


def _header(line: bytes, marker: bytes, what: str, offset: int) -> int:
    if not line.startswith(marker):
        raise RespProtocolError(f"expected {what} at byte {offset}, got {line[:20]!r}")
    try:
        value = int(line[1:])
    except ValueError:
        raise RespProtocolError(f"bad {what} length {line[:20]!r} at byte {offset}") from None
    if value < 0:
        raise RespProtocolError(f"negative {what} length at byte {offset}")
    return value


def iter_commands(stream: BinaryIO, *, chunk_size: int = 1 << 16) -> Iterator[list[bytes]]:
    """Yield each command of a RESP command stream as a list of byte strings."""
    reader = _Reader(stream, chunk_size)
    while not reader.at_eof():
        start = reader.offset
        count = _header(reader.line(), b"*", "array", start)
        if count == 0:
            raise RespProtocolError(f"empty command array at byte {start}")
        args: list[bytes] = []
        for _ in range(count):
            at = reader.offset
            size = _header(reader.line(), b"$", "bulk string", at)
            args.append(reader.exact(size))
        yield args
