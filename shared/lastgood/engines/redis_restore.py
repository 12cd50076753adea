"""Redis restore: replay a backup's RESP command stream into a key space.

Batches end only at a key boundary (a re-sent batch never duplicates list
items); keys are counted by the type of their first write. Through REST
every command is checked first, and a binary argument refuses the restore
before anything is written.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO, cast

from lastgood.core.errors import RestoreError
from lastgood.engines import resp
from lastgood.engines.base import ObjectSource, ProgressFn, RestoreResult
from lastgood.engines.redis_keyspace import TYPES, Keyspace, dbsize, is_utf8, match_any

_WRITE_TYPE = {b"SET": "string", b"HSET": "hash", b"RPUSH": "list", b"SADD": "set", b"ZADD": "zset"}
_WRITE_TYPE[b"XADD"] = "stream"


def _binary_arg(cmd: list[bytes]) -> bytes | None:
    for arg in cmd:
        if not is_utf8(arg):
            return arg
    return None


def _restore_stream(
    ks: Keyspace,
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
            skipping = bool(only) and not match_any(cmd[1], only)
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


def resp_objects(source: ObjectSource) -> list[str]:
    """The backup's RESP stream objects; refuses a backup that has none."""
    objects = [o for o in source.list_objects() if o.endswith(".resp.gz") or o.endswith(".resp")]
    if not objects:
        raise RestoreError("backup holds no RESP stream (expected redis/dump.resp.gz)")
    return objects


def restore(
    ks: Keyspace,
    source: ObjectSource,
    objects: list[str],
    *,
    only: list[str] | None,
    force: bool,
    progress: ProgressFn | None,
) -> RestoreResult:
    """Replay the backup's RESP stream into a Redis/Valkey (redis://) or Upstash (REST) target."""
    patterns = [p.encode() for p in only or []]
    if not force and dbsize(ks) != 0:
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


@contextmanager
def _open_commands(source: ObjectSource, relpath: str) -> Iterator[Iterator[list[bytes]]]:
    with source.open_object(relpath) as raw:
        stream = cast(BinaryIO, gzip.GzipFile(fileobj=raw, mode="rb")) if relpath.endswith(".gz") else raw
        try:
            yield resp.iter_commands(stream)
        except (OSError, EOFError, resp.RespProtocolError) as exc:
            raise RestoreError(f"{relpath}: unreadable RESP stream: {exc}") from None
