"""Issue 13 fault matrix, part D: restore writes exactly the bytes it verified (case 8) and
configuration cannot turn a backup into something else (case 9).

Each test tries to break the invariant the way the issue's reproduction did, against the
devstack's real services; fault injection only where S3 cannot misbehave on demand (a GET
that answers other bytes than the ones just verified).
"""

from __future__ import annotations

import gzip
import io
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import bson
import pytest
from botocore.response import StreamingBody
from lastgood.backups.keys import object_key
from lastgood.backups.store import BackupStore
from lastgood.core import aws
from lastgood.core.config import load_config_file, reset_config
from lastgood.core.errors import ConfigError
from lastgood.core.settings import reset_settings
from pymongo import MongoClient

from tests.helpers.config import suite_config_document
from tests.helpers.restore import (
    backup_now,
    env,
    mongo_db_of,
    mongo_snapshot,
    pg_snapshot,
    run_cli,
    wipe,
)

pytestmark = pytest.mark.devstack

CASE8_DB = "lastgood_case8"


@pytest.fixture
def config_with(devstack, tmp_path: Path, monkeypatch) -> Iterator[Any]:
    """`config_with(*sources)`: the default config plus these sources, as LASTGOOD_CONFIG."""

    def apply(*sources: dict[str, Any]) -> Path:
        config = suite_config_document()
        config["sources"] += list(sources)
        path = tmp_path / "config.json"
        path.write_text(json.dumps(config))
        monkeypatch.setenv("LASTGOOD_CONFIG", str(path))
        reset_settings()
        reset_config()
        return path

    yield apply
    monkeypatch.undo()
    reset_settings()
    reset_config()


def _evil_bson_gz(count: int = 1500) -> bytes:
    """A valid gzip'd BSON stream of documents that are not in the backup (> one insert batch)."""
    docs = (bson.encode({"_id": f"evil-{i}", "evil": True, "pad": os.urandom(64)}) for i in range(count))
    return gzip.compress(b"".join(docs))


def _docs_with_evil(url: str) -> list[str]:
    client: MongoClient[dict[str, Any]] = MongoClient(url, serverSelectionTimeoutMS=5000)
    try:
        db = client[mongo_db_of(url)]
        return [
            f"{name}:{doc['_id']}"
            for name in db.list_collection_names()
            for doc in db[name].find({"evil": True}, projection={"_id": 1})
        ]
    finally:
        client.close()


def test_case_8_restore_writes_exactly_the_bytes_it_verified(devstack, config_with, monkeypatch):
    # Given a MongoDB backup, an empty scratch database, and the committed bytes of one collection
    devstack.seed()
    backup_id = backup_now("mongodb")
    scratch = env("SCRATCH_MONGODB_URI")
    wipe("mongodb", scratch)
    seed = mongo_snapshot(env("MONGODB_URI"), mongo_db_of(env("MONGODB_URI")))
    store = BackupStore.from_settings()
    manifest = store.read_manifest("mongodb", backup_id)
    victim = next(o.key for o in manifest.objects if o.key.endswith(".bson.gz"))
    key = object_key("mongodb", backup_id, victim)
    original = store.s3.get_object(Bucket=store.bucket, Key=key)["Body"].read()
    evil = _evil_bson_gz()
    s3 = aws.client("s3")
    real_get = s3.get_object
    gets: list[dict[str, Any]] = []

    def swapping_get(**kwargs: Any) -> Any:
        # Fault injection: S3 answers the verify pass with the committed bytes and every later
        # read of the same object with other bytes (pins ignored) — a real S3 cannot do this.
        response = real_get(**kwargs)
        if kwargs.get("Key") == key:
            gets.append(kwargs)
            if len(gets) > 1:
                response["Body"].close()
                response["Body"] = StreamingBody(io.BytesIO(evil), len(evil))
        return response

    try:
        # When the bytes are swapped between the verify pass and the restore's read
        with monkeypatch.context() as patch:
            patch.setattr(s3, "get_object", swapping_get)
            swapped = run_cli("restore", backup_id, "--target", scratch)
        # Then the restore fails with the integrity error (exit 6) naming the object,
        # and nothing from the swapped object is in the target
        assert swapped.code == 6, swapped.err
        assert victim in swapped.err and "after it was verified" in swapped.err
        assert _docs_with_evil(scratch) == []
        # And the read was pinned to what the verify pass checked (ETag, and version when versioned)
        assert len(gets) >= 2 and "IfMatch" in gets[-1]

        # When the object is overwritten in S3 itself between the verify pass and the read
        wipe("mongodb", scratch)
        overwritten: list[bool] = []

        def overwriting_get(**kwargs: Any) -> Any:
            response = real_get(**kwargs)
            if kwargs.get("Key") == key and not overwritten:
                overwritten.append(True)
                store.s3.put_object(Bucket=store.bucket, Key=key, Body=evil, **store.sse_args())
            return response

        with monkeypatch.context() as patch:
            patch.setattr(s3, "get_object", overwriting_get)
            pinned = run_cli("restore", backup_id, "--target", scratch)
        # Then the pinned read gets the verified version: the target holds exactly the backup
        assert overwritten and pinned.code == 0, pinned.err
        assert _docs_with_evil(scratch) == []
        assert mongo_snapshot(scratch, mongo_db_of(scratch)) == seed
    finally:
        store.s3.put_object(Bucket=store.bucket, Key=key, Body=original, **store.sse_args())
        wipe("mongodb", scratch)

    # Given a backup of a database other than the server's default one
    client: MongoClient[dict[str, Any]] = MongoClient(env("MONGODB_URI"), serverSelectionTimeoutMS=5000)
    try:
        client.drop_database(CASE8_DB)
        client.drop_database(CASE8_DB + "_copy")
        client[CASE8_DB]["things"].insert_many([{"_id": f"t{i}", "n": i} for i in range(5)])
        config_with(
            {"name": "mongocase8", "engine": "mongodb", "url_secret": "MONGODB_URI", "database": CASE8_DB}
        )
        case8_backup = backup_now("mongocase8")
        client.drop_database(CASE8_DB)
        host_only = env("MONGODB_URI").split("?", 1)[0].rstrip("/") + "/"
        # When it is restored into a URL that names no database and no --db is given
        refused = run_cli("restore", case8_backup, "--target", host_only, "--force")
        # Then the restore is refused, asking for --db; the object keys did not choose a database
        assert refused.code == 8, refused.err
        assert "names no database" in refused.err and "--db" in refused.err
        assert CASE8_DB not in client.list_database_names()
        # When --db names the target database
        chosen = run_cli("restore", case8_backup, "--target", host_only, "--db", CASE8_DB + "_copy")
        # Then the backup lands there, and only there
        assert chosen.code == 0, chosen.err
        assert client[CASE8_DB + "_copy"]["things"].count_documents({}) == 5
        assert CASE8_DB not in client.list_database_names()
    finally:
        client.drop_database(CASE8_DB)
        client.drop_database(CASE8_DB + "_copy")
        client.close()


