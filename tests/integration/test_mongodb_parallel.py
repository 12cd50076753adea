"""MongoDB dump and restore work on several collections at once (as mongodump/mongorestore do).

Must show: with more collections than workers, every collection comes back with every document
(raw bytes) and index — through lastgood's restore and through the real `mongorestore --gzip`;
a failure in one collection's worker stops the others and fails the run cleanly: a backup
commits nothing and leaves no object or open upload, a restore names the collection.
The failures are injected (a cursor lost mid-dump, an insert refused) because a real server
cannot produce them on demand.
"""

from __future__ import annotations

import os
import secrets
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from bson.codec_options import CodecOptions
from bson.raw_bson import RawBSONDocument
from lastgood.backups.run import run_backup
from lastgood.backups.store import BackupStore
from lastgood.core import aws
from lastgood.core.errors import BackupError, RestoreError
from lastgood.engines import mongodb
from lastgood.engines.base import EngineOptions
from lastgood.engines.mongodb_parallel import PARALLEL_COLLECTIONS
from pymongo import ASCENDING, DESCENDING, MongoClient
from pymongo.errors import CursorNotFound, OperationFailure
from pymongo.synchronous.collection import Collection

from tests.helpers.backup import manifest_keys, open_uploads
from tests.helpers.engines import DirSource, DirTarget
from tests.helpers.native import run_tool

pytestmark = pytest.mark.devstack

RAW: CodecOptions[RawBSONDocument] = CodecOptions(document_class=RawBSONDocument)
# name → (documents, indexes beside _id); more collections than PARALLEL_COLLECTIONS workers
SHAPES: dict[str, tuple[int, list[list[tuple[str, int]]]]] = {
    "big": (12_000, [[("n", ASCENDING)], [("group", ASCENDING), ("n", DESCENDING)]]),
    "events": (3_000, [[("at", ASCENDING)]]),
    "users": (500, [[("email", ASCENDING)]]),
    "tiny": (1, []),
    "tags": (40, [[("tag", ASCENDING)]]),
    "victim": (30, [[("n", ASCENDING)]]),
    "notes": (200, [[("group", ASCENDING)]]),
}


def with_db(url: str, db: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + db, parts.query, parts.fragment))


def _doc(name: str, i: int) -> dict[str, Any]:
    return {
        "_id": f"{name}-{i:06d}",
        "n": i,
        "group": i % 7,
        "at": i * 1000,
        "email": f"{name}{i}@example.org",
        "tag": f"t{i}",
        "body": "x" * 400 if name == "big" else "y",
    }


@pytest.fixture
def many(devstack) -> Iterator[tuple[str, MongoClient[Any], str]]:
    url = os.environ["MONGODB_URI"]
    client: MongoClient[Any] = MongoClient(url)
    db = f"t_par_{secrets.token_hex(3)}"
    for name, (docs, indexes) in SHAPES.items():
        client[db][name].insert_many([_doc(name, i) for i in range(docs)])
        for keys in indexes:
            client[db][name].create_index(keys, unique=name == "users")
    yield url, client, db
    for name in (db, db + "_back", db + "_native"):
        client.drop_database(name)
    client.close()


def _raw(client: MongoClient[Any], db: str, name: str) -> list[bytes]:
    return sorted(d.raw for d in client[db].get_collection(name, codec_options=RAW).find())


def _indexes(client: MongoClient[Any], db: str, name: str) -> dict[str, dict[str, Any]]:
    return {ix["name"]: dict(ix["key"]) for ix in client[db][name].list_indexes()}


def test_parallel_dump_and_restore_bring_back_every_collection_document_and_index(
    many, tmp_path: Path
) -> None:
    url, client, db = many
    assert len(SHAPES) > PARALLEL_COLLECTIONS
    # When the engine dumps the database (collections in parallel) and restores it elsewhere
    result = mongodb.ENGINE.dump(url, DirTarget(tmp_path), options=EngineOptions(database=db))
    restored = mongodb.ENGINE.restore(with_db(url, db + "_back"), DirSource(tmp_path))
    # Then every collection is back with exactly its documents (raw bytes) and its indexes
    assert result.extra["counts"] == {f"{db}.{n}": docs for n, (docs, _) in sorted(SHAPES.items())}
    assert restored.counts == result.extra["counts"]
    for name in SHAPES:
        assert _raw(client, db + "_back", name) == _raw(client, db, name), name
        assert _indexes(client, db + "_back", name) == _indexes(client, db, name), name
    # And the real mongorestore --gzip restores the same dump to the same documents and indexes
    native = run_tool(
        "mongorestore",
        "--uri",
        url,
        "--gzip",
        "--nsFrom",
        f"{db}.*",
        "--nsTo",
        f"{db}_native.*",
        str(tmp_path),
    )
    assert native.returncode == 0, native.stderr
    assert "don't know what to do" not in native.stderr, native.stderr
    for name in SHAPES:
        assert _raw(client, db + "_native", name) == _raw(client, db, name), name
        assert _indexes(client, db + "_native", name) == _indexes(client, db, name), name


