"""MongoDB engine: connection policy, probe, dump and restore.

Connection policy (seed 000: serverless functions exhausted Atlas' pool):
maxPoolSize 1, maxIdleTimeMS 5000, waitQueueTimeoutMS 3000 and a short server
selection timeout; one client per URL per process, created lazily and reused
by warm invocations. TLS is required for non-loopback hosts unless
ALLOW_INSECURE_TRANSPORT is set.

Dump: the mongodump directory layout, so `mongorestore --gzip --dir <dir>` can
restore it. Each included collection becomes `<db>/<coll>.bson.gz` (the raw
BSON of every document exactly as the server sent it: `find_raw_batches`,
no decode/re-encode, natural order, streamed through gzip) and
`<db>/<coll>.metadata.json` (mongodump's canonical extended JSON: options,
indexes, uuid, collectionName, type). Restore inserts the raw documents in
unordered batches (so `_id` and every value are kept byte for byte), then
recreates the indexes from the metadata. Views and `system.*` collections
are not dumped.
"""

from __future__ import annotations

import fnmatch
import gzip
import threading
from typing import Any, BinaryIO, cast
from urllib.parse import parse_qs, urlsplit

import bson
from bson import json_util
from bson.binary import Binary
from bson.codec_options import CodecOptions
from bson.int64 import Int64
from bson.raw_bson import RawBSONDocument
from pymongo import IndexModel, MongoClient
from pymongo.errors import ConnectionFailure, PyMongoError

from lastgood.core.errors import BackupError, RestoreError, SourceUnavailable
from lastgood.core.observability import logger
from lastgood.core.redact import redact_text
from lastgood.core.settings import get_settings
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
    validate_relpath,
)
from lastgood.engines.gzipsink import GzipSink

# Documents stay raw BSON bytes from the server to the backup and back: no decode/re-encode.
_RAW: CodecOptions[RawBSONDocument] = CodecOptions(document_class=RawBSONDocument)

_clients: dict[tuple[str, int | None], MongoClient[Any]] = {}
_lock = threading.Lock()


def _tls_requested(url: str) -> bool:
    if url.startswith("mongodb+srv://"):
        return True  # SRV URLs default to TLS
    query = {k.lower(): v for k, v in parse_qs(urlsplit(url).query).items()}
    return any(v and v[-1].lower() == "true" for k, v in query.items() if k in ("tls", "ssl"))


def get_client(url: str, *, server_selection_timeout_ms: int | None = None) -> MongoClient[Any]:
    """The process-wide client for `url` with the fail-fast pool policy."""
    settings = get_settings()
    require_tls(
        url, secure=_tls_requested(url), allow_insecure=settings.allow_insecure_transport, what="MongoDB"
    )
    key = (url, server_selection_timeout_ms)
    with _lock:
        client = _clients.get(key)
        if client is None:
            client = MongoClient(
                url,
                maxPoolSize=settings.mongo_max_pool_size,
                maxIdleTimeMS=settings.mongo_max_idle_time_ms,
                waitQueueTimeoutMS=settings.mongo_wait_queue_timeout_ms,
                serverSelectionTimeoutMS=server_selection_timeout_ms
                or settings.mongo_server_selection_timeout_ms,
                connectTimeoutMS=min(
                    5000, server_selection_timeout_ms or settings.mongo_server_selection_timeout_ms
                ),
                socketTimeoutMS=60000,
                appname="lastgood",
                connect=False,
            )
            _clients[key] = client
        return client


def close_clients() -> None:
    with _lock:
        for client in _clients.values():
            client.close()
        _clients.clear()


def probe(url: str, *, timeout_s: float, token: str | None = None) -> ProbeResult:
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


# --------------------------------------------------------------------------- names and selection


def database_of(url: str, database: str | None = None) -> str:
    """`database` (the source's option) if set, else the one the URL names; MONGODB_DB_NAME otherwise."""
    if database:
        return database
    from pymongo.uri_parser import parse_uri

    try:
        named = parse_uri(url, validate=False, warn=True).get("database")
    except (PyMongoError, ValueError):
        named = None
    return str(named or get_settings().mongodb_db_name)


def _url_database(url: str) -> str | None:
    path = urlsplit(url).path.lstrip("/")
    return path.split("?")[0] or None


def _matches(namespace: str, patterns: list[str]) -> bool:
    coll = namespace.split(".", 1)[1]
    return any(fnmatch.fnmatchcase(namespace if "." in p else coll, p) for p in patterns)


def _selected(namespace: str, include: list[str], exclude: list[str]) -> bool:
    if include and not _matches(namespace, include):
        return False
    return not (exclude and _matches(namespace, exclude))


def _object_paths(db: str, coll: str) -> tuple[str, str]:
    base = f"{db}/{coll}"
    try:
        validate_relpath(base + ".bson.gz")
    except ValueError:
        raise BackupError(
            f"collection {db}.{coll} has characters a backup object name cannot carry; "
            "exclude it (source option exclude) or rename it"
        ) from None
    return base + ".bson.gz", base + ".metadata.json"


