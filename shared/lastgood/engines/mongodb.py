"""MongoDB engine: probe, dump, restore, counts, emptiness and wipe of a database.

Connection policy and the shared names: `lastgood.engines.mongodb_client`;
the mongodump-layout dump: `mongodb_dump`; the raw-BSON restore: `mongodb_restore`.
"""

from __future__ import annotations

from typing import Any

from pymongo import MongoClient
from pymongo.errors import PyMongoError

from lastgood.core.errors import SourceUnavailable
from lastgood.core.redact import redact_text
from lastgood.engines import mongodb_dump, mongodb_restore
from lastgood.engines.base import (
    DumpResult,
    DumpTarget,
    EngineOptions,
    ObjectSource,
    ProbeResult,
    ProgressFn,
    RestoreResult,
    ServerIdentity,
    SizeEstimate,
    Stopwatch,
    endpoint_names,
)
from lastgood.engines.mongodb_client import close_clients, database_of, get_client, plain_collections

__all__ = ["ENGINE", "MongoEngine", "close_clients", "database_of", "get_client"]


def _user_collections(client: MongoClient[Any], db_name: str) -> list[str]:
    return [str(i["name"]) for i in plain_collections(client[db_name])]


def _count(collection: Any) -> int:
    """Documents in the collection, counted by the server (`$count`: a scan, not the metadata's
    estimate; what `count_documents({})` counts, without its `$group` stage)."""
    result = list(collection.aggregate([{"$count": "n"}]))
    return int(result[0]["n"]) if result else 0


class MongoEngine:
    """The Engine protocol for MongoDB (see the module docstrings)."""

    name = "mongodb"

    def probe(self, url: str, *, timeout_s: float, token: str | None = None) -> ProbeResult:
        """`ping` the server; reports the error class (redacted), never raises."""
        watch = Stopwatch()
        try:
            client = get_client(url, server_selection_timeout_ms=max(1, int(timeout_s * 1000)))
            client.admin.command("ping")
            return ProbeResult("mongodb", True, watch.ms)
        except PyMongoError as exc:
            return ProbeResult(
                "mongodb", False, watch.ms, f"{type(exc).__name__}: {redact_text(str(exc), (url,))}"[:300]
            )

    def dump(
        self, url: str, target: DumpTarget, *, options: EngineOptions, token: str | None = None
    ) -> DumpResult:
        """Stream every included collection as `<db>/<coll>.bson.gz` + `.metadata.json`."""
        return mongodb_dump.dump(url, target, options)

    def restore(
        self,
        url: str,
        source: ObjectSource,
        *,
        only: list[str] | None = None,
        force: bool = False,
        token: str | None = None,
        progress: ProgressFn | None = None,
    ) -> RestoreResult:
        return mongodb_restore.restore(url, source, only=only, force=force, progress=progress)

    def counts(self, url: str, *, token: str | None = None) -> dict[str, int]:
        """`{"<db>.<coll>": documents}` for every collection of the URL's database."""
        db_name = database_of(url)
        client = get_client(url)
        try:
            return {
                f"{db_name}.{name}": _count(client[db_name][name])
                for name in _user_collections(client, db_name)
            }
        except PyMongoError as exc:
            raise SourceUnavailable(
                f"counting {db_name}: {type(exc).__name__}: {redact_text(str(exc), (url,))}"
            ) from None

    def is_empty(self, url: str, *, token: str | None = None) -> bool:
        db_name = database_of(url)
        client = get_client(url)
        try:
            return all(
                client[db_name][name].find_one({}, projection={"_id": 1}) is None
                for name in _user_collections(client, db_name)
            )
        except PyMongoError as exc:
            raise SourceUnavailable(
                f"checking {db_name}: {type(exc).__name__}: {redact_text(str(exc), (url,))}"
            ) from None

    def wipe(self, url: str, *, token: str | None = None) -> None:
        """Drop every user collection of the URL's database (scratch drills, migration rollback)."""
        db_name = database_of(url)
        client = get_client(url)
        try:
            for name in _user_collections(client, db_name):
                client[db_name].drop_collection(name)
        except PyMongoError as exc:
            raise SourceUnavailable(
                f"wiping {db_name}: {type(exc).__name__}: {redact_text(str(exc), (url,))}"
            ) from None

    def identity(self, url: str, token: str | None = None) -> ServerIdentity:
        """The replica-set name (`hello.setName`) or, for a standalone server or mongos, the sorted
        resolved hosts it answers on (`hello.hosts` / `me`, else the connected nodes) + the database."""
        db_name = database_of(url)
        client = get_client(url, server_selection_timeout_ms=5000)
        try:
            hello = client.admin.command("hello")
            nodes = {(str(h), int(p or 27017)) for h, p in client.nodes}
        except PyMongoError as exc:
            raise SourceUnavailable(
                f"MongoDB identity: {type(exc).__name__}: {redact_text(str(exc), (url,))}"[:500]
            ) from None
        for member in [*hello.get("hosts", []), *([hello["me"]] if hello.get("me") else [])]:
            host, _, port = str(member).rpartition(":")
            if host and port.isdigit():
                nodes.add((host, int(port)))
        names = sorted({n for host, port in nodes for n in endpoint_names(host, port, resolve=True)})
        aliases = tuple(f"addr:{n}" for n in names)
        if hello.get("setName"):
            server_id, method = f"replset:{hello['setName']}", "replica-set name (hello.setName)"
        else:
            server_id = "hosts:" + ",".join(names)
            method = "resolved hosts (no replica-set name: standalone server or mongos)"
        return ServerIdentity(
            engine="mongodb", server_id=server_id, database=db_name, method=method, aliases=aliases
        )

    def estimate_size(
        self, url: str, *, token: str | None = None, database: str | None = None
    ) -> SizeEstimate:
        from lastgood.engines.sizes import mongodb_size  # dbStats (lastgood.engines.sizes)

        return mongodb_size(url, database)


ENGINE = MongoEngine()
