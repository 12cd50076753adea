"""The contract between engines (sources/*) and the store/backup/restore code.

The store knows nothing of databases; an engine does not know whether the CLI
or a handler called it. A dump writes named objects through a `DumpTarget`
(the backup run streams each to S3 multipart, hashing as it goes); a restore
reads them back through an `ObjectSource` that has already verified them.
A dump is told what to take by one `EngineOptions`, the same model for every engine.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Literal, Protocol
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field

from lastgood.core.errors import ConfigError

# Object names inside a backup: relative, no `.`/`..` segments, no `//`.
_RELPATH_RE = re.compile(r"^(?!/)(?!.*(?:^|/)\.\.?(?:/|$))[A-Za-z0-9._/+=@-]{1,512}$")
# Names that live next to the data objects in a backup prefix and are not data.
# Names next to the data objects in a backup prefix that are not data (engines must never
# write them); lastgood.backups.keys spells the same names as MANIFEST_NAME / VERIFICATION_NAME.
RESERVED_NAMES = frozenset({"manifest.json", "verification.json", "accepted.json"})


def validate_relpath(relpath: str) -> str:
    """Refuse object paths that could escape the backup prefix or collide with the manifest."""
    if not _RELPATH_RE.match(relpath) or relpath in RESERVED_NAMES or "//" in relpath:
        raise ValueError(f"invalid backup object path {relpath!r}")
    return relpath


class EngineOptions(BaseModel):
    """What a dump takes, from the source's config (the backup run's `engine_options`).

    `source`: the source's name. `include` / `exclude`: PostgreSQL schema (`public`)
    or table (`audit.*`) patterns, MongoDB `db.collection` or collection patterns,
    Redis key patterns. `pg_dump_args`: extra pg_dump arguments (PostgreSQL).
    `database`: the MongoDB database to dump when the URL names none.
    `skip_binary_keys`: through the Upstash REST API, skip (and count) key names
    that are not UTF-8 instead of failing. `batch_size` (MongoDB find batch) and
    `scan_count` (Redis SCAN page) size the round trips.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    source: str | None = None
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    pg_dump_args: tuple[str, ...] = ()
    database: str | None = None
    skip_binary_keys: bool = False
    batch_size: int = 1000
    scan_count: int = 500
    # PostgreSQL: dump in this exported snapshot (a logical replication slot's, for PITR) instead
    # of exporting one; the exporting connection must stay open while the dump runs.
    snapshot: str | None = None
    # MongoDB on Fargate (`fargate_shards`): dump only the collections of shard (index, of), by
    # `mongodb_dump.shard_of` (a stable hash of the collection's name).
    shard: tuple[int, int] | None = None
    # ... leaving out these collections (an earlier attempt of the shard finished them).
    skip_collections: tuple[str, ...] = ()


class ServerIdentity(BaseModel):
    """Which database a URL reaches, as the server says it — not as the URL spells it.

    `engine`: the family (`postgres`, `mongodb`, `redis`; Upstash is `redis`). `server_id`:
    the server's own name for itself (`pg-system:<system_identifier>`, `replset:<name>`,
    `redis-run:<run_id>`) or, where the engine offers none, its resolved endpoints
    (`hosts:…`, `addr:…`). `database`: the database / db number inside it. `method`: how
    `server_id` was determined, for the message a refusal prints. `aliases`: other names
    of the same server (resolved endpoints) — two identities are the same target when
    engine and database are equal and any of their names is shared.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    engine: Literal["postgres", "mongodb", "redis"]
    server_id: str = Field(min_length=1)
    database: str
    method: str
    aliases: tuple[str, ...] = ()

    @property
    def names(self) -> frozenset[str]:
        return frozenset((self.server_id, *self.aliases))

    def same_target(self, other: ServerIdentity) -> bool:
        return (
            self.engine == other.engine
            and self.database == other.database
            and not self.names.isdisjoint(other.names)
        )

    def with_database(self, database: str) -> ServerIdentity:
        return self.model_copy(update={"database": database})

    def describe(self) -> str:
        return f"{self.engine} server {self.server_id} ({self.method}), database {self.database!r}"


def engine_family(engine: str) -> Literal["postgres", "mongodb", "redis"]:
    """`upstash` and `redis` sources are one family: either can be the other behind another protocol."""
    if engine in ("upstash", "redis"):
        return "redis"
    if engine == "postgres":
        return "postgres"
    return "mongodb"


def endpoint_names(host: str | None, port: int | None, *, resolve: bool = False) -> list[str]:
    """Canonical `host:port` names of one endpoint: every loopback spelling is `loopback:<port>`,
    IP literals are normalised; with `resolve`, a DNS name becomes the addresses it resolves to
    (sorted), else it is kept lower-cased."""
    name = (host or "").strip().strip("[]").lower().rstrip(".")
    if name.startswith("/"):
        return [f"unix:{name}"]
    if not name or is_loopback_host(name):
        return [f"loopback:{port}"]
    try:
        return [f"{ipaddress.ip_address(name).compressed}:{port}"]
    except ValueError:
        pass
    if resolve:
        try:
            infos = socket.getaddrinfo(name, port, proto=socket.IPPROTO_TCP)
        except OSError:
            infos = []
        addresses = sorted({str(info[4][0]) for info in infos})
        if addresses:
            return sorted({n for a in addresses for n in endpoint_names(a, port)})
    return [f"{name}:{port}"]


@dataclass
class ProbeResult:
    """One dependency check: never raises, always measured."""

    name: str
    ok: bool
    latency_ms: float
    error: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "latency_ms": round(self.latency_ms, 1), "error": self.error, **self.detail}


class ObjectWriter(Protocol):
    """A file-like sink for one backup object; `count` is recorded in the manifest."""

    count: int | None

    def write(self, data: bytes) -> int: ...


class DumpTarget(Protocol):
    def open_object(
        self, relpath: str, *, content_type: str = "application/octet-stream"
    ) -> AbstractContextManager[ObjectWriter]:
        """Open `backups/<source>/<backup_id>/<relpath>` for streaming writes."""
        ...


class ObjectSource(Protocol):
    def list_objects(self) -> list[str]:
        """Relative paths of the backup's data objects (manifest order)."""
        ...

    def open_object(self, relpath: str) -> AbstractContextManager[BinaryIO]:
        """A readable stream of a verified object."""
        ...

    def expected_count(self, relpath: str) -> int | None: ...