def _wrap(exc: PyMongoError, what: str, url: str) -> Exception:
    text = f"{what}: {type(exc).__name__}: {redact_text(str(exc), (url,))}"[:500]
    if isinstance(exc, ConnectionFailure):
        return SourceUnavailable(text)
    return BackupError(text)


# --------------------------------------------------------------------------- dump


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
    """mongodump's `<coll>.metadata.json` (canonical extended JSON, as mongodump 100.x writes it)."""
    doc: dict[str, Any] = {
        "indexes": indexes,
        "uuid": uuid or "",
        "collectionName": name,
        "type": "collection",
    }
    doc = {"options": options or {}, **doc}
    return json_util.dumps(doc, json_options=json_util.CANONICAL_JSON_OPTIONS).encode("utf-8")


def _collections(database: Any, skipped: list[str] | None = None) -> list[dict[str, Any]]:
    """Plain collections, by name; views, time series and `system.*` go to `skipped`."""
    out = []
    for info in database.list_collections():
        name = str(info["name"])
        if name.startswith("system.") or info.get("type", "collection") != "collection":
            if skipped is not None:
                skipped.append(f"{name} ({info.get('type', 'system')})")
            continue
        out.append(info)
    return sorted(out, key=lambda i: str(i["name"]))


def _uuid_text(info: dict[str, Any]) -> str | None:
    uuid = (info.get("info") or {}).get("uuid")
    if uuid is None:
        return None
    if isinstance(uuid, Binary):
        return uuid.hex()
    hex_value = getattr(uuid, "hex", None)  # uuid.UUID; mongodump writes 32 hex digits, no dashes
    return hex_value if isinstance(hex_value, str) else str(uuid).replace("-", "")


def dump(url: str, target: DumpTarget, *, options: EngineOptions, token: str | None = None) -> DumpResult:
    """Stream every included collection as `<db>/<coll>.bson.gz` + `.metadata.json`."""
    db_name = database_of(url, options.database)
    include, exclude = list(options.include), list(options.exclude)
    client = get_client(url)
    counts: dict[str, int] = {}
    raw_bytes = 0
    try:
        server_version = str(client.admin.command("buildInfo").get("version", "unknown"))
        database = client[db_name]
        skipped: list[str] = []
        infos = [
            i
            for i in _collections(database, skipped)
            if _selected(f"{db_name}.{i['name']}", include, exclude)
        ]
    except PyMongoError as exc:
        raise _wrap(exc, f"listing collections of {db_name}", url) from None
    for info in infos:
        name = str(info["name"])
        namespace = f"{db_name}.{name}"
        data_path, meta_path = _object_paths(db_name, name)
        collection = database.get_collection(name, codec_options=_RAW)
        try:
            # Indexes first: the metadata describes the collection as the dump found it.
            indexes = list(collection.list_indexes())
            with target.open_object(data_path, content_type="application/gzip") as writer:
                sink = GzipSink(writer)
                docs = 0
                for batch in collection.find_raw_batches({}, batch_size=options.batch_size):
                    docs += _count_docs(batch)
                    sink.write(batch)
                sink.close()
                writer.count = docs
                raw_bytes += sink.raw_bytes
        except PyMongoError as exc:
            raise _wrap(exc, f"dumping {namespace}", url) from None
        with target.open_object(meta_path, content_type="application/json") as writer:
            writer.write(metadata_json(name, dict(info.get("options") or {}), indexes, _uuid_text(info)))
        counts[namespace] = docs
        logger.info("collection dumped", extra={"namespace": namespace, "documents": docs})
    return DumpResult(
        server_version=server_version,
        tool_versions=_tool_versions(),
        extra={
            "counts": counts,
            "database": db_name,
            "raw_bson_bytes": raw_bytes,
            "format": "mongodump directory layout (mongorestore --gzip --dir)",
            "not_dumped": skipped,
        },
    )


def _tool_versions() -> dict[str, str]:
    import bson
    import pymongo

    return {"pymongo": pymongo.version, "bson": getattr(bson, "__version__", pymongo.version)}


# --------------------------------------------------------------------------- restore


def _index_models(metadata: dict[str, Any]) -> list[IndexModel]:
    models = []
    for spec in metadata.get("indexes") or []:
        if spec.get("name") == "_id_":
            continue
        keys = []
        for field_name, direction in dict(spec["key"]).items():
            if isinstance(direction, int | float | Int64) and not isinstance(direction, bool):
                direction = int(direction)
            keys.append((field_name, direction))
        extra = {k: v for k, v in spec.items() if k not in ("v", "key", "ns", "background")}
        models.append(IndexModel(keys, **extra))
    return models