def _all_keys(s3: Any, bucket: str, prefix: str) -> set[str]:
    keys: set[str] = set()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys |= {o["Key"] for o in page.get("Contents", [])}
    return keys


def test_a_cursor_lost_in_one_collection_stops_the_others_and_commits_nothing(many, monkeypatch) -> None:
    url, _client, db = many
    s3, bucket = aws.client("s3"), BackupStore.from_settings().bucket
    before_keys, before_manifests = (
        _all_keys(s3, bucket, "backups/mongodb/"),
        manifest_keys(s3, bucket, "mongodb"),
    )
    big_started, victim_failed = threading.Event(), threading.Event()
    big_batches: list[int] = []
    real = Collection.find_raw_batches

    def faulty(self: Collection[Any], *args: Any, **kwargs: Any) -> Any:
        cursor = real(self, *args, **kwargs)
        if self.database.name != db or self.name not in ("big", "victim"):
            return cursor

        def batches() -> Iterator[bytes]:
            for batch in cursor:
                if self.name == "victim":
                    assert big_started.wait(30)
                    victim_failed.set()
                    raise CursorNotFound("cursor id 42 not found (injected)", 43)
                big_batches.append(len(batch))
                big_started.set()
                victim_failed.wait(30)  # "big" is mid-stream when "victim" fails
                yield batch

        return batches()

    monkeypatch.setattr(Collection, "find_raw_batches", faulty)
    # When one collection's cursor is lost while another is being dumped
    with pytest.raises(BackupError) as caught:
        run_backup("mongodb", on_demand=True, url=with_db(url, db))
    # Then the run names the collection, and nothing of it is left: no manifest, no object, no upload
    assert f"{db}.victim" in str(caught.value) and "CursorNotFound" in str(caught.value)
    assert manifest_keys(s3, bucket, "mongodb") == before_manifests
    assert _all_keys(s3, bucket, "backups/mongodb/") == before_keys
    assert open_uploads(s3, bucket) == []
    # And the collection being dumped beside it stopped instead of draining to the end
    assert 0 < len(big_batches) < SHAPES["big"][0] // 1000


def test_an_insert_refused_in_one_collection_stops_the_others_and_names_it(
    many, tmp_path: Path, monkeypatch
) -> None:
    url, client, db = many
    mongodb.ENGINE.dump(url, DirTarget(tmp_path), options=EngineOptions(database=db))
    target = db + "_back"
    big_started, victim_failed = threading.Event(), threading.Event()
    real = Collection.insert_many

    def faulty(self: Collection[Any], documents: Any, *args: Any, **kwargs: Any) -> Any:
        if self.database.name == target and self.name == "victim":
            assert big_started.wait(30)
            victim_failed.set()
            raise OperationFailure("insert refused (injected)", 2)
        if self.database.name == target and self.name == "big":
            big_started.set()
            victim_failed.wait(30)
        return real(self, documents, *args, **kwargs)

    monkeypatch.setattr(Collection, "insert_many", faulty)
    monkeypatch.setattr("lastgood.engines.mongodb_restore.BATCH_BYTES", 1 << 20)  # "big": several batches
    # When one collection's insert is refused while another is being restored
    with pytest.raises(RestoreError) as caught:
        mongodb.ENGINE.restore(with_db(url, target), DirSource(tmp_path))
    # Then the error names that collection and the neighbour stopped before its end
    assert f"{target}.victim" in str(caught.value) and "insert refused" in str(caught.value)
    assert client[target]["big"].count_documents({}) < SHAPES["big"][0]


def test_an_empty_collection_comes_back_empty_and_the_restore_counts_match(devstack, tmp_path: Path) -> None:
    # Given a database with an empty collection beside a filled one (an app's queue, say)
    url = os.environ["MONGODB_URI"]
    client: MongoClient[Any] = MongoClient(url)
    db = f"t_empty_{secrets.token_hex(3)}"
    try:
        client[db]["filled"].insert_many([_doc("filled", i) for i in range(5)])
        client[db].create_collection("queue")
        # When it is dumped and restored into an empty database
        result = mongodb.ENGINE.dump(url, DirTarget(tmp_path), options=EngineOptions(database=db))
        restored = mongodb.ENGINE.restore(with_db(url, db + "_back"), DirSource(tmp_path))
        # Then the empty collection exists in the target and every count matches the backup's
        assert result.extra["counts"] == {f"{db}.filled": 5, f"{db}.queue": 0}
        assert restored.counts == result.extra["counts"]
        assert "queue" in client[db + "_back"].list_collection_names()
    finally:
        client.drop_database(db)
        client.drop_database(db + "_back")
        client.close()
