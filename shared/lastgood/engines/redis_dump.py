"""Redis dump: SCAN the key space into a gzipped RESP command stream.

Walks the key space with SCAN (never KEYS) in one round trip per page: the
pipeline carries the next SCAN, one EVAL that renders each small string as its
RESP commands server-side and returns every other key's type, remaining TTL and
(when small) value atomically, and the reads (MGET, HGETALL, LRANGE,
SMEMBERS, ZRANGE WITHSCORES, XRANGE) of the values the script left out; without
scripting, TYPE + PTTL per key. It writes `redis/dump.resp.gz`: per key `DEL`,
the typed writes in chunks, then `PEXPIRE <remaining ms>`. Replaying it is
idempotent and `redis-cli --pipe` loads it into any Redis/Valkey. Through REST a key name that
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
from lastgood.engines.redis_keyspace import TYPES, Keyspace, RestKeyspace, is_utf8, match_any, reply_text
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
_ATTEMPTS = 3  # a key whose type changes between its probe and its read is probed this often
_CAP = 256  # a collection up to this many elements is read inside the probe script
_STRING_CAP = 64 * 1024  # likewise a string up to this many bytes; larger values are read after it
# One EVAL per page. A string up to `_STRING_CAP` bytes is rendered right there as the very RESP
# bytes `string_commands` writes (DEL, SET, PEXPIRE when it has a TTL), so the bulk of a typical
# key space crosses the REST API as one bulk string per page: no per-key JSON item, base64
# string or Python call on either side. Reply: {resp, strings rendered, keys gone, then per
# other key: its index in KEYS, type, remaining TTL, value (false: too large, read separately)}.
_PROBE = r"""local cap, scap = tonumber(ARGV[1]), tonumber(ARGV[2])
local size = {hash = 'HLEN', list = 'LLEN', set = 'SCARD', zset = 'ZCARD', stream = 'XLEN'}
local read = {hash = {'HGETALL'}, list = {'LRANGE', 0, -1}, set = {'SMEMBERS'},
  zset = {'ZRANGE', 0, -1, 'WITHSCORES'}, stream = {'XRANGE', '-', '+'}}
local out, blob, n, strings, gone = {false, 0, 0}, {}, 0, 0, 0
for i, k in ipairs(KEYS) do
  local t = redis.call('TYPE', k)['ok']
  if t == 'none' then
    gone = gone + 1
  else
    local ttl = redis.call('PTTL', k)
    if t == 'string' and redis.call('STRLEN', k) <= scap then
      local v = redis.call('GET', k)
      local name = '$' .. #k .. '\r\n' .. k .. '\r\n'
      n = n + 1
      blob[n] = '*2\r\n$3\r\nDEL\r\n' .. name .. '*3\r\n$3\r\nSET\r\n' .. name .. '$' .. #v .. '\r\n' .. v .. '\r\n'
      if ttl > 0 then
        local ms = string.format('%d', ttl)
        n = n + 1
        blob[n] = '*3\r\n$7\r\nPEXPIRE\r\n' .. name .. '$' .. #ms .. '\r\n' .. ms .. '\r\n'
      end
      strings = strings + 1
    else
      local v = false
      if size[t] and redis.call(size[t], k) <= cap then
        local r = read[t]
        v = redis.call(r[1], k, unpack(r, 2))
      end
      local at = #out
      out[at + 1], out[at + 2], out[at + 3], out[at + 4] = i, t, ttl, v
    end
  end
