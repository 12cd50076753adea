"""Upstash Redis / Redis engine: probe, dump and restore.

The REST protocol is spoken by `lastgood.engines.upstash_rest.UpstashRest`.
Backups (`ENGINE.dump`) walk the key space with SCAN (never KEYS), pipelining
TYPE + PTTL and then one read per key (GET, HGETALL, LRANGE, SMEMBERS,
ZRANGE WITHSCORES, XRANGE), and write a gzipped RESP command stream
(`redis/dump.resp.gz`): per key `DEL`, the typed writes in chunks, then
`PEXPIRE <remaining ms>`. Replaying it is idempotent and `redis-cli --pipe`
loads it into any Redis/Valkey. An `https://` URL speaks the Upstash REST
API (token required); a `redis://`/`rediss://` URL (Upstash also offers one)
uses the Redis protocol through the `valkey` client.

Known limits, by design of the REST API (JSON cannot carry arbitrary bytes in
a request): through REST a key NAME that is not valid UTF-8 can be listed but
not read, and a restore cannot send binary arguments. Binary values dump fine
through REST (replies are base64). The dump refuses such keys loudly unless
the source option `skip_binary_keys` is set (then they are counted in
`extra.skipped_binary_keys`); a REST restore checks the whole stream first
and refuses before writing anything. Use the database's `rediss://` endpoint
for fully binary key spaces. Stream consumer groups are not backed up.
"""

from __future__ import annotations

import fnmatch
import gzip
import hashlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, BinaryIO, cast

from lastgood.core.errors import BackupError, ConfigError, RestoreError, SourceUnavailable
from lastgood.core.observability import logger
from lastgood.core.redact import redact_text
from lastgood.core.settings import get_settings
from lastgood.engines import resp
from lastgood.engines.base import (
    DumpResult,
    DumpTarget,
    EngineOptions,
    FunctionEngine,
    ObjectSource,
    ProbeResult,
    ProgressFn,
    RestoreResult,
    Stopwatch,
    require_tls,
)
from lastgood.engines.gzipsink import GzipSink
from lastgood.engines.upstash_rest import (
    Arg,
    UpstashCommandError,
    UpstashError,
    UpstashRest,
)


def probe(url: str, *, timeout_s: float, token: str | None = None) -> ProbeResult:
    watch = Stopwatch()
    try:
        with UpstashRest(url, token or "", timeout_s=timeout_s) as rest:
            reply = rest.command("PING")
        ok = reply in (b"PONG", "PONG")
        return ProbeResult("upstash", ok, watch.ms, None if ok else f"unexpected PING reply {reply!r}")
    except (UpstashError, ValueError) as exc:
        error = f"{type(exc).__name__}: {redact_text(str(exc), (token or '',))}"
        return ProbeResult("upstash", False, watch.ms, error[:300])


# --------------------------------------------------------------------------- key space access


class RedisUnavailable(SourceUnavailable):
    """A `redis://` source or target failed (connection, timeout, protocol)."""


class _Keyspace:
    """What dump/restore need from a key space; REST and Redis protocol behind one face.

    `run` pipelines commands and returns one item per command: the raw reply
    (bytes, int, None or nested lists) or the server's error as an exception.
    """

    kind = "?"
    binary_safe_args = True

    def run(self, commands: Sequence[Sequence[Arg]]) -> list[Any]:
        raise NotImplementedError

    def close(self) -> None:  # pragma: no cover - overridden
        pass


class _RestKeyspace(_Keyspace):
    kind = "upstash-rest"
    binary_safe_args = False

    def __init__(self, url: str, token: str, timeout_s: float) -> None:
        self.rest = UpstashRest(url, token, timeout_s=timeout_s)

    def run(self, commands: Sequence[Sequence[Arg]]) -> list[Any]:
        return list(self.rest.pipeline(commands, raise_on_error=False))

    def close(self) -> None:
        self.rest.close()


class _RedisKeyspace(_Keyspace):
    kind = "redis"

    def __init__(self, url: str, timeout_s: float) -> None:
        import valkey

        require_tls(
            url,
            secure=url.startswith("rediss://"),
            allow_insecure=get_settings().allow_insecure_transport,
            what="Redis",
        )
        self._url = url
        self._errors: tuple[type[BaseException], ...] = (valkey.exceptions.ValkeyError, OSError)
        self._client: Any = valkey.Valkey.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=min(timeout_s, 5.0)
        )
        # Raw replies, the same shapes the REST API gives: no per-command parsing.
        self._client.response_callbacks.clear()  # this client's own copy

    def run(self, commands: Sequence[Sequence[Arg]]) -> list[Any]:
        if not commands:
            return []
        pipe = self._client.pipeline(transaction=False)
        for cmd in commands:
            pipe.execute_command(*cmd)
        try:
            replies: list[Any] = pipe.execute(raise_on_error=False)
        except self._errors as exc:
            raise RedisUnavailable(
                f"Redis {type(exc).__name__}: {redact_text(str(exc), (self._url,))}"[:300]
            ) from None
        return replies

    def close(self) -> None:
        self._client.close()


