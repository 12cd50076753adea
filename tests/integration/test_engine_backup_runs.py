"""The MongoDB and Upstash engines through the real backup orchestration (`run_backup`) and S3 store.

Seed → backup (manifest committed in moto S3) → restore from the verified
objects into a scratch target → data equal to the seed, counts equal to the manifest.
"""

from __future__ import annotations

import gzip
import os
import secrets
import shutil
import subprocess

import bson
import pytest
import valkey
from bson.codec_options import CodecOptions
from bson.raw_bson import RawBSONDocument
from lastgood.backups.run import run_backup
from lastgood.backups.store import BackupStore
from lastgood.engines import mongodb, redis_dump, upstash
from pymongo import MongoClient

from tests.helpers.engines import assert_same, snapshot, valkey_server

pytestmark = pytest.mark.devstack

RAW: CodecOptions[RawBSONDocument] = CodecOptions(document_class=RawBSONDocument)
SEEDED = ("prompts", "patterns", "learning")


def test_mongodb_backup_run_commits_a_mongodump_layout_that_restores_to_equal_documents(devstack) -> None:
    # Given the seeded MongoDB database
    url = os.environ["MONGODB_URI"]
    db = os.environ.get("MONGODB_DB_NAME", "lastgood")
    client = MongoClient(url)
    # When the `mongodb` source is backed up on demand
    result = run_backup("mongodb", on_demand=True)
    manifest = result.manifest
    assert result.status == "ok" and manifest is not None
    # Then the manifest lists <db>/<coll>.bson.gz + .metadata.json.gz (mongodump --gzip) with counts, and the engine's versions
    keys = {o.key for o in manifest.objects}
    for coll in SEEDED:
        assert {f"{db}/{coll}.bson.gz", f"{db}/{coll}.metadata.json.gz"} <= keys
        assert manifest.counts[f"{db}.{coll}"] == client[db][coll].count_documents({})
    assert manifest.server_version and "pymongo" in manifest.tool_versions
    # And each stored .bson.gz decodes to exactly the collection's documents
    store = BackupStore.from_settings()
    source = store.object_source(manifest)
    for coll in SEEDED:
        with source.open_object(f"{db}/{coll}.bson.gz") as body, gzip.GzipFile(fileobj=body) as fh:
            stored = sorted(d.raw for d in bson.decode_file_iter(fh, RAW))
        assert stored == sorted(d.raw for d in client[db].get_collection(coll, codec_options=RAW).find())
    # And a restore of the seed collections into a scratch database reproduces them
    scratch_db = f"t_engine_run_{secrets.token_hex(3)}"
    scratch = url.split("?")[0].rstrip("/") + "/" + scratch_db
    try:
        restored = mongodb.ENGINE.restore(scratch, source, only=[f"{db}.{c}" for c in SEEDED])
        for coll in SEEDED:
            assert restored.counts[f"{db}.{coll}"] == manifest.counts[f"{db}.{coll}"]
            assert sorted(
                d.raw for d in client[scratch_db].get_collection(coll, codec_options=RAW).find()
            ) == sorted(d.raw for d in client[db].get_collection(coll, codec_options=RAW).find())
    finally:
        client.drop_database(scratch_db)
        client.close()


@pytest.mark.skipif(shutil.which("redis-cli") is None, reason="redis-cli (redis-tools) is not installed")
def test_upstash_backup_run_restores_every_demo_key_with_redis_cli_pipe(devstack, tmp_path) -> None:
    # Given the seeded `demo:*` keys (binary value included) behind the Upstash REST front
    live = valkey.Valkey.from_url(os.environ["REDIS_URL"])
    before = snapshot(live, b"demo:")
    assert before and any(v[0] == b"string" and b"\xff" in v[1] for v in before.values())
    # When the `upstash` source is backed up on demand (through REST)
    result = run_backup("upstash", on_demand=True)
    manifest = result.manifest
    assert result.status == "ok" and manifest is not None
    assert [o.key for o in manifest.objects] == [redis_dump.DUMP_OBJECT]
    assert manifest.counts["keys"] >= len(before)
    assert manifest.server_version and manifest.server_version != "unknown"
    # Then the stored stream, gunzipped and piped into an empty Valkey, reproduces the demo keys
    store = BackupStore.from_settings()
    source = store.object_source(manifest)
    with source.open_object(redis_dump.DUMP_OBJECT) as body:
        raw = gzip.decompress(body.read())
    with valkey_server(tmp_path / "empty") as empty_url:
        proc = subprocess.run(
            ["redis-cli", "-u", empty_url, "--pipe"], input=raw, capture_output=True, timeout=60
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        empty = valkey.Valkey.from_url(empty_url)
        assert_same(before, snapshot(empty, b"demo:"))
        empty.flushdb()
        # And the engine's own restore (verified objects) gives the same, with counts matching the manifest
        restored = upstash.ENGINE.restore(empty_url, source)
        assert restored.counts == manifest.counts
        assert upstash.ENGINE.counts(empty_url) == manifest.counts
        assert_same(before, snapshot(empty, b"demo:"))
        empty.close()
    live.close()
