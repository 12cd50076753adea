"""Redis dump: SCAN the key space into a gzipped RESP command stream.

Walks the key space with SCAN (never KEYS), pipelining TYPE + PTTL and then
one read per key (GET via MGET, HGETALL, LRANGE, SMEMBERS, ZRANGE WITHSCORES,
XRANGE), and writes `redis/dump.resp.gz`: per key `DEL`, the typed writes in
chunks, then `PEXPIRE <remaining ms>`. Replaying it is idempotent and
`redis-cli --pipe` loads it into any Redis/Valkey. Through REST a key name that
is not UTF-8 cannot be read: the dump refuses it unless `skip_binary_keys`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any

from lastgood.core.errors import BackupError, SourceUnavailable
from lastgood.core.observability import logger
from lastgood.engines import resp
from lastgood.engines.base import DumpResult, DumpTarget, EngineOptions, Stopwatch
from lastgood.engines.gzipsink import GzipSink
from lastgood.engines.redis_keyspace import TYPES, Keyspace, RestKeyspace, is_utf8, match_any, one, reply_text
from lastgood.engines.upstash_rest import Arg, UpstashCommandError

DUMP_OBJECT = "redis/dump.resp.gz"
_READ: dict[str, Callable[[bytes], list[Arg]]] = {
    "string": lambda k: ["GET", k],
    "hash": lambda k: ["HGETALL", k],
    "list": lambda k: ["LRANGE", k, 0, -1],
    "set": lambda k: ["SMEMBERS", k],
    "zset": lambda k: ["ZRANGE", k, 0, -1, "WITHSCORES"],
    "stream": lambda k: ["XRANGE", k, "-", "+"],
}
_ATTEMPTS = 3  # a key whose type changes between TYPE and its read is re-read this often


def _pairs(flat: list[Any]) -> list[tuple[Any, Any]]:
    return list(zip(flat[0::2], flat[1::2], strict=True))


def key_commands(key: bytes, kind: str, value: Any, pttl: int, *, chunk: int = 500) -> list[list[Arg]]:
    """The RESP commands that recreate one key (DEL first, so a replay is idempotent)."""
    cmds: list[list[Arg]] = [["DEL", key]]
    if kind == "string":
        cmds.append(["SET", key, value])
    elif kind in ("hash", "zset"):
        pairs = _pairs(value)
        if kind == "zset":
            pairs = [(score, member) for member, score in pairs]
        verb = "HSET" if kind == "hash" else "ZADD"
        for i in range(0, len(pairs), chunk):
            cmd: list[Arg] = [verb, key]
            for a, b in pairs[i : i + chunk]:
                cmd += [a, b]
            cmds.append(cmd)
    elif kind in ("list", "set"):
        verb = "RPUSH" if kind == "list" else "SADD"
        for i in range(0, len(value), chunk):
            cmds.append([verb, key, *value[i : i + chunk]])
    elif kind == "stream":
        if not value:  # an existing stream with no entries: create it, then empty it
            cmds += [["XADD", key, "0-1", "_", "_"], ["XDEL", key, "0-1"]]
        for entry_id, fields in value:
            cmds.append(["XADD", key, entry_id, *fields])
    else:  # pragma: no cover - callers filter types
        raise ValueError(f"unsupported type {kind}")
    if pttl > 0:
        cmds.append(["PEXPIRE", key, pttl])
    return cmds


def _server_version(ks: Keyspace) -> str:
    try:
        info = ks.run([["INFO", "server"]])[0]
    except SourceUnavailable:
        raise
    if isinstance(info, bytes):
        fields = dict(
            line.split(":", 1) for line in info.decode("utf-8", "replace").splitlines() if ":" in line
        )
        for name in ("valkey_version", "redis_version", "upstash_version"):
            if name in fields:
                product = name.split("_")[0]
                return f"{product} {fields[name].strip()}"
    return "unknown"


def _tool_versions(ks: Keyspace) -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    names = ["httpx"] if isinstance(ks, RestKeyspace) else ["valkey"]
    out = {"format": "RESP2 command stream (gzip)"}
    for name in names:
        try:
            out[name] = version(name)
        except PackageNotFoundError:  # pragma: no cover
            out[name] = "unknown"
    return out


class _DumpStats:
    def __init__(self) -> None:
        self.keys = 0
        self.by_type: dict[str, int] = dict.fromkeys(TYPES, 0)
        self.vanished = 0
        self.skipped_binary: list[str] = []
        self.unsupported: dict[str, int] = {}

    def counts(self) -> dict[str, int]:
        return {"keys": self.keys, **self.by_type}


def _dump_batch(
    ks: Keyspace, keys: list[bytes], out: GzipSink, stats: _DumpStats, *, skip_binary: bool
) -> None:
    if not ks.binary_safe_args:
        sendable = []
        for key in keys:
            if is_utf8(key):
                sendable.append(key)
                continue
            if not skip_binary:
                raise BackupError(
                    f"key {key!r} is not valid UTF-8 and cannot be read through the Upstash REST API; "
                    "back up through the database's rediss:// endpoint, or set the source option "
                    "skip_binary_keys to skip (and count) such keys"
                )
            stats.skipped_binary.append(repr(key)[:80])
        keys = sendable
    pending = keys
    for _attempt in range(_ATTEMPTS):
        if not pending:
            return
        meta_cmds: list[Sequence[Arg]] = []
        for key in pending:
            meta_cmds += [["TYPE", key], ["PTTL", key]]
        meta = ks.run(meta_cmds)
        reads: list[tuple[bytes, str, int]] = []
        for i, key in enumerate(pending):
            kind, pttl = meta[2 * i], meta[2 * i + 1]
            if isinstance(kind, Exception) or isinstance(pttl, Exception):
                raise UpstashCommandError(
                    f"TYPE/PTTL failed: {kind if isinstance(kind, Exception) else pttl}"
                )
            name = reply_text(kind)
            if name == "none" or pttl == -2:
                stats.vanished += 1
                continue
            if name not in _READ:
                stats.unsupported[name] = stats.unsupported.get(name, 0) + 1
                continue
            reads.append((key, name, int(pttl)))
        # Strings are read with one MGET per batch (a third fewer commands); the rest one by one.
        strings = [r for r in reads if r[1] == "string"]
        reads = [r for r in reads if r[1] != "string"]
        commands: list[Sequence[Arg]] = [_READ[name](key) for key, name, _ in reads]
        if strings:
            commands.append(["MGET", *(key for key, _, _ in strings)])
        replies = ks.run(commands)
        values = list(replies[: len(reads)])
        if strings:
            mget = replies[-1]
            if isinstance(mget, Exception):
                raise UpstashCommandError(f"MGET: {mget}")
            reads += strings
            values += list(mget)
        retry: list[bytes] = []
        for (key, name, pttl), value in zip(reads, values, strict=True):
            if isinstance(value, Exception):
                if "WRONGTYPE" in str(value):
                    retry.append(key)  # re-created with another type since TYPE: read it again
                    continue
                raise UpstashCommandError(f"{_READ[name](key)[0]!s}: {value}")
            if value is None and name == "string":
                retry.append(key)  # MGET gives nil for a deleted key and for one that changed type
                continue
            if value is None or (name != "stream" and value == []):
                stats.vanished += 1  # deleted (or expired) between TYPE and the read
                continue
            if name == "stream":
                value = [(entry[0], entry[1]) for entry in value]
            for cmd in key_commands(key, name, value, pttl):
                out.write(resp.encode_command(cmd))
            stats.keys += 1
            stats.by_type[name] += 1
        pending = retry
    stats.vanished += len(pending)


def dump(ks: Keyspace, target: DumpTarget, options: EngineOptions) -> DumpResult:
    """SCAN the key space and stream it as a gzipped RESP command stream."""
    batch = options.scan_count
    include: list[bytes | None] = [p.encode() for p in options.include]
    exclude = [p.encode() for p in options.exclude]
    skip_binary = options.skip_binary_keys
    stats = _DumpStats()
    watch = Stopwatch()
    server_version = _server_version(ks)
    # SCAN may return a key more than once; remember digests, not keys, to stay small.
    seen: set[bytes] = set()
    with target.open_object(DUMP_OBJECT, content_type="application/gzip") as writer:
        out = GzipSink(writer)
        for match in include or [None]:
            cursor: Any = b"0"
            while True:
                scan: list[Arg] = ["SCAN", cursor, "COUNT", batch]
                if match is not None:
                    scan += ["MATCH", match]
                cursor, keys = one(ks, *scan)
                fresh = []
                for key in keys:
                    digest = hashlib.blake2b(key, digest_size=16).digest()
                    if digest in seen or (exclude and match_any(key, exclude)):
                        continue
                    seen.add(digest)
                    fresh.append(key)
                _dump_batch(ks, fresh, out, stats, skip_binary=skip_binary)
                if cursor in (b"0", 0, "0"):
                    break
        out.close()
        writer.count = stats.keys
        if hasattr(writer, "counts"):
            writer.counts = stats.counts()
    elapsed = watch.ms / 1000.0
    logger.info(
        "redis dump finished",
        extra={"keys": stats.keys, "vanished": stats.vanished, "seconds": round(elapsed, 3)},
    )
    return DumpResult(
        server_version=server_version,
        tool_versions=_tool_versions(ks),
        extra={
            "counts": stats.counts(),
            "vanished": stats.vanished,
            "skipped_binary_keys": len(stats.skipped_binary),
            "skipped_binary_examples": stats.skipped_binary[:10],
            "unsupported_types": stats.unsupported,
            "raw_bytes": out.raw_bytes,
            "ttl": "remaining TTL at dump time, restored with PEXPIRE",
            "protocol": ks.kind,
        },
    )
