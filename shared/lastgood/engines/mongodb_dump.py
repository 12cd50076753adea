"""MongoDB dump: the mongodump directory layout, streamed.

`mongorestore --gzip --dir <dir>` can restore it. Each included collection
becomes `<db>/<coll>.bson.gz` (the raw BSON of every document exactly as the
server sent it: `find_raw_batches`, no decode/re-encode, natural order,
streamed through gzip while the next batches are read ahead) and
`<db>/<coll>.metadata.json.gz` (mongodump's canonical
extended JSON: options, indexes, uuid, collectionName, type). Views and
`system.*` collections are not dumped. Collections are dumped
`PARALLEL_COLLECTIONS` at a time (`mongodb_parallel`), as mongodump does.
With `options.shard = (i, n)` only the collections `shard_of` puts in shard i of n are
dumped (the Fargate fan-out: `lastgood.backups.shard`), with the same object names.
"""

from __future__ import annotations

import gzip
import hashlib
import threading
from typing import Any

from bson import json_util
from bson.binary import Binary
from pymongo.errors import ConnectionFailure, PyMongoError

from lastgood.core.errors import BackupError, SourceUnavailable
from lastgood.core.observability import logger
from lastgood.core.redact import redact_text
from lastgood.engines.base import DumpResult, DumpTarget, EngineOptions, validate_relpath
from lastgood.engines.gzipsink import GzipSink
from lastgood.engines.mongodb_client import (
    RAW,
    bulk_client,
    database_of,
    get_client,
    plain_collections,
    selected,
)
from lastgood.engines.mongodb_parallel import PARALLEL_COLLECTIONS, prefetch, run_parallel

DUMP_BUFFER = 1 << 20  # raw BSON gathered before each zlib call: few, large compress calls
PREFETCH_BATCHES = 4  # server batches read ahead of gzip + upload, per collection


def shard_of(collection: str, shards: int) -> int:
    """The shard (0 … shards-1) a collection belongs to: SHA-256 of its name (UTF-8) mod `shards`.
    Stable across processes and Python versions (never `hash()`), so every shard task of one
    backup agrees on the partition."""
    if shards < 1:
        raise ValueError(f"shards must be at least 1, got {shards}")
    return int.from_bytes(hashlib.sha256(collection.encode("utf-8")).digest()[:8], "big") % shards


def collection_of(relpath: str) -> str | None:
    """The collection a dump object belongs to (`<db>/<coll>.bson.gz` or `.metadata.json.gz`)."""
    _, _, name = relpath.partition("/")
    for suffix in (".bson.gz", ".metadata.json.gz"):
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return None


def _object_paths(db: str, coll: str) -> tuple[str, str]:
    base = f"{db}/{coll}"
    try:
        validate_relpath(base + ".bson.gz")
    except ValueError:
        raise BackupError(
            f"collection {db}.{coll} has characters a backup object name cannot carry; "
            "exclude it (source option exclude) or rename it"
        ) from None
    return base + ".bson.gz", base + ".metadata.json.gz"  # exactly what `mongodump --gzip` writes


def _wrap(exc: PyMongoError, what: str, url: str) -> Exception:
    text = f"{what}: {type(exc).__name__}: {redact_text(str(exc), (url,))}"[:500]
    if isinstance(exc, ConnectionFailure):
        return SourceUnavailable(text)
    return BackupError(text)


def _count_docs(batch: bytes) -> int:
    """Documents in a buffer of concatenated BSON documents (each starts with its int32 length)."""
    count, offset, size = 0, 0, len(batch)
    while offset < size:
        length = int.from_bytes(batch[offset : offset + 4], "little")
        if length < 5:
            raise BackupError(f"malformed BSON in a server reply at offset {offset}")
        offset += length
        count += 1
    if offset != size:
        raise BackupError("truncated BSON document in a server reply")
    return count


def metadata_json(name: str, options: dict[str, Any], indexes: list[Any], uuid: str | None) -> bytes:
    """mongodump's `<coll>.metadata.json` (canonical extended JSON, the fields and order mongodump
    100.x writes: `options` and `uuid` omitted when empty, as its struct tags say)."""
    doc: dict[str, Any] = {}
    if options:
        doc["options"] = options
    doc["indexes"] = indexes
    if uuid:
        doc["uuid"] = uuid
    doc |= {"collectionName": name, "type": "collection"}
    return json_util.dumps(doc, json_options=json_util.CANONICAL_JSON_OPTIONS).encode("utf-8")


