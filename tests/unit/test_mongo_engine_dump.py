"""MongoDB engine: mongodump layout details and a cursor dying mid-stream (mockupdb).

mockupdb is a wire-protocol test double: it is used here only for faults a real
server cannot produce on demand (CursorNotFound on getMore, a connection reset
half-way through a collection).
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import bson
import pytest
from lastgood.core.errors import BackupError, SourceUnavailable
from lastgood.engines import mongodb, mongodb_client, mongodb_dump, mongodb_restore
from lastgood.engines.base import EngineOptions
from mockupdb import MockupDB, OpMsg, go

from tests.helpers.engines import DirTarget

DOCS = [{"_id": i, "n": f"doc-{i}"} for i in range(6)]


def test_metadata_json_is_mongodumps_canonical_extended_json() -> None:
    # Given the collection's indexes as the server lists them
    indexes = [
        {"v": 2, "key": {"_id": 1}, "name": "_id_"},
        {"v": 2, "key": {"a": -1}, "name": "a_-1", "unique": True},
    ]
    # When the metadata is rendered
    meta = json.loads(mongodb_dump.metadata_json("coll", {}, indexes, "ab" * 16))
    # Then it has mongodump's keys (empty options omitted, as mongodump does), numbers typed for mongorestore
    assert list(meta) == ["indexes", "uuid", "collectionName", "type"]
    capped = json.loads(mongodb_dump.metadata_json("coll", {"capped": True, "size": 4096}, indexes, None))
    assert list(capped) == ["options", "indexes", "collectionName", "type"]
    assert meta["indexes"][1] == {
        "v": {"$numberInt": "2"},
        "key": {"a": {"$numberInt": "-1"}},
        "name": "a_-1",
        "unique": True,
    }
    assert meta["collectionName"] == "coll" and meta["type"] == "collection" and meta["uuid"] == "ab" * 16


def test_index_models_skip_the_id_index_and_keep_direction_and_options() -> None:
    meta = bson.json_util.loads(
        mongodb_dump.metadata_json(
            "c",
            {},
            [
                {"v": 2, "key": {"_id": 1}, "name": "_id_"},
                {"v": 2, "key": {"a": -1, "b": 1}, "name": "ab", "unique": True},
            ],
            None,
        )
    )
    models = mongodb_restore._index_models(meta)
    assert [m.document for m in models] == [{"key": {"a": -1, "b": 1}, "name": "ab", "unique": True}]


def test_count_docs_walks_concatenated_bson_and_rejects_truncation() -> None:
    batch = b"".join(bson.encode(d) for d in DOCS)
    assert mongodb_dump._count_docs(batch) == len(DOCS)
    with pytest.raises(BackupError):
        mongodb_dump._count_docs(batch[:-3])


@pytest.mark.parametrize(
    ("namespace", "include", "exclude", "selected"),
    [
        ("app.users", [], [], True),
        ("app.users", ["app.*"], [], True),
        ("app.users", ["app.orders"], [], False),
        ("app.users", [], ["app.users"], False),
        ("app.users", [], ["users"], False),  # a bare name matches the collection in any database
        ("app.logs", ["app.*"], ["app.log*"], False),
    ],
)
def test_include_exclude_patterns(
    namespace: str, include: list[str], exclude: list[str], selected: bool
) -> None:
    assert mongodb_client.selected(namespace, include, exclude) is selected


def test_database_comes_from_options_then_url_then_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    from lastgood.core.settings import reset_settings

    monkeypatch.setenv("MONGODB_DB_NAME", "fallback")
    reset_settings()
    try:
        assert mongodb.database_of("mongodb://h/app", "opt") == "opt"
        assert mongodb.database_of("mongodb://h/app?tls=false") == "app"
        assert mongodb.database_of("mongodb://h/") == "fallback"
    finally:
        reset_settings()


@pytest.fixture
def mock_server():
    server = MockupDB(auto_ismaster={"maxWireVersion": 21, "minWireVersion": 0})
    server.run()
    server.autoresponds("buildInfo", version="7.0.0")
    server.autoresponds("endSessions")
    server.autoresponds(
        "listCollections",
        cursor={
            "id": 0,
            "ns": "app.$cmd.listCollections",
            "firstBatch": [{"name": "c", "type": "collection", "options": {}, "info": {}}],
        },
    )
    server.autoresponds(
        OpMsg("listIndexes", "c"),
        cursor={"id": 0, "ns": "app.c", "firstBatch": [{"v": 2, "key": {"_id": 1}, "name": "_id_"}]},
    )
    yield server
    mongodb.close_clients()
    server.stop()


def _get_more(server: MockupDB) -> Any:
    request = server.receives()
    assert request.command_name == "getMore"
    return request


def _start_dump(server: MockupDB, tmp_path: Path) -> tuple[Any, DirTarget]:
    target = DirTarget(tmp_path)
    url = f"mongodb://127.0.0.1:{server.port}/app"
    future = go(mongodb.ENGINE.dump, url, target, options=EngineOptions(batch_size=3))
    find = server.receives()
    assert find.command_name == "find"
    find.ok(cursor={"id": 123, "ns": "app.c", "firstBatch": DOCS[:3]})
    return future, target


def test_cursor_not_found_mid_stream_fails_the_dump_and_completes_no_object(
    mock_server: MockupDB, tmp_path: Path
) -> None:
    # Given a collection whose cursor dies after the first batch
    future, target = _start_dump(mock_server, tmp_path)
    _get_more(mock_server).command_err(code=43, errmsg="cursor id 123 not found")
    # When the dump runs
    # Then it raises (the orchestration aborts the upload) and no object was completed
    with pytest.raises(BackupError, match=r"app\.c.*CursorNotFound"):
        future()
    assert target.objects == {}
    assert not (tmp_path / "app" / "c.bson.gz").exists()


def test_connection_reset_mid_stream_is_a_source_outage(mock_server: MockupDB, tmp_path: Path) -> None:
    future, target = _start_dump(mock_server, tmp_path)
    _get_more(mock_server).hangup()
    with pytest.raises(SourceUnavailable, match=r"app\.c"):
        future()
    assert target.objects == {}


def test_a_complete_dump_streams_every_batch_in_order(mock_server: MockupDB, tmp_path: Path) -> None:
    future, target = _start_dump(mock_server, tmp_path)
    _get_more(mock_server).ok(cursor={"id": 0, "ns": "app.c", "nextBatch": DOCS[3:]})
    result = future()
    # The .bson.gz decodes to exactly the server's documents, in cursor order
    with gzip.open(tmp_path / "app" / "c.bson.gz") as fh:
        assert list(bson.decode_file_iter(fh)) == DOCS
    assert target.counts == {"app/c.bson.gz": 6, "app/c.metadata.json.gz": None}
    assert result.extra["counts"] == {"app.c": 6}
    assert result.server_version == "7.0.0"
