"""A shard's retry after an attempt that wrote objects but no record: keep what it finished.

In AWS only prune may delete under `backups/` (the bucket policy), and every backup object is
create-once, so a failed or killed shard attempt's finished objects stay — under the very
names its retry must write (the sharded backup's id and names are fixed by the slot). The
retry therefore adopts each collection whose two objects (`<coll>.bson.gz` and
`.metadata.json.gz`) are both there: a finished object is a whole dump of its collection
(an upload that did not complete leaves no object). It re-reads them for the manifest entry
(size, SHA-256 of the stored bytes, documents counted through gunzip, decrypted first when
client-side encrypted) and dumps only the shard's other collections. A collection with its
data object but no metadata (an attempt killed between the two writes) cannot be completed
without overwriting: the retry fails naming it, and the slot's backup cannot be committed.
"""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass, field
from typing import Any

from lastgood.backups.keys import backup_prefix, is_lastgood_document, object_key, parse_key
from lastgood.backups.manifest import ObjectEntry
from lastgood.backups.store import BackupStore
from lastgood.core.errors import BackupError
from lastgood.core.observability import logger
from lastgood.storage.crypto import CLIENT_SIDE_ENCRYPTION

CHUNK = 1 << 20
DATA, META = ".bson.gz", ".metadata.json.gz"


@dataclass
class Adopted:
    """What an earlier attempt of the shard finished: entries, `{ns: documents}`, raw BSON bytes."""

    collections: list[str] = field(default_factory=list)
    entries: list[ObjectEntry] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    raw_bson_bytes: int = 0


class _Hashing:
    """A readable stream that hashes and measures what is read through it."""

    def __init__(self, body: Any) -> None:
        self.body, self.sha256, self.size = body, hashlib.sha256(), 0

    def read(self, size: int = -1) -> bytes:
        data: bytes = self.body.read(size)
        self.sha256.update(data)
        self.size += len(data)
        return data

    def drain(self) -> None:
        while self.read(CHUNK):
            pass


def _count_bson(stream: Any) -> tuple[int, int]:
    """(documents, bytes) of a stream of concatenated BSON documents."""
    docs = total = 0
    while head := stream.read(4):
        if len(head) < 4:
            raise BackupError("truncated BSON document in an earlier attempt's object")
        length = int.from_bytes(head, "little")
        rest = stream.read(length - 4) if length >= 5 else b""
        if length < 5 or len(rest) != length - 4:
            raise BackupError("malformed BSON in an earlier attempt's object")
        docs, total = docs + 1, total + length
    return docs, total


def _entry(
    store: BackupStore, source: str, backup_id: str, relpath: str, client_side: bool
) -> tuple[ObjectEntry, int]:
    """The manifest entry of a stored object, re-read; and its raw BSON bytes (data objects)."""
    from lastgood.storage.crypto import decrypting_reader

    response = store.s3.get_object(Bucket=store.bucket, Key=object_key(source, backup_id, relpath))
    raw = _Hashing(response["Body"])
    docs: int | None = None
    plain_bytes = raw_bson = 0
    try:
        if client_side:
            with decrypting_reader(raw, store.kms_key_id) as plain:
                measured = _Hashing(plain)
                docs, raw_bson = _read_plain(measured, relpath)
                plain_bytes = measured.size
        else:
            docs, raw_bson = _read_plain(raw, relpath)
        raw.drain()
    finally:
        response["Body"].close()
    etag = str(response.get("ETag", "")).strip('"')
    parts = int(etag.rsplit("-", 1)[1]) if "-" in etag else 1
    entry = ObjectEntry(
        key=relpath,
        bytes=raw.size,
        sha256=raw.sha256.hexdigest(),
        count=docs,
        content_type=str(response.get("ContentType") or "application/gzip"),
        encryption=CLIENT_SIDE_ENCRYPTION if client_side else "aws:kms",
        parts=max(1, parts),
        plaintext_bytes=plain_bytes if client_side else None,
    )
    return entry, raw_bson


def _read_plain(stream: Any, relpath: str) -> tuple[int | None, int]:
    with gzip.GzipFile(fileobj=stream, mode="rb") as unzipped:
        if relpath.endswith(DATA):
            return _count_bson(unzipped)
        while unzipped.read(CHUNK):
            pass
    return None, 0


def adopt_finished(
    store: BackupStore, source: str, backup_id: str, shard: int, of: int, *, client_side: bool
) -> Adopted:
    """The shard's collections an earlier attempt finished (both objects there), re-read."""
    from lastgood.engines.mongodb_dump import collection_of, shard_of

    present: dict[str, set[str]] = {}
    paginator = store.s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=store.bucket, Prefix=backup_prefix(source, backup_id)):
        for obj in page.get("Contents", []):
            parsed = parse_key(obj["Key"])
            if parsed is None or is_lastgood_document(parsed.relpath):
                continue
            collection = collection_of(parsed.relpath)
            if collection is not None and shard_of(collection, of) == shard:
                present.setdefault(collection, set()).add(parsed.relpath)
    adopted = Adopted()
    for collection, relpaths in sorted(present.items()):
        data = next((r for r in relpaths if r.endswith(DATA)), None)
        meta = next((r for r in relpaths if r.endswith(META)), None)
        if data is None or meta is None:
            raise BackupError(
                f"shard {shard}/{of} cannot be retried: {sorted(relpaths)[0]!r} was left by an attempt "
                f"stopped between the two objects of {collection!r}, and backup objects are never replaced; "
                "this slot's sharded backup cannot be committed (the next slot takes a new one)"
            )
        data_entry, raw_bson = _entry(store, source, backup_id, data, client_side)
        meta_entry, _ = _entry(store, source, backup_id, meta, client_side)
        adopted.collections.append(collection)
        adopted.entries += [data_entry, meta_entry]
        adopted.counts[f"{data.split('/', 1)[0]}.{collection}"] = data_entry.count or 0
        adopted.raw_bson_bytes += raw_bson
    if adopted.collections:
        logger.warning(
            "kept the collections an earlier attempt of this shard finished",
            extra={"backup": backup_id, "shard": f"{shard}/{of}", "collections": adopted.collections},
        )
    return adopted