@dataclass
class DumpResult:
    server_version: str
    tool_versions: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class RestoreResult:
    # Per object/collection/table/key-space: restored count.
    counts: dict[str, int] = field(default_factory=dict)
    # `counts` are the target's own exact counts after the restore (as `Engine.counts` gives them),
    # so the caller need not count again.
    exact: bool = False


ProgressFn = Callable[[str], None]


@dataclass
class SizeEstimate:
    """How big a source is now, as its server reports it (`lastgood backup --estimate`).

    `bytes`: the data's size (None where the server reports none); `records`: rows, documents or
    keys where cheaply known; `method`: which server statistic, for the report (never a guess)."""

    bytes: int | None
    records: int | None
    method: str


class Engine(Protocol):
    name: str

    def probe(self, url: str, *, timeout_s: float, token: str | None = None) -> ProbeResult: ...

    def dump(
        self, url: str, target: DumpTarget, *, options: EngineOptions, token: str | None = None
    ) -> DumpResult: ...

    def restore(
        self,
        url: str,
        source: ObjectSource,
        *,
        only: list[str] | None = None,
        force: bool = False,
        token: str | None = None,
        progress: ProgressFn | None = None,
    ) -> RestoreResult: ...

    def is_empty(self, url: str, *, token: str | None = None) -> bool: ...

    def counts(self, url: str, *, token: str | None = None) -> dict[str, int]:
        """Per collection/table/key-space counts, keyed like the manifest's objects."""
        ...

    def wipe(self, url: str, *, token: str | None = None) -> None:
        """Remove every user object from the target (scratch drills, migration rollback)."""
        ...

    def identity(self, url: str, token: str | None = None) -> ServerIdentity:
        """The server and database `url` reaches (read-only; raises SourceUnavailable if it cannot)."""
        ...

    def estimate_size(
        self, url: str, *, token: str | None = None, database: str | None = None
    ) -> SizeEstimate:
        """The source's current size from one cheap server statistic (read-only; SourceUnavailable).
        `database`: the source's MongoDB database option (others ignore it)."""
        ...


def is_loopback_host(host: str | None) -> bool:
    if not host or host == "localhost" or host.startswith("/"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def require_tls(url: str, *, secure: bool, allow_insecure: bool, what: str) -> None:
    """Refuse a plaintext connection to a non-loopback host unless explicitly allowed."""
    host = urlsplit(url).hostname
    if secure or allow_insecure or is_loopback_host(host):
        return
    raise ConfigError(
        f"{what}: connection to non-loopback host {host!r} without TLS is refused; "
        "enable TLS or set ALLOW_INSECURE_TRANSPORT=true to opt out"
    )


class Stopwatch:
    def __init__(self) -> None:
        self.start = time.perf_counter()

    @property
    def ms(self) -> float:
        return (time.perf_counter() - self.start) * 1000.0


def iter_chunks(stream: BinaryIO, size: int = 1 << 20) -> Iterator[bytes]:
    while chunk := stream.read(size):
        yield chunk
