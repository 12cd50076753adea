"""PostgreSQL backups against the devstack: restorable with stock pg_restore, and failures commit nothing."""

from __future__ import annotations

import json
import tempfile
import threading
from pathlib import Path

import psycopg
import pytest
from lastgood.backups.manifest import BackupManifest
from lastgood.backups.run import run_backup
from lastgood.backups.store import BackupStore
from lastgood.cli import main as cli_main
from lastgood.core import aws
from lastgood.core.errors import BackupError, SourceUnavailable
from lastgood.engines import pg_compress
from lastgood.engines.postgres import ENGINE
from lastgood.storage.multipart import MIN_PART_SIZE

from tests.helpers.backup import (
    S3Hook,
    create_database,
    drop_database,
    drop_table,
    fail_part,
    fill_random_table,
    manifest_keys,
    open_uploads,
    pg_restore_file,
    pg_url,
)

pytestmark = pytest.mark.devstack

BIG_TABLE = "test_backup_postgres_big"


@pytest.fixture(scope="module")
def seeded_pg(devstack):
    """Tables with text, numbers, NULLs and binary rows in the devstack `app` database."""
    url = pg_url()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA IF NOT EXISTS test_backup_pg")
        conn.execute("DROP TABLE IF EXISTS test_backup_pg.blobs, test_backup_pg.people")
        conn.execute("CREATE TABLE test_backup_pg.people (id serial PRIMARY KEY, name text, age int)")
        conn.execute(
            "INSERT INTO test_backup_pg.people (name, age) SELECT 'person ' || g, CASE WHEN g % 7 = 0 THEN NULL "
            "ELSE g % 90 END FROM generate_series(1, 2500) g"
        )
        conn.execute("CREATE TABLE test_backup_pg.blobs (id int PRIMARY KEY, data bytea NOT NULL)")
        conn.execute(
            "INSERT INTO test_backup_pg.blobs VALUES (1, %s), (2, %s)",
            (bytes(range(256)) * 4, b"\x00\xff\x00'\"\\\n\r"),
        )
    yield url
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS test_backup_pg CASCADE")


@pytest.fixture
def big_table(devstack):
    """~24 MB of incompressible rows: the dump spans several 5 MiB parts."""
    fill_random_table(pg_url(), BIG_TABLE, 24)
    yield BIG_TABLE
    drop_table(pg_url(), BIG_TABLE)


@pytest.fixture
def small_part_store(devstack):
    def make(s3_client=None) -> BackupStore:
        settings_store = BackupStore.from_settings()
        return BackupStore(
            settings_store.bucket,
            settings_store.kms_key_id,
            s3_client or aws.client("s3"),
            part_size=MIN_PART_SIZE,
        )

    return make