def _uuid_text(info: dict[str, Any]) -> str | None:
    uuid = (info.get("info") or {}).get("uuid")
    if uuid is None:
        return None
    if isinstance(uuid, Binary):
        return uuid.hex()
    hex_value = getattr(uuid, "hex", None)  # uuid.UUID; mongodump writes 32 hex digits, no dashes
    return hex_value if isinstance(hex_value, str) else str(uuid).replace("-", "")


def dump(url: str, target: DumpTarget, options: EngineOptions) -> DumpResult:
    """Stream every included collection as `<db>/<coll>.bson.gz` + `.metadata.json.gz`,
    `PARALLEL_COLLECTIONS` collections at a time (as mongodump does); any collection's
    failure stops the others and fails the dump (their objects are aborted)."""
    db_name = database_of(url, options.database)
    include, exclude = list(options.include), list(options.exclude)
    client = get_client(url)
    try:
        server_version = str(client.admin.command("buildInfo").get("version", "unknown"))
        skipped: list[str] = []
        infos = [
            i
            for i in plain_collections(client[db_name], skipped)
            if selected(f"{db_name}.{i['name']}", include, exclude)
            and (options.shard is None or shard_of(str(i["name"]), options.shard[1]) == options.shard[0])
            and str(i["name"]) not in options.skip_collections
        ]
    except PyMongoError as exc:
        raise _wrap(exc, f"listing collections of {db_name}", url) from None
    for info in infos:
        _object_paths(db_name, str(info["name"]))  # refuse an unnameable collection before any upload
    database = bulk_client(url, PARALLEL_COLLECTIONS)[db_name]

    def one(info: dict[str, Any], stop: threading.Event) -> tuple[str, int, int]:
        return _dump_collection(url, database, info, target, options.batch_size, stop)

    done = run_parallel(infos, one, workers=PARALLEL_COLLECTIONS)
    counts = {namespace: docs for namespace, docs, _ in sorted(done)}
    return DumpResult(
        server_version=server_version,
        tool_versions=_tool_versions(),
        extra={
            "counts": counts,
            "database": db_name,
            "raw_bson_bytes": sum(raw for _, _, raw in done),
            "format": "mongodump directory layout (mongorestore --gzip --dir)",
            "not_dumped": skipped,
        },
    )


def _dump_collection(
    url: str, database: Any, info: dict[str, Any], target: DumpTarget, batch_size: int, stop: threading.Event
) -> tuple[str, int, int]:
    """One collection: its raw batches (read ahead on their own thread) → gzip → the data object;
    then its metadata object. Returns (namespace, documents, raw BSON bytes)."""
    name = str(info["name"])
    namespace = f"{database.name}.{name}"
    data_path, meta_path = _object_paths(database.name, name)
    collection = database.get_collection(name, codec_options=RAW)
    try:
        # Indexes first: the metadata describes the collection as the dump found it.
        indexes = list(collection.list_indexes())
        with target.open_object(data_path, content_type="application/gzip") as writer:
            sink = GzipSink(writer, buffer_size=DUMP_BUFFER)
            docs = 0
            batches = collection.find_raw_batches({}, batch_size=batch_size)
            for batch in prefetch(batches, stop, depth=PREFETCH_BATCHES):
                docs += _count_docs(batch)
                sink.write(batch)
            sink.close()
            writer.count = docs
    except PyMongoError as exc:
        raise _wrap(exc, f"dumping {namespace}", url) from None
    with target.open_object(meta_path, content_type="application/gzip") as writer:
        metadata = metadata_json(name, dict(info.get("options") or {}), indexes, _uuid_text(info))
        writer.write(gzip.compress(metadata, mtime=0))
    logger.info("collection dumped", extra={"namespace": namespace, "documents": docs})
    return namespace, docs, sink.raw_bytes


def _tool_versions() -> dict[str, str]:
    import bson
    import pymongo

    return {"pymongo": pymongo.version, "bson": getattr(bson, "__version__", pymongo.version)}