def _is_rest_url(url: str) -> bool:
    return url.startswith(("https://", "http://"))


def open_keyspace(url: str, *, token: str | None = None, timeout_s: float = 30.0) -> _Keyspace:
    """A key space client for an Upstash REST URL (https) or a Redis URL (redis/rediss)."""
    if _is_rest_url(url):
        if not token:
            raise ConfigError("an Upstash REST URL needs its token (token_secret in the source config)")
        return _RestKeyspace(url, token, timeout_s)
    if url.startswith(("redis://", "rediss://", "unix://")):
        return _RedisKeyspace(url, timeout_s)
    raise ConfigError("Redis/Upstash URL must start with https:// (Upstash REST) or redis:// / rediss://")


def _one(ks: _Keyspace, *cmd: Arg) -> Any:
    reply = ks.run([cmd])[0]
    if isinstance(reply, Exception):
        raise UpstashCommandError(f"{cmd[0]!s}: {reply}")
    return reply


# --------------------------------------------------------------------------- dump

DUMP_OBJECT = "redis/dump.resp.gz"
TYPES = ("string", "hash", "list", "set", "zset", "stream")
_READ: dict[str, Callable[[bytes], list[Arg]]] = {
    "string": lambda k: ["GET", k],
    "hash": lambda k: ["HGETALL", k],
    "list": lambda k: ["LRANGE", k, 0, -1],
    "set": lambda k: ["SMEMBERS", k],
    "zset": lambda k: ["ZRANGE", k, 0, -1, "WITHSCORES"],
    "stream": lambda k: ["XRANGE", k, "-", "+"],
}
_WRITE_TYPE = {b"SET": "string", b"HSET": "hash", b"RPUSH": "list", b"SADD": "set", b"ZADD": "zset"}
_WRITE_TYPE[b"XADD"] = "stream"
_ATTEMPTS = 3  # a key whose type changes between TYPE and its read is re-read this often


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


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


def _server_version(ks: _Keyspace) -> str:
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


def _tool_versions(ks: _Keyspace) -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    names = ["httpx"] if isinstance(ks, _RestKeyspace) else ["valkey"]
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


def _utf8(key: bytes) -> bool:
    try:
        key.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _match_any(key: bytes, patterns: list[bytes]) -> bool:
    text = key.decode("latin-1")
    return any(fnmatch.fnmatchcase(text, p.decode("latin-1")) for p in patterns)


def _dump_batch(
    ks: _Keyspace, keys: list[bytes], out: GzipSink, stats: _DumpStats, *, skip_binary: bool
) -> None:
    if not ks.binary_safe_args:
        sendable = []
        for key in keys:
            if _utf8(key):
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
            name = _text(kind)
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


def dump(url: str, target: DumpTarget, *, options: EngineOptions, token: str | None = None) -> DumpResult:
    """SCAN the key space and stream it as a gzipped RESP command stream."""
    batch = options.scan_count
    include: list[bytes | None] = [p.encode() for p in options.include]
    exclude = [p.encode() for p in options.exclude]
    skip_binary = options.skip_binary_keys
    stats = _DumpStats()
    watch = Stopwatch()
    ks = open_keyspace(url, token=token)
    try:
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
                    cursor, keys = _one(ks, *scan)
                    fresh = []
                    for key in keys:
                        digest = hashlib.blake2b(key, digest_size=16).digest()
                        if digest in seen or (exclude and _match_any(key, exclude)):
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
    finally:
        ks.close()
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


# --------------------------------------------------------------------------- restore


def _binary_arg(cmd: list[bytes]) -> bytes | None:
    for arg in cmd:
        if not _utf8(arg):
            return arg
    return None


def _restore_stream(
    ks: _Keyspace,
    commands: Iterator[list[bytes]],
    only: list[bytes],
    counts: dict[str, int],
    progress: ProgressFn | None,
    batch_size: int,
    what: str,
) -> None:
    batch: list[list[bytes]] = []
    batch_bytes = 0
    skipping = False
    first_write = False  # the command right after a DEL names the key's type

    def flush() -> None:
        nonlocal batch_bytes
        replies = ks.run(batch)
        for cmd, reply in zip(batch, replies, strict=True):
            if isinstance(reply, Exception):
                raise RestoreError(f"{what}: {cmd[0].decode(errors='replace')} {cmd[1]!r} failed: {reply}")
        batch.clear()
        batch_bytes = 0

    for cmd in commands:
        if len(cmd) < 2:
            raise RestoreError(f"{what}: unexpected command {cmd[0]!r} without a key")
        verb = cmd[0].upper()
        if verb == b"DEL":
            skipping = bool(only) and not _match_any(cmd[1], only)
            if skipping:
                continue
            # Batches end only at a key boundary, so a re-sent batch never duplicates list items.
            if len(batch) >= batch_size or batch_bytes >= (1 << 20):
                flush()
            counts["keys"] += 1
            first_write = True
            if progress and counts["keys"] % 10000 == 0:
                progress(f"{what}: {counts['keys']} keys restored")
        elif skipping:
            continue
        elif first_write:
            first_write = False
            if verb in _WRITE_TYPE:
                counts[_WRITE_TYPE[verb]] += 1
        batch.append(cmd)
        batch_bytes += sum(len(a) for a in cmd)
    if batch:
        flush()


