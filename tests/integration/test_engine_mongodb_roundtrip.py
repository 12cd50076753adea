"""MongoDB engine against the devstack server (nx-27017, or a real mongod when MONGODB_URI says so).

Must show: each `.bson.gz` decodes with `bson.decode_file_iter` to exactly the
documents of its collection (raw bytes compared, not counts).
"""

from __future__ import annotations

import gzip
import os
import secrets
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import bson
import pytest
from bson.binary import Binary
from bson.codec_options import CodecOptions
from bson.int64 import Int64
from bson.objectid import ObjectId
from bson.raw_bson import RawBSONDocument
from lastgood.core.errors import RestoreError
from lastgood.engines import mongodb
from lastgood.engines.base import EngineOptions
from pymongo import ASCENDING, MongoClient

from tests.helpers.engines import DirSource, DirTarget

pytestmark = pytest.mark.devstack

RAW: CodecOptions[RawBSONDocument] = CodecOptions(document_class=RawBSONDocument)


def with_db(url: str, db: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + db, parts.query, parts.fragment))


def raw_docs(client: MongoClient, db: str, coll: str) -> list[bytes]:
    return sorted(d.raw for d in client[db].get_collection(coll, codec_options=RAW).find())


def file_docs(path: Path) -> list[bytes]:
    with gzip.open(path) as fh:
        return sorted(d.raw for d in bson.decode_file_iter(fh, RAW))


def sample_docs(n: int) -> list[dict]:
    docs: list[dict] = [
        {
            "_id": i,
            "title": f"doc {i} — ünïcode",
            "blob": Binary(bytes([i % 256, 0, 255])),
            "when": datetime(2024, 1, 1, 12, 0, tzinfo=UTC).replace(tzinfo=None),
            "big": Int64(2**40 + i),
            "nested": {"tags": ["a", "b", i], "score": i / 3},
        }
        for i in range(n)
    ]
    docs.append({"_id": ObjectId(), "title": "object id key"})
    docs.append({"_id": "string-key", "title": None})
    return docs


@pytest.fixture
def mongo(devstack):
    url = os.environ["MONGODB_URI"]
    client = MongoClient(url)
    db = f"t_engine_{secrets.token_hex(3)}"
    yield url, client, db
    for name in (db, db + "_restored"):
        client.drop_database(name)
    client.close()


def test_seed_collections_decode_to_exactly_their_documents(devstack, tmp_path: Path) -> None:
    # Given the devstack's seeded `lastgood` database
    url = os.environ["MONGODB_URI"]
    db = os.environ.get("MONGODB_DB_NAME", "lastgood")
    client = MongoClient(url)
    seeded = ["prompts", "patterns", "learning"]
    # When the engine dumps it (the seed collections)
    target = DirTarget(tmp_path)
    result = mongodb.ENGINE.dump(
        url, target, options=EngineOptions(database=db, include=[f"{db}.{c}" for c in seeded])
    )
    # Then every .bson.gz decodes to exactly the collection's documents, byte for byte
    for coll in seeded:
        expected = raw_docs(client, db, coll)
        assert expected, f"seed collection {coll} is empty"
        assert file_docs(tmp_path / db / f"{coll}.bson.gz") == expected
        assert target.counts[f"{db}/{coll}.bson.gz"] == len(expected)
        assert result.extra["counts"][f"{db}.{coll}"] == len(expected)
        assert (tmp_path / db / f"{coll}.metadata.json.gz").exists()
    assert result.server_version and result.tool_versions["pymongo"]
    client.close()


def test_dump_then_restore_into_another_database_keeps_ids_values_and_indexes(mongo, tmp_path: Path) -> None:
    url, client, db = mongo
    # Given a collection with varied BSON types and a unique secondary index
    client[db].items.insert_many(sample_docs(300))
    client[db].items.create_index([("title", ASCENDING)], name="title_1")
    client[db].other.insert_one({"_id": 1})
    # When it is dumped and restored into a different (scratch) database
    mongodb.ENGINE.dump(url, DirTarget(tmp_path), options=EngineOptions(database=db, include=[f"{db}.*"]))
    assert file_docs(tmp_path / db / "items.bson.gz") == raw_docs(client, db, "items")
    restored = db + "_restored"
    progress: list[str] = []
    result = mongodb.ENGINE.restore(with_db(url, restored), DirSource(tmp_path), progress=progress.append)
    # Then documents are byte-identical (so _id kept), the index exists again, counts agree
    assert raw_docs(client, restored, "items") == raw_docs(client, db, "items")
    assert result.counts == {f"{db}.items": 302, f"{db}.other": 1}
    index_fields = [list(ix["key"]) for ix in client[restored].items.list_indexes()]
    assert ["title"] in index_fields
    after = mongodb.ENGINE.counts(with_db(url, restored))
    assert after[f"{restored}.items"] == 302 and after[f"{restored}.other"] == 1
    assert any("items" in line for line in progress)


def test_restore_refuses_a_non_empty_target_and_force_completes_an_interrupted_restore(
    mongo, tmp_path: Path
) -> None:
    url, client, db = mongo
    client[db].items.insert_many(sample_docs(50))
    mongodb.ENGINE.dump(url, DirTarget(tmp_path), options=EngineOptions(database=db, include=[f"{db}.items"]))
    restored = db + "_restored"
    # Given a restore that was interrupted half-way (part of the documents are there)
    client[restored].items.insert_many(sample_docs(20))
    assert not mongodb.ENGINE.is_empty(with_db(url, restored))
    # When restoring without --force, Then it is refused naming the collection, nothing changed
    with pytest.raises(RestoreError, match=rf"{restored}\.items"):
        mongodb.ENGINE.restore(with_db(url, restored), DirSource(tmp_path))
    assert client[restored].items.count_documents({}) == 22  # 20 numbered + 2 special-key documents
    # When re-run with force, Then the collection is replaced and complete
    mongodb.ENGINE.restore(with_db(url, restored), DirSource(tmp_path), force=True)
    assert raw_docs(client, restored, "items") == raw_docs(client, db, "items")


def test_only_restores_the_named_collections(mongo, tmp_path: Path) -> None:
    url, client, db = mongo
    client[db].a.insert_one({"_id": 1})
    client[db].b.insert_one({"_id": 2})
    mongodb.ENGINE.dump(
        url, DirTarget(tmp_path), options=EngineOptions(database=db, include=[f"{db}.a", f"{db}.b"])
    )
    restored = db + "_restored"
    result = mongodb.ENGINE.restore(with_db(url, restored), DirSource(tmp_path), only=[f"{db}.b"])
    assert result.counts == {f"{db}.b": 1}
    assert client[restored].a.count_documents({}) == 0
    with pytest.raises(RestoreError, match="nothing to restore"):
        mongodb.ENGINE.restore(with_db(url, restored), DirSource(tmp_path), only=[f"{db}.zzz"])


def test_wipe_drops_every_collection_of_the_target_database(mongo) -> None:
    url, client, db = mongo
    client[db].a.insert_one({"_id": 1})
    client[db].b.insert_one({"_id": 2})
    mongodb.ENGINE.wipe(with_db(url, db))
    assert mongodb.ENGINE.is_empty(with_db(url, db))
    assert client[db].a.count_documents({}) == 0 and client[db].b.count_documents({}) == 0
