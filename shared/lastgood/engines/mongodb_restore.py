"""MongoDB restore: the raw documents back, then the indexes.

Documents are inserted in unordered batches of raw BSON (so `_id` and every
value are kept byte for byte; batches sized by bytes, cut from the gunzipped
stream on a read-ahead thread), then the indexes are recreated from the
collection's `.metadata.json`. Collections are restored `PARALLEL_COLLECTIONS`
at a time, as mongorestore does; the first failure stops the others. A collection's data object is opened — and so
proven whole against the manifest by the `ObjectSource` — before its target
collection is dropped or its first batch inserted.

The target database is the one the URL names (the CLI's `--db` puts it there);
a URL without one is refused: the backup's object keys (`<db>/<coll>.bson.gz`)
never choose where data lands.
"""

from __future__ import annotations

import gzip
import threading
import zlib
from collections.abc import Iterator
from typing import Any, BinaryIO, cast

import bson
from bson import json_util
from bson.int64 import Int64
from bson.raw_bson import RawBSONDocument
from pymongo import IndexModel
from pymongo.errors import PyMongoError

from lastgood.core.errors import RestoreError
from lastgood.core.redact import redact_text
from lastgood.engines.base import ObjectSource, ProgressFn, RestoreResult
from lastgood.engines.mongodb_client import RAW, bulk_client, get_client, matches, url_database
from lastgood.engines.mongodb_parallel import PARALLEL_COLLECTIONS, Stopped, prefetch, run_parallel

BATCH_BYTES = 8 << 20  # raw BSON per insert command at most (the server splits nothing below 48 MB)
# documents per insert command at most (maxWriteBatchSize is 100k): a command's time stays short
# even when the server runs the collections' inserts one after another
BATCH_DOCS = 10_000
READ_CHUNK = 1 << 20  # gunzipped bytes read at a time


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
                if only and not matches(f"{db}.{coll}", only):
                    break
                # mongodump --gzip writes `.metadata.json.gz`; backups of lastgood ≤ 0.1 `.metadata.json`
                metas = [
                    m for m in (f"{db}/{coll}.metadata.json.gz", f"{db}/{coll}.metadata.json") if m in present
                ]
                out.append((db, coll, relpath, metas[0] if metas else None))
                break
    return out


def restore(
    url: str, source: ObjectSource, *, only: list[str] | None, force: bool, progress: ProgressFn | None
) -> RestoreResult:
    """Insert every backed-up collection into the URL's database, then recreate its indexes.

    The URL must name the target database (refused otherwise, before anything is
    read or written). A target collection that already holds documents is refused
    unless `force`, which drops it first — once its data object is proven — so an
    interrupted restore re-run with `force` completes.
    """
    plan = _backup_collections(source, only or [])
    if not plan:
        raise RestoreError(
            "nothing to restore: no <db>/<collection>.bson.gz object matches"
            + (f" --only {' '.join(only)}" if only else "")
        )
    databases = sorted({db for db, _, _, _ in plan})
    target_name = require_target_database(url, databases)
    names = [coll for _, coll, _, _ in plan]
    clashes = sorted({n for n in names if names.count(n) > 1})
    if clashes:
        raise RestoreError(
            f"the backup holds {', '.join(clashes)} in several databases ({', '.join(databases)}): "
            "restore one database at a time with --only DB.*"
        )
    client = get_client(url)
    target_db = client[target_name]
    try:
        occupied = [
            f"{target_name}.{coll}"
            for _, coll, _, _ in plan
            if target_db[coll].find_one({}, projection={"_id": 1}) is not None
        ]
    except PyMongoError as exc:
        raise RestoreError(
            f"restore failed: {type(exc).__name__}: {redact_text(str(exc), (url,))}"[:500]
        ) from None
    if occupied and not force:
        raise RestoreError(
            f"target collection(s) not empty: {', '.join(occupied)}; pass --force to drop and replace them"
        )
    database = bulk_client(url, PARALLEL_COLLECTIONS)[target_name]
    say = _serialized(progress)

    def one(item: tuple[str, str, str, str | None], stop: threading.Event) -> tuple[str, int]:
        try:
            return _restore_collection(database, source, item, force=force, stop=stop, progress=say)
        except PyMongoError as exc:
            raise RestoreError(
                f"restore of {target_name}.{item[1]} failed: {type(exc).__name__}: "
                f"{redact_text(str(exc), (url,))}"[:500]
            ) from None

    done = run_parallel(plan, one, workers=PARALLEL_COLLECTIONS)
    return RestoreResult(counts=dict(sorted(done)))