BYPASSES = [
    ("-sf{x}", "-s"),  # bundled: -s (schema only) then -f /tmp/x
    ("--form=p", "--format"),
    ("--dbn=postgresql://postgres@127.0.0.1:1/other", "--dbname"),
    ("--fil={x}", "--file"),
    ("-Fp", "-F"),
    ("--snapshot=x", "--snapshot"),
    ("--no-s", "ambiguous"),
]


def test_case_9_configuration_cannot_turn_a_backup_into_something_else(devstack, config_with, tmp_path: Path):
    out_file = tmp_path / "x"
    for written, named in BYPASSES:
        arg = written.format(x=out_file)
        # Given a source whose pg_dump_args tries to change the dump's content, format, file,
        # connection or snapshot through pg_dump's option grammar
        path = config_with(
            {"name": "pgargs", "engine": "postgres", "url_secret": "DATABASE_URL", "pg_dump_args": [arg]}
        )
        # When the config is loaded
        with pytest.raises(ConfigError) as refused:
            load_config_file(path)
        # Then it is refused at load, naming the option as written and what it resolves to
        message = str(refused.value)
        assert repr(arg) in message and named in message, message
        # And a backup of that source exits 2 before pg_dump runs: nothing is written to the file
        result = run_cli("backup", "--source", "pgargs")
        assert result.code == 2, (arg, result.err)
        assert "pg_dump_args" in result.err and "Traceback" not in result.err
        assert not out_file.exists(), arg

    # Given allowed options, one compressed by short letter and one abbreviated
    path = config_with(
        {
            "name": "pgargs",
            "engine": "postgres",
            "url_secret": "DATABASE_URL",
            "pg_dump_args": ["-Z9", "--no-comm"],
        }
    )
    # When the config is loaded, they are accepted and normalised to pg_dump's own long names
    from lastgood.core.pg_dump_args import normalise_pg_dump_args

    assert load_config_file(path).source("pgargs").pg_dump_args == ["-Z9", "--no-comm"]
    assert normalise_pg_dump_args(["-Z9", "--no-comm"]) == ["--compress=9", "--no-comments"]
    # When a real backup is taken with them and restored with pg_restore
    devstack.seed()
    seed = pg_snapshot(env("DATABASE_URL"))
    backup_id = backup_now("pgargs")
    scratch = env("SCRATCH_DATABASE_URL")
    wipe("postgres", scratch)
    try:
        restored = run_cli("restore", backup_id, "--target", scratch)
        # Then the data is all there
        assert restored.code == 0, restored.err
        assert pg_snapshot(scratch) == seed
    finally:
        wipe("postgres", scratch)