def _listing_snapshot(capsys) -> list[dict]:
    capsys.readouterr()
    assert cli_main(["list", "--source", "postgres", "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_cli_backup_prints_the_manifest_and_stock_pg_restore_reproduces_every_table(seeded_pg, capsys):
    # Given seeded tables (including binary rows)
    # When the CLI backs up the postgres source with --json
    capsys.readouterr()
    assert cli_main(["backup", "--source", "postgres", "--json"]) == 0
    manifest = BackupManifest.model_validate(json.loads(capsys.readouterr().out))
    assert manifest.engine == "postgres" and manifest.server_version
    assert manifest.counts["test_backup_pg.people"] == 2500
    assert manifest.counts["test_backup_pg.blobs"] == 2
    [entry] = manifest.objects
    assert entry.key == "app.dump" and entry.sha256 and entry.bytes > 0
    assert manifest.tool_versions["pg_dump"].startswith("18")
    # Then the dump object, downloaded and fed to the bundled pg_restore, reproduces every table
    store = BackupStore.from_settings()
    target = create_database("test_backup_restore")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "app.dump"
            with (
                store.open_object("postgres", manifest.backup_id, "app.dump") as body,
                path.open("wb") as out,
            ):
                while chunk := body.read(1 << 20):
                    out.write(chunk)
            import hashlib

            assert hashlib.sha256(path.read_bytes()).hexdigest() == entry.sha256
            proc = pg_restore_file(path, pg_url(target))
            assert proc.returncode == 0, proc.stderr
        restored = ENGINE.counts(pg_url(target))
        assert restored == manifest.counts
        # And binary values survive byte for byte
        with psycopg.connect(pg_url(target)) as conn:
            rows = conn.execute("SELECT id, data FROM test_backup_pg.blobs ORDER BY id").fetchall()
        assert [bytes(r[1]) for r in rows] == [bytes(range(256)) * 4, b"\x00\xff\x00'\"\\\n\r"]
    finally:
        drop_database(target)


def test_engine_restore_streams_a_verified_backup_into_an_empty_database(seeded_pg):
    result = run_backup("postgres", on_demand=True)
    store = BackupStore.from_settings()
    target = create_database("test_backup_engine_restore")
    try:
        assert ENGINE.is_empty(pg_url(target))
        restored = ENGINE.restore(pg_url(target), store.object_source(result.manifest))
        assert restored.counts == result.manifest.counts
        assert not ENGINE.is_empty(pg_url(target))
    finally:
        drop_database(target)


def test_counts_and_dump_share_one_snapshot_while_rows_are_being_written(seeded_pg):
    # Given a writer inserting rows throughout the backup
    stop = threading.Event()

    def keep_inserting() -> None:
        with psycopg.connect(seeded_pg, autocommit=True) as conn:
            while not stop.is_set():
                conn.execute("INSERT INTO test_backup_pg.people (name, age) VALUES ('late', 1)")

    thread = threading.Thread(target=keep_inserting)
    thread.start()
    try:
        result = run_backup("postgres", on_demand=True)
    finally:
        stop.set()
        thread.join()
    # Then a restore holds exactly the counted rows
    target = create_database("test_backup_snapshot")
    try:
        restored = ENGINE.restore(pg_url(target), BackupStore.from_settings().object_source(result.manifest))
        assert restored.counts == result.manifest.counts
    finally:
        drop_database(target)


def test_stopping_postgres_mid_backup_leaves_no_manifest_no_upload_and_earlier_backups_unchanged(
    seeded_pg, small_part_store, devstack, capsys
):
    # Given an earlier good backup, then a table big enough for the dump to span several parts
    run_backup("postgres", on_demand=True)
    before = _listing_snapshot(capsys)
    fill_random_table(pg_url(), BIG_TABLE, 24)
    s3 = aws.client("s3")
    bucket = BackupStore.from_settings().bucket
    manifests_before = manifest_keys(s3, bucket, "postgres")

    # When PostgreSQL is stopped once the dump is mid-way (first part uploading)
    def stop_db(part: int) -> None:
        if part == 1:
            devstack.stop("postgres")

    store = small_part_store(S3Hook(s3, stop_db))
    try:
        with pytest.raises((BackupError, SourceUnavailable)) as caught:
            run_backup("postgres", on_demand=True, store=store)
    finally:
        devstack.start("postgres")
        drop_table(pg_url(), BIG_TABLE)
    # Then the run failed loudly, nothing was committed, no multipart upload is left
    assert "nothing was committed" in str(caught.value) or "pg_dump" in str(caught.value)
    assert manifest_keys(s3, bucket, "postgres") == manifests_before
    assert open_uploads(s3, bucket) == []
    # And `lastgood list` shows the earlier backups exactly as before
    assert _listing_snapshot(capsys) == before


@pytest.mark.parametrize("threads", ["0", "2"], ids=["pg_dump compresses", "lastgood compresses"])
def test_pg_dump_killed_half_way_aborts_the_upload_and_reports_its_stderr(
    seeded_pg, big_table, small_part_store, monkeypatch, threads
):
    monkeypatch.setenv(pg_compress.THREADS_ENV, threads)
    s3 = aws.client("s3")
    bucket = BackupStore.from_settings().bucket
    manifests_before = manifest_keys(s3, bucket, "postgres")

    # pg_dump's own server connection is terminated while it streams (a real mid-dump failure)
    def terminate_pg_dump(part: int) -> None:
        if part == 1:
            with psycopg.connect(pg_url(), autocommit=True) as conn:
                conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name = 'lastgood' AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
                )

    with pytest.raises(BackupError, match="pg_dump exited with status 1") as caught:
        run_backup("postgres", on_demand=True, store=small_part_store(S3Hook(s3, terminate_pg_dump)))
    assert "COPY public.test_backup_postgres_big" in str(caught.value)
    assert manifest_keys(s3, bucket, "postgres") == manifests_before
    assert open_uploads(s3, bucket) == []


@pytest.mark.parametrize("threads", ["0", "2"], ids=["pg_dump compresses", "lastgood compresses"])
def test_s3_failing_a_part_aborts_the_upload_and_writes_no_manifest(
    seeded_pg, big_table, small_part_store, monkeypatch, threads
):
    monkeypatch.setenv(pg_compress.THREADS_ENV, threads)
    s3 = aws.client("s3")
    bucket = BackupStore.from_settings().bucket
    manifests_before = manifest_keys(s3, bucket, "postgres")
    hooked = S3Hook(s3, fail_part(2))
    with pytest.raises(BackupError, match="InternalError"):
        run_backup("postgres", on_demand=True, store=small_part_store(hooked))
    assert 2 in hooked.parts_seen
    assert manifest_keys(s3, bucket, "postgres") == manifests_before
    assert open_uploads(s3, bucket) == []


def test_rejected_credentials_fail_without_leaking_the_password(seeded_pg, monkeypatch):
    # The devstack server trusts local connections, so a password alone cannot be wrong there;
    # an unknown role is the server-side authentication failure it can produce.
    port = pg_url().split(":")[-1].split("/")[0]
    monkeypatch.setenv("DATABASE_URL", f"postgresql://no_such_role:s3cr3t-pa55@127.0.0.1:{port}/app")
    from lastgood.core.settings import reset_settings

    reset_settings()
    try:
        with pytest.raises(BackupError) as caught:
            run_backup("postgres", on_demand=True)
    finally:
        monkeypatch.undo()
        reset_settings()
    assert "no_such_role" in str(caught.value)
    assert "s3cr3t-pa55" not in str(caught.value)