def _backup_collections(source: ObjectSource, only: list[str]) -> list[tuple[str, str, str, str | None]]:
    """(db, coll, data object, metadata object) for each collection in the backup, `only`-filtered."""
    names = source.list_objects()
    present = set(names)
    out = []
    for relpath in names:
        for suffix in (".bson.gz", ".bson"):
            if relpath.endswith(suffix) and relpath.count("/") == 1:
                db, coll = relpath[: -len(suffix)].split("/", 1)
                if only and not _matches(f"{db}.{coll}", only):
                    break
                meta = f"{db}/{coll}.metadata.json"
                out.append((db, coll, relpath, meta if meta in present else None))
                break
    return out


def restore(
    url: str,
    source: ObjectSource,
    *,
    only: list[str] | None = None,
    force: bool = False,
    token: str | None = None,
    progress: ProgressFn | None = None,
) -> RestoreResult:
    """Insert every backed-up collection into the target, then recreate its indexes.

    The target database is the URL's path when it names one (restore into a
    scratch database), else each collection's original database. A target
    collection that already holds documents is refused unless `force`, which
    drops it first — so an interrupted restore re-run with `force` completes.
    """
    plan = _backup_collections(source, only or [])
    if not plan:
        raise RestoreError(
            "nothing to restore: no <db>/<collection>.bson.gz object matches"
            + (f" --only {' '.join(only)}" if only else "")
        )
    override = _url_database(url)
    client = get_client(url)
    counts: dict[str, int] = {}
    try:
        occupied = []
        for db, coll, _, _ in plan:
            target = client[override or db][coll]
            if target.find_one({}, projection={"_id": 1}) is not None:
                occupied.append(f"{target.database.name}.{coll}")
        if occupied and not force:
            raise RestoreError(
                f"target collection(s) not empty: {', '.join(occupied)}; pass --force to drop and replace them"
            )
        for db, coll, data_path, meta_path in plan:
            target_db = client[override or db]
            namespace = f"{target_db.name}.{coll}"
            metadata: dict[str, Any] = {}
            if meta_path:
                with source.open_object(meta_path) as handle:
                    metadata = json_util.loads(handle.read().decode("utf-8"))
            if force:
                target_db.drop_collection(coll)
            options = dict(metadata.get("options") or {})
            if options and coll not in target_db.list_collection_names(filter={"name": coll}):
                target_db.create_collection(coll, **options)  # capped, validator, collation, …
            collection = target_db.get_collection(coll, codec_options=_RAW)
            inserted = _insert_all(source, data_path, collection, namespace, progress)
            models = _index_models(metadata)
            if models:
                collection.create_indexes(models)
            counts[f"{db}.{coll}"] = collection.count_documents({})
            if progress:
                progress(f"{namespace}: {inserted} documents, {len(models)} index(es)")
    except PyMongoError as exc:
        raise RestoreError(
            f"restore failed: {type(exc).__name__}: {redact_text(str(exc), (url,))}"[:500]
        ) from None
    return RestoreResult(counts=counts)


def _insert_all(
    source: ObjectSource, relpath: str, collection: Any, namespace: str, progress: ProgressFn | None
) -> int:
    max_docs, max_bytes = 1000, 8 << 20
    inserted = 0
    with source.open_object(relpath) as raw:
        stream = cast(BinaryIO, gzip.GzipFile(fileobj=raw, mode="rb")) if relpath.endswith(".gz") else raw
        batch: list[RawBSONDocument] = []
        size = 0
        try:
            for doc in bson.decode_file_iter(stream, _RAW):
                batch.append(doc)
                size += len(doc.raw)
                if len(batch) >= max_docs or size >= max_bytes:
                    collection.insert_many(batch, ordered=False, bypass_document_validation=True)
                    inserted += len(batch)
                    batch, size = [], 0
                    if progress and inserted % 50000 < max_docs:
                        progress(f"{namespace}: {inserted} documents")
        except (OSError, EOFError, bson.errors.InvalidBSON) as exc:
            raise RestoreError(f"{relpath}: unreadable BSON stream: {exc}") from None
        if batch:
            collection.insert_many(batch, ordered=False, bypass_document_validation=True)
            inserted += len(batch)
    return inserted


# --------------------------------------------------------------------------- emptiness and counts


def _user_collections(client: MongoClient[Any], db_name: str) -> list[str]:
    return [str(i["name"]) for i in _collections(client[db_name])]


def counts(url: str, *, token: str | None = None) -> dict[str, int]:
    """`{"<db>.<coll>": documents}` for every collection of the URL's database."""
    db_name = database_of(url)
    client = get_client(url)
    try:
        return {
            f"{db_name}.{name}": client[db_name][name].count_documents({})
            for name in _user_collections(client, db_name)
        }
    except PyMongoError as exc:
        raise SourceUnavailable(
            f"counting {db_name}: {type(exc).__name__}: {redact_text(str(exc), (url,))}"
        ) from None


def is_empty(url: str, *, token: str | None = None) -> bool:
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


def wipe(url: str, *, token: str | None = None) -> None:
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


ENGINE = FunctionEngine(
    "mongodb", probe=probe, dump=dump, restore=restore, is_empty=is_empty, counts=counts, wipe=wipe
)