def _serialized(progress: ProgressFn | None) -> ProgressFn | None:
    """`progress`, called by one collection worker at a time."""
    if progress is None:
        return None
    lock = threading.Lock()

    def say(text: str) -> None:
        with lock:
            progress(text)

    return say


def _restore_collection(
    database: Any,
    source: ObjectSource,
    item: tuple[str, str, str, str | None],
    *,
    force: bool,
    stop: threading.Event,
    progress: ProgressFn | None,
) -> tuple[str, int]:
    """One collection: its data object proven (by the source) before the target is touched, its
    documents inserted (decoded ahead on their own thread), then its indexes."""
    db, coll, data_path, meta_path = item
    namespace = f"{database.name}.{coll}"
    metadata: dict[str, Any] = {}
    if meta_path:
        with source.open_object(meta_path) as handle:
            raw_meta = handle.read()
        metadata = json_util.loads(
            (gzip.decompress(raw_meta) if meta_path.endswith(".gz") else raw_meta).decode()
        )
    with source.open_object(data_path) as raw:  # proven whole before the first write
        if stop.is_set():
            raise Stopped("another collection failed")
        if force:
            database.drop_collection(coll)
        options = dict(metadata.get("options") or {})
        # created explicitly (as mongorestore does): its options (capped, validator, collation, …),
        # and an empty collection exists afterwards as it did in the source
        if coll not in database.list_collection_names(filter={"name": coll}):
            database.create_collection(coll, **options)
        collection = database.get_collection(coll, codec_options=RAW)
        inserted = _insert_all(raw, data_path, collection, namespace, progress, stop)
    models = _index_models(metadata)
    if models:
        collection.create_indexes(models)  # after the data, as mongorestore does
    if progress:
        progress(f"{namespace}: {inserted} documents, {len(models)} index(es)")
    return f"{db}.{coll}", inserted


def require_target_database(url: str, backup_databases: list[str]) -> str:
    """The database the URL names; RestoreError when it names none (never the object keys')."""
    named = url_database(url)
    if not named:
        raise RestoreError(
            "the target URL names no database: give --db NAME or put the database in the URL "
            "(mongodb://HOST/NAME); lastgood never takes it from the backup's object keys "
            f"(this backup holds {', '.join(backup_databases) or 'no database'})"
        )
    return named


def _insert_all(
    raw: BinaryIO,
    relpath: str,
    collection: Any,
    namespace: str,
    progress: ProgressFn | None,
    stop: threading.Event,
) -> int:
    inserted, reported = 0, 0
    stream = cast(BinaryIO, gzip.GzipFile(fileobj=raw, mode="rb")) if relpath.endswith(".gz") else raw
    for batch in prefetch(_batches(stream, relpath), stop, depth=1):
        collection.insert_many(batch, ordered=False, bypass_document_validation=True)
        inserted += len(batch)
        if progress and inserted - reported >= 50000:
            reported = inserted
            progress(f"{namespace}: {inserted} documents")
    return inserted


def _batches(stream: BinaryIO, relpath: str) -> Iterator[list[RawBSONDocument]]:
    """The stream's BSON documents as raw documents (no decoding), in insert batches of at most
    `BATCH_BYTES` / `BATCH_DOCS` (the server's maxWriteBatchSize); bounded memory."""
    batch: list[RawBSONDocument] = []
    size = 0
    pending = b""
    try:
        while chunk := stream.read(READ_CHUNK):
            buffer = pending + chunk if pending else chunk
            offset, end = 0, len(buffer)
            while end - offset >= 4:
                length = int.from_bytes(buffer[offset : offset + 4], "little")
                if length < 5:
                    raise RestoreError(f"{relpath}: unreadable BSON stream: bad document length {length}")
                if offset + length > end:
                    break
                batch.append(RawBSONDocument(buffer[offset : offset + length], RAW))
                offset += length
                size += length
                if size >= BATCH_BYTES or len(batch) >= BATCH_DOCS:
                    yield batch
                    batch, size = [], 0
            pending = buffer[offset:]
    except (OSError, EOFError, zlib.error, bson.errors.InvalidBSON) as exc:
        raise RestoreError(f"{relpath}: unreadable BSON stream: {exc}") from None
    if pending:
        raise RestoreError(f"{relpath}: unreadable BSON stream: truncated document at the end")
    if batch:
        yield batch
