"""A decoder for PostgreSQL's built-in `pgoutput` logical decoding messages (protocol version 1).

Pure: bytes in, typed messages out (no I/O). The formats are PostgreSQL's "Logical
Replication Message Formats": Begin `B`, Commit `C`, Origin `O`, Relation `R`, Type `Y`,
Insert `I`, Update `U`, Delete `D`, Truncate `T` (and `M` logical messages, which lastgood
does not ask for and skips). Tuple columns are `n` (NULL), `u` (an unchanged TOASTed value:
not sent, so an UPDATE must leave that column alone), `t` (text) or `b` (binary).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

_PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)

# Column values of a tuple: None = NULL, UNCHANGED = a TOASTed value the update did not touch.
UNCHANGED = object()
Value = str | bytes | None | object


class DecodeError(ValueError):
    """A pgoutput message that cannot be decoded (truncated, unknown kind)."""


def lsn_str(lsn: int) -> str:
    """PostgreSQL's `X/Y` notation of an LSN."""
    return f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"


def parse_lsn(text: str) -> int:
    """`16/B374D848` → an int (ValueError on anything else)."""
    high, sep, low = text.strip().partition("/")
    if not sep or not high or not low:
        raise ValueError(f"not an LSN (expected X/Y in hex, e.g. 0/16B3748): {text!r}")
    return (int(high, 16) << 32) | int(low, 16)


def pg_time(micros: int) -> datetime:
    return _PG_EPOCH + timedelta(microseconds=micros)


@dataclass(frozen=True)
class Column:
    name: str
    type_oid: int
    typmod: int
    key: bool  # part of the replica identity


@dataclass(frozen=True)
class Relation:
    relid: int
    namespace: str
    name: str
    replica_identity: str  # d(efault) n(othing) f(ull) i(ndex)
    columns: tuple[Column, ...]

    @property
    def qualified(self) -> str:
        return f"{self.namespace}.{self.name}"

    def shape(self) -> tuple[str, str, tuple[tuple[str, int, int], ...]]:
        """What must stay equal for replay to be valid: names, column names, types, typmods."""
        return (self.namespace, self.name, tuple((c.name, c.type_oid, c.typmod) for c in self.columns))


@dataclass(frozen=True)
class Begin:
    final_lsn: int  # the commit's LSN
    commit_time: datetime
    xid: int


@dataclass(frozen=True)
class Commit:
    flags: int
    commit_lsn: int
    end_lsn: int
    commit_time: datetime


@dataclass(frozen=True)
class Origin:
    commit_lsn: int
    name: str


@dataclass(frozen=True)
class TypeInfo:
    oid: int
    namespace: str
    name: str


@dataclass(frozen=True)
class Insert:
    relid: int
    new: tuple[Value, ...]


@dataclass(frozen=True)
class Update:
    relid: int
    new: tuple[Value, ...]
    old: tuple[Value, ...] | None = None  # the old key ('K') or whole old row ('O'), when sent
    old_kind: str | None = None


@dataclass(frozen=True)
class Delete:
    relid: int
    old: tuple[Value, ...]
    old_kind: str


@dataclass(frozen=True)
class Truncate:
    relids: tuple[int, ...]
    cascade: bool
    restart_identity: bool


@dataclass(frozen=True)
class Skipped:
    kind: str


Message = Begin | Commit | Origin | Relation | TypeInfo | Insert | Update | Delete | Truncate | Skipped


@dataclass
class _Reader:
    data: bytes
    pos: int = 0
    kinds: list[str] = field(default_factory=list)

    def take(self, n: int) -> bytes:
        end = self.pos + n
        if end > len(self.data):
            raise DecodeError(f"truncated pgoutput message (needed {n} bytes at offset {self.pos})")
        chunk = self.data[self.pos : end]
        self.pos = end
        return chunk

    def u8(self) -> int:
        return self.take(1)[0]

    def i16(self) -> int:
        return int(struct.unpack(">h", self.take(2))[0])

    def i32(self) -> int:
        return int(struct.unpack(">i", self.take(4))[0])

    def u32(self) -> int:
        return int(struct.unpack(">I", self.take(4))[0])

    def i64(self) -> int:
        return int(struct.unpack(">q", self.take(8))[0])

    def u64(self) -> int:
        return int(struct.unpack(">Q", self.take(8))[0])

    def string(self) -> str:
        end = self.data.find(b"\x00", self.pos)
        if end < 0:
            raise DecodeError("unterminated string in a pgoutput message")
        text = self.data[self.pos : end].decode("utf-8")
        self.pos = end + 1
        return text

    def tuple(self) -> tuple[Value, ...]:
        values: list[Value] = []
        for _ in range(self.i16()):
            kind = chr(self.u8())
            if kind == "n":
                values.append(None)
            elif kind == "u":
                values.append(UNCHANGED)
            elif kind == "t":
                values.append(self.take(self.i32()).decode("utf-8"))
            elif kind == "b":
                values.append(self.take(self.i32()))
            else:
                raise DecodeError(f"unknown tuple column kind {kind!r}")
        return tuple(values)


def decode(data: bytes) -> Message:
    """One pgoutput message (the `data` column of `pg_logical_slot_peek_binary_changes`)."""
    if not data:
        raise DecodeError("empty pgoutput message")
    r = _Reader(bytes(data), 1)
    kind = chr(data[0])
    if kind == "B":
        return Begin(r.u64(), pg_time(r.i64()), r.u32())
    if kind == "C":
        return Commit(r.u8(), r.u64(), r.u64(), pg_time(r.i64()))
    if kind == "O":
        return Origin(r.u64(), r.string())
    if kind == "R":
        relid, namespace, name, identity = r.u32(), r.string(), r.string(), chr(r.u8())
        columns = []
        for _ in range(r.i16()):
            flags, col = r.u8(), r.string()
            columns.append(Column(col, r.u32(), r.i32(), bool(flags & 1)))
        return Relation(relid, namespace, name, identity, tuple(columns))
    if kind == "Y":
        return TypeInfo(r.u32(), r.string(), r.string())
    if kind == "I":
        relid = r.u32()
        if chr(r.u8()) != "N":
            raise DecodeError("insert message without a new tuple")
        return Insert(relid, r.tuple())
    if kind == "U":
        relid = r.u32()
        marker = chr(r.u8())
        old = None
        old_kind = None
        if marker in ("K", "O"):
            old_kind, old = marker, r.tuple()
            marker = chr(r.u8())
        if marker != "N":
            raise DecodeError("update message without a new tuple")
        return Update(relid, r.tuple(), old, old_kind)
    if kind == "D":
        relid = r.u32()
        marker = chr(r.u8())
        if marker not in ("K", "O"):
            raise DecodeError("delete message without an old key or row")
        return Delete(relid, r.tuple(), marker)
    if kind == "T":
        count, options = r.i32(), r.u8()
        relids = tuple(r.u32() for _ in range(count))
        return Truncate(relids, bool(options & 1), bool(options & 2))
    if kind == "M":
        return Skipped(kind)
    raise DecodeError(f"unknown pgoutput message kind {kind!r}")