def restore(
    url: str,
    source: ObjectSource,
    *,
    only: list[str] | None = None,
    force: bool = False,
    token: str | None = None,
    progress: ProgressFn | None = None,
) -> RestoreResult:
    """Replay the backup's RESP stream into a Redis/Valkey (redis://) or Upstash (REST) target."""
    patterns = [p.encode() for p in only or []]
    objects = [o for o in source.list_objects() if o.endswith(".resp.gz") or o.endswith(".resp")]
    if not objects:
        raise RestoreError("backup holds no RESP stream (expected redis/dump.resp.gz)")
    ks = open_keyspace(url, token=token)
    try:
        if not force and _dbsize(ks) != 0:
            raise RestoreError(
                "target key space is not empty; pass --force to overwrite the backup's keys "
                "(other keys are left as they are)"
            )
        if not ks.binary_safe_args:
            for relpath in objects:  # check everything before the first write
                with _open_commands(source, relpath) as commands:
                    for cmd in commands:
                        bad = _binary_arg(cmd)
                        if bad is not None:
                            raise RestoreError(
                                f"{relpath}: {cmd[0].decode(errors='replace')} carries a binary argument "
                                f"({bad[:20]!r}…) the Upstash REST API cannot send; restore into the "
                                "database's rediss:// endpoint instead (redis-cli --pipe works too)"
                            )
        counts: dict[str, int] = {"keys": 0, **dict.fromkeys(TYPES, 0)}
        batch_size = 1000 if ks.binary_safe_args else 200
        for relpath in objects:
            with _open_commands(source, relpath) as commands:
                _restore_stream(ks, commands, patterns, counts, progress, batch_size, relpath)
        if progress:
            progress(f"restored {counts['keys']} keys")
        return RestoreResult(counts=counts)
    finally:
        ks.close()


@contextmanager
def _open_commands(source: ObjectSource, relpath: str) -> Iterator[Iterator[list[bytes]]]:
    with source.open_object(relpath) as raw:
        stream = cast(BinaryIO, gzip.GzipFile(fileobj=raw, mode="rb")) if relpath.endswith(".gz") else raw
        try:
            yield resp.iter_commands(stream)
        except (OSError, EOFError, resp.RespProtocolError) as exc:
            raise RestoreError(f"{relpath}: unreadable RESP stream: {exc}") from None


# --------------------------------------------------------------------------- emptiness and counts


def _dbsize(ks: _Keyspace) -> int:
    return int(_one(ks, "DBSIZE"))


def is_empty(url: str, *, token: str | None = None) -> bool:
    ks = open_keyspace(url, token=token)
    try:
        return _dbsize(ks) == 0
    finally:
        ks.close()


def counts(url: str, *, token: str | None = None) -> dict[str, int]:
    """`{"keys": n, "string": …, "hash": …}` over the whole key space (SCAN + TYPE)."""
    out: dict[str, int] = {"keys": 0, **dict.fromkeys(TYPES, 0)}
    ks = open_keyspace(url, token=token)
    try:
        cursor: Any = b"0"
        seen: set[bytes] = set()
        while True:
            cursor, keys = _one(ks, "SCAN", cursor, "COUNT", 1000)
            keys = [k for k in keys if k not in seen]
            seen.update(keys)
            if not ks.binary_safe_args:
                keys = [k for k in keys if _utf8(k)]
            for kind in ks.run([["TYPE", k] for k in keys]):
                name = _text(kind)
                if name in out:
                    out["keys"] += 1
                    out[name] += 1
            if cursor in (b"0", 0, "0"):
                break
    finally:
        ks.close()
    return out


def wipe(url: str, *, token: str | None = None) -> None:
    """FLUSHDB: empty the URL's key space (scratch drills, migration rollback)."""
    ks = open_keyspace(url, token=token)
    try:
        _one(ks, "FLUSHDB")
    finally:
        ks.close()


def probe_any(url: str, *, timeout_s: float, token: str | None = None) -> ProbeResult:
    """Probe a REST (https) or plain redis:// source."""
    if _is_rest_url(url):
        return probe(url, timeout_s=timeout_s, token=token)
    watch = Stopwatch()
    try:
        ks = open_keyspace(url, timeout_s=timeout_s)
        try:
            reply = _one(ks, "PING")
        finally:
            ks.close()
        ok = reply in (b"PONG", "PONG", True)
        return ProbeResult("redis", ok, watch.ms, None if ok else f"unexpected PING reply {reply!r}")
    except (SourceUnavailable, ConfigError) as exc:
        return ProbeResult("redis", False, watch.ms, f"{type(exc).__name__}: {exc}"[:300])


ENGINE = FunctionEngine(
    "upstash", probe=probe_any, dump=dump, restore=restore, is_empty=is_empty, counts=counts, wipe=wipe
)
