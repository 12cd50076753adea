"""MongoDB backups are mongodump's layout: proven with the real mongorestore (and mongodump)."""

from __future__ import annotations

import os
import secrets

import pytest
from pymongo import MongoClient

from tests.helpers.native import download_backup, run_tool
from tests.helpers.restore import backup_now

pytestmark = pytest.mark.devstack


def _indexes(collection) -> dict[str, dict]:
    return {ix["name"]: dict(ix["key"]) for ix in collection.list_indexes()}


def test_real_mongorestore_restores_a_lastgood_backup_with_every_document_and_index(devstack, tmp_path):
    # Given the seeded lastgood database backed up by lastgood
    devstack.seed()
    uri = os.environ["MONGODB_URI"]
    client = MongoClient(uri)
    source_db = client["lastgood"]
    backup_id = backup_now("mongodb")
    folder = download_backup("mongodb", backup_id, tmp_path / "dump")
    # When the real `mongorestore --gzip` restores it into another namespace
    target = f"native_{secrets.token_hex(3)}"
    result = run_tool(
        "mongorestore", "--uri", uri, "--gzip", "--nsFrom", "lastgood.*", "--nsTo", f"{target}.*", str(folder)
    )
    # Then it recognised every file (mongorestore skips unknown files with exit 0)
    assert result.returncode == 0, result.stderr
    assert "don't know what to do" not in result.stderr, result.stderr
    try:
        restored = client[target]
        for name in sorted(source_db.list_collection_names()):
            original, copy = source_db[name], restored[name]
            # every document, by _id and content
            assert sorted(d["_id"] for d in copy.find({}, {"_id": 1})) == sorted(
                d["_id"] for d in original.find({}, {"_id": 1})
            ), name
            assert {d["_id"]: d for d in copy.find()} == {d["_id"]: d for d in original.find()}, name
            # and every index
            assert _indexes(copy) == _indexes(original), name
    finally:
        client.drop_database(target)
