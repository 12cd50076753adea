"""Native formats proven with the databases' own tools: mongorestore restores lastgood's MongoDB
backups; backups made by mongodump and pg_dump are imported and restored by lastgood."""

from __future__ import annotations

import json
import os
import secrets
import subprocess

import pytest
from lastgood.engines.pg_tools import pg_bin_dir
from pymongo import MongoClient

from tests.helpers.backup import create_database, drop_database, pg_url
from tests.helpers.native import download_backup, run_tool
from tests.helpers.restore import backup_now, pg_snapshot, run_cli

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


def test_a_real_mongodump_directory_is_imported_and_restored_by_lastgood(devstack, tmp_path):
    # Given a directory written by the real `mongodump --gzip` (an old cron script's backup)
    devstack.seed()
    uri = os.environ["MONGODB_URI"]
    client = MongoClient(uri)
    dumped = run_tool(
        "mongodump", "--uri", uri, "--db", "lastgood", "--gzip", "--out", str(tmp_path / "cron")
    )
    assert dumped.returncode == 0, dumped.stderr
    # When it is imported into the catalog and restored by lastgood into another database
    imported = run_cli("import", "--source", "mongodb", str(tmp_path / "cron"), "--json")
    assert imported.code == 0, imported.err
    manifest = json.loads(imported.out)
    assert manifest["counts"] == {
        f"lastgood.{name}": client["lastgood"][name].count_documents({})
        for name in client["lastgood"].list_collection_names()
    }
    target = f"imported_{secrets.token_hex(3)}"
    try:
        restored = run_cli(
            "restore", manifest["backup_id"], "--target", uri.rstrip("/") + f"/{target}", "--force"
        )
        assert restored.code == 0, restored.err
        # Then every document and index is back
        for name in client["lastgood"].list_collection_names():
            original, copy = client["lastgood"][name], client[target][name]
            assert {d["_id"]: d for d in copy.find()} == {d["_id"]: d for d in original.find()}, name
            assert _indexes(copy) == _indexes(original), name
        # And it is an ordinary backup: listed and verified
        assert run_cli("verify", manifest["backup_id"]).code == 0
    finally:
        client.drop_database(target)


def test_import_refuses_a_directory_it_does_not_understand_and_commits_nothing(devstack, tmp_path):
    folder = tmp_path / "odd"
    (folder / "app").mkdir(parents=True)
    (folder / "app" / "users.bson").write_bytes(b"")
    (folder / "oplog.bson").write_bytes(b"")
    before = run_cli("list", "--source", "mongodb", "--json")
    result = run_cli("import", "--source", "mongodb", str(folder))
    assert result.code == 2 and "oplog.bson" in result.err and "Traceback" not in result.err
    assert run_cli("list", "--source", "mongodb", "--json").out == before.out


def test_a_pg_dump_file_is_imported_and_restored_by_lastgood(devstack, tmp_path):
    # Given a `pg_dump -Fc` file of the seeded app database
    devstack.seed()
    dump = tmp_path / "app.dump"
    made = subprocess.run(
        [str(pg_bin_dir() / "pg_dump"), "-Fc", "-f", str(dump), os.environ["DATABASE_URL"]],
        capture_output=True,
        text=True,
    )
    assert made.returncode == 0, made.stderr
    # When it is imported and restored by lastgood into an empty database
    imported = run_cli("import", "--source", "postgres", str(dump), "--json")
    assert imported.code == 0, imported.err
    backup_id = json.loads(imported.out)["backup_id"]
    target = create_database("imported")
    try:
        restored = run_cli("restore", backup_id, "--target", pg_url(target))
        assert restored.code == 0, restored.err
        # Then every table and row is the source's
        assert pg_snapshot(pg_url(target)) == pg_snapshot(os.environ["DATABASE_URL"])
    finally:
        drop_database(target)