end
out[1], out[2], out[3] = table.concat(blob), strings, gone
return out
"""


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


def string_commands(key: bytes, value: bytes, pttl: int) -> bytes:
    """`key_commands` of a string, RESP-encoded: the same bytes, built without the lists."""
    k = b"$%d\r\n%b\r\n" % (len(key), key)
    out = b"*2\r\n$3\r\nDEL\r\n%b*3\r\n$3\r\nSET\r\n%b$%d\r\n%b\r\n" % (k, k, len(value), value)
    if pttl > 0:
        ms = b"%d" % pttl
        out += b"*3\r\n$7\r\nPEXPIRE\r\n%b$%d\r\n%b\r\n" % (k, len(ms), ms)
    return out


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


def _sendable(ks: Keyspace, keys: list[bytes], stats: _DumpStats, *, skip_binary: bool) -> list[bytes]:
    if ks.binary_safe_args:
        return keys
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
    return sendable


class _Pager:
    """One round trip per SCAN page: SCAN page n+1, probe page n, read what the probe deferred.

    The probe is one EVAL of `_PROBE` (type, remaining TTL and, when small, the value of
    each key, atomically) or, where scripting is refused, TYPE + PTTL per key. Values the
    probe deferred (large, or no script) are read in the next round trip, as are keys whose
    type changed in between (up to `_ATTEMPTS` probes per key).
    """

    def __init__(self, ks: Keyspace, out: GzipSink, stats: _DumpStats) -> None:
        self.ks, self.out, self.stats = ks, out, stats
        self.script = True
        self.probe: list[tuple[bytes, int]] = []  # (key, attempt) to probe next
        self.reads: list[tuple[bytes, str, int, int]] = []  # (key, type, pttl, attempt) to read next

    @property
    def pending(self) -> bool:
        return bool(self.probe or self.reads)

    def step(self, scan: list[Arg] | None) -> Any:
        """One round trip; returns the SCAN reply (None without `scan`)."""
        probe, self.probe = self.probe, []
        reads, self.reads = self.reads, []
        cmds: list[Sequence[Arg]] = [scan] if scan else []
        script = self.script
        if probe and script:
            cmds.append(["EVAL", _PROBE, len(probe), *(k for k, _ in probe), _CAP, _STRING_CAP])
        elif probe:
            for key, _ in probe:
                cmds += [["TYPE", key], ["PTTL", key]]
        strings = [r for r in reads if r[1] == "string"]
        reads = [r for r in reads if r[1] != "string"]
        cmds += [_READ[name](key) for key, name, _, _ in reads]
        if strings:
            cmds.append(["MGET", *(r[0] for r in strings)])
        replies = self.ks.run(cmds) if cmds else []
        scan_reply = None
        if scan:
            scan_reply = replies.pop(0)
            if isinstance(scan_reply, Exception):
                raise UpstashCommandError(f"SCAN: {scan_reply}")
        if probe and script:
            self._probed_script(probe, replies.pop(0))
        elif probe:
            self._probed_meta(probe, replies[: 2 * len(probe)])
            del replies[: 2 * len(probe)]
        values = replies[: len(reads)]
        if strings:
            mget = replies[-1]
            if isinstance(mget, Exception):
                raise UpstashCommandError(f"MGET: {mget}")
            reads += strings
            values += list(mget)
        self._read(reads, values)
        return scan_reply

    def _probed_script(self, probe: list[tuple[bytes, int]], reply: Any) -> None:
        if (
            isinstance(reply, Exception)
            or not isinstance(reply, list)
            or len(reply) < 3
            or (len(reply) - 3) % 4
            or not isinstance(reply[0], bytes)
        ):
            logger.info(
                "redis dump: EVAL refused, probing with TYPE + PTTL", extra={"error": str(reply)[:200]}
            )
            self.script = False
            self.probe = probe + self.probe
            return
        rendered, strings, gone = reply[0], int(reply[1]), int(reply[2])
        if rendered:
            self.out.write(rendered)  # the small strings, already RESP (see `_PROBE`)
        self.stats.keys += strings
        self.stats.by_type["string"] += strings
        self.stats.vanished += gone
        for at in range(3, len(reply), 4):
            index, kind, pttl, value = reply[at : at + 4]
            key, attempt = probe[int(index) - 1]
            name = self._known(kind, pttl)
            if name is None:
                continue
            if value is None:
                self.reads.append((key, name, int(pttl), attempt))
            else:
                self._emit(key, name, value, int(pttl))

    def _probed_meta(self, probe: list[tuple[bytes, int]], meta: list[Any]) -> None:
        for i, (key, attempt) in enumerate(probe):
            kind, pttl = meta[2 * i], meta[2 * i + 1]
            if isinstance(kind, Exception) or isinstance(pttl, Exception):
                raise UpstashCommandError(
                    f"TYPE/PTTL failed: {kind if isinstance(kind, Exception) else pttl}"
                )
            name = self._known(kind, pttl)
            if name is not None:
                self.reads.append((key, name, int(pttl), attempt))

    def _known(self, kind: Any, pttl: Any) -> str | None:
        """The type name to read, or None (vanished or unsupported, counted)."""
        name = reply_text(kind)
        if name == "none" or pttl == -2:
            self.stats.vanished += 1
            return None
        if name not in _READ:
            self.stats.unsupported[name] = self.stats.unsupported.get(name, 0) + 1
            return None
        return name

    def _read(self, reads: list[tuple[bytes, str, int, int]], values: list[Any]) -> None:
        for (key, name, pttl, attempt), value in zip(reads, values, strict=True):
            if isinstance(value, Exception):
                if "WRONGTYPE" in str(value):
                    self._retry(key, attempt)  # re-created with another type since the probe
                    continue
                raise UpstashCommandError(f"{_READ[name](key)[0]!s}: {value}")
            if value is None and name == "string":
                self._retry(key, attempt)  # MGET gives nil for a deleted key and for one that changed type
                continue
            self._emit(key, name, value, pttl)

    def _retry(self, key: bytes, attempt: int) -> None:
        if attempt + 1 < _ATTEMPTS:
            self.probe.append((key, attempt + 1))
        else:
            self.stats.vanished += 1

    def _emit(self, key: bytes, name: str, value: Any, pttl: int) -> None:
        if value is None or (name != "stream" and value == []):
            self.stats.vanished += 1  # deleted (or expired) between the probe and the read
            return
        if name == "string" and isinstance(value, bytes):
            self.out.write(string_commands(key, value, pttl))
        else:
            if name == "stream":
                value = [(entry[0], entry[1]) for entry in value]
            for cmd in key_commands(key, name, value, pttl):
                self.out.write(resp.encode_command(cmd))
        self.stats.keys += 1
        self.stats.by_type[name] += 1


def _scan(pager: _Pager, options: EngineOptions) -> None:
    """Every matching key, once: SCAN pages (per `include` pattern) fed to the pager."""
    include: list[bytes | None] = [p.encode() for p in options.include]
    exclude = [p.encode() for p in options.exclude]
    # SCAN may return a key more than once; remember digests, not keys, to stay small.
    seen: set[bytes] = set()
    for match in include or [None]:
        cursor: Any = b"0"
        scanning = True
        while scanning or pager.pending:
            scan: list[Arg] | None = None
            if scanning:
                scan = ["SCAN", cursor, "COUNT", options.scan_count]
                if match is not None:
                    scan += ["MATCH", match]
            reply = pager.step(scan)
            if reply is None:
                continue
            cursor, keys = reply
            fresh = []
            for key in keys:
                digest = hashlib.blake2b(key, digest_size=16).digest()
                if digest in seen or (exclude and match_any(key, exclude)):
                    continue
                seen.add(digest)
                fresh.append(key)
            sendable = _sendable(pager.ks, fresh, pager.stats, skip_binary=options.skip_binary_keys)
            pager.probe += [(k, 0) for k in sendable]
            scanning = cursor not in (b"0", 0, "0")


def dump(ks: Keyspace, target: DumpTarget, options: EngineOptions) -> DumpResult:
    """SCAN the key space and stream it as a gzipped RESP command stream."""
    stats = _DumpStats()
    watch = Stopwatch()
    server_version = _server_version(ks)
    with target.open_object(DUMP_OBJECT, content_type="application/gzip") as writer:
        with GzipSink(writer, background=True) as out:  # compresses while the next page is read
            _scan(_Pager(ks, out, stats), options)
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
