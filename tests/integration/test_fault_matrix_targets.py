"""Issue 13 fault matrix, part "targets": no drill or verify target is ever a production database,
a restore can be undone, and a target's credentials never come from the source.

Each test tries to break one invariant against the devstack's real services: the production URL
typed as the drill target, the same server spelled differently (`localhost` vs `127.0.0.1`, an
added `?application_name=x`), a drill target that is another configured source, an unreachable
target, and an HTTP listener that records the bearer token it is sent.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from lastgood.backups.keys import backup_prefix
from lastgood.backups.store import BackupStore
from lastgood.core.config import reset_config
from lastgood.core.settings import reset_settings

from tests.helpers.restore import (
    assert_same_redis,
    backup_now,
    env,
    mongo_db_of,
    mongo_snapshot,
    pg_snapshot,
    redis_snapshot,
    run_cli,
    wipe,
)

pytestmark = pytest.mark.devstack


def _respell(url: str, host: str = "localhost", *, path: str | None = None, query: str | None = None) -> str:
    """The same server under another name: another host spelling, path or query string."""
    parts = urlsplit(url)
    userinfo = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
    netloc = f"{userinfo}{host}:{parts.port}"
    return urlunsplit(
        (
            parts.scheme,
            netloc,
            parts.path if path is None else path,
            parts.query if query is None else query,
            "",
        )
    )


def _reload(monkeypatch: pytest.MonkeyPatch, **values: str | None) -> None:
    for name, value in values.items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    reset_settings()
    reset_config()


def _delete_backups(source: str, backup_ids: list[str]) -> None:
    """Test cleanup: safety backups taken here must not become another test's `--latest`."""
    store = BackupStore.from_settings()
    for backup_id in backup_ids:
        listed = store.s3.list_objects_v2(Bucket=store.bucket, Prefix=backup_prefix(source, backup_id))
        for item in listed.get("Contents", []):
            store.s3.delete_object(Bucket=store.bucket, Key=item["Key"])


def _safety_ids(text: str) -> list[str]:
    return re.findall(r"safety backup (\d{8}T\d{6}Z-[0-9a-f]{6})", text)


@pytest.fixture
def seeded(devstack) -> Iterator[None]:
    devstack.seed()
    yield
    devstack.seed()  # a test that failed (on the base commit: wiped production) leaves it seeded


# --------------------------------------------------------------------------- case 1


def test_case_1_verify_restore_to_the_production_url_is_refused(seeded):
    # Given a complete PostgreSQL backup and the production database's rows
    prod = env("DATABASE_URL")
    backup_now("postgres")
    before = pg_snapshot(prod)
    # When the drill target typed is the production URL itself
    result = run_cli("verify", "--latest", "--source", "postgres", "--restore-to", prod)
    # Then it is refused (exit 8), the message names the production source and why,
    assert result.code == 8, result.out + result.err
    text = result.out + result.err
    assert "PASSED" not in text
    assert "'postgres'" in text and "production" in text and "system_identifier" in text
    # And every production row is intact
    assert pg_snapshot(prod) == before


# --------------------------------------------------------------------------- case 2


def test_case_2_drill_target_spelling_the_production_server_differently_is_refused(seeded, monkeypatch):
    # Given a PostgreSQL backup (its manifest records the source's server identity)
    prod = env("DATABASE_URL")
    backup_id = backup_now("postgres")
    manifest = BackupStore.from_settings().read_manifest("postgres", backup_id)
    assert manifest.source_identity is not None and manifest.source_identity.database == "app"
    before = pg_snapshot(prod)
    # And the configured scratch target naming the production server differently: `localhost`
    # for `127.0.0.1` and an added `?application_name=x`; and the verify role cannot read the
    # source's own secret (as on AWS), so only the manifest's recorded identity can tell
    respelled = _respell(prod, query="application_name=x")
    assert respelled != prod
    _reload(monkeypatch, SCRATCH_DATABASE_URL=respelled, DATABASE_URL=None)
    # When the drill runs
    result = run_cli("verify", "--latest", "--source", "postgres", "--drill")
    # Then it is refused, naming the source the target is, and production is intact
    assert result.code == 8, result.out + result.err
    assert "'postgres'" in result.out + result.err and "PASSED" not in result.out
    _reload(monkeypatch, DATABASE_URL=prod)
    assert pg_snapshot(prod) == before


def test_case_2_mongodb_drill_target_spelling_the_production_database_differently_is_refused(
    seeded, monkeypatch
):
    # Given a MongoDB backup of the production database (named by MONGODB_DB_NAME, not the URL)
    prod = env("MONGODB_URI")
    db_name = mongo_db_of(prod)
    backup_now("mongodb")
    before = mongo_snapshot(prod, db_name)
    assert before["prompts"]
    # And a scratch URL that names the same server and database another way
    respelled = _respell(prod, path=f"/{db_name}", query="appname=x")
    _reload(monkeypatch, SCRATCH_MONGODB_URI=respelled)
    # When the drill runs
    result = run_cli("verify", "--latest", "--source", "mongodb", "--drill")
    # Then it is refused naming the source, and every production document is intact
    assert result.code == 8, result.out + result.err
    assert "'mongodb'" in result.out + result.err
    assert mongo_snapshot(prod, db_name) == before


def test_case_2_redis_drill_target_that_is_the_upstash_source_behind_another_protocol_is_refused(
    seeded, monkeypatch
):
    # Given a backup of the Upstash source (REST API) — the devstack serves it from Valkey db 0
    backup_now("upstash")
    before = redis_snapshot(env("REDIS_URL"))
    assert before
    # And the scratch target spelled as that same key space over the Redis protocol, `localhost`
    respelled = _respell(env("REDIS_URL"), path="/0")
    _reload(monkeypatch, SCRATCH_REDIS_URL=respelled)
    # When the drill runs
    result = run_cli("verify", "--latest", "--source", "upstash", "--drill")
    # Then it is refused naming the source, and every key is intact
    assert result.code == 8, result.out + result.err
    assert "'upstash'" in result.out + result.err and "run_id" in result.out + result.err
    assert_same_redis(redis_snapshot(env("REDIS_URL")), before)


# --------------------------------------------------------------------------- case 10


class _Recorder(BaseHTTPRequestHandler):
    seen: list[str]

    def log_message(self, format: str, *args: object) -> None:
        return None

    def do_POST(self) -> None:
        self.seen.append(self.headers.get("Authorization", ""))
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        body = json.dumps({"error": "ERR this is not an Upstash database"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST


@pytest.fixture
def recorder() -> Iterator[tuple[str, list[str]]]:
    seen: list[str] = []
    handler = type("Handler", (_Recorder,), {"seen": seen})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def test_case_10_the_source_token_is_never_sent_to_a_typed_target(seeded, recorder, monkeypatch):
    # Given an Upstash backup and a listener on another host:port that records Authorization headers
    backup_id = backup_now("upstash")
    source_token = env("UPSTASH_REDIS_REST_TOKEN")
    listener, seen = recorder
    # When it is typed as the target of a restore and of a drill, without and with a target token
    monkeypatch.setenv("OTHER_TARGET_TOKEN", "target-only-token")
    runs = [
        run_cli("restore", backup_id, "--target", listener, "--force"),
        run_cli("verify", backup_id, "--restore-to", listener),
        run_cli(
            "restore", backup_id, "--target", listener, "--force", "--target-token-env", "OTHER_TARGET_TOKEN"
        ),
        run_cli("verify", backup_id, "--restore-to", listener, "--target-token-env", "OTHER_TARGET_TOKEN"),
    ]
    # Then each one fails, and the listener never saw the source's token
    assert all(r.code != 0 for r in runs), [r.err for r in runs]
    assert not any(source_token in header for header in seen), seen
    # And without a target token the target is not contacted at all; the message says what to give
    assert "--target-token-env" in runs[0].err and "--target-token-env" in runs[1].out + runs[1].err
    assert seen and all(header == "Bearer target-only-token" for header in seen)


# --------------------------------------------------------------------------- the other faults


def test_drill_target_unreachable_fails_cleanly_and_wipes_nothing(seeded, monkeypatch):
    # Given a PostgreSQL backup, and a drill that records every wipe it attempts
    from lastgood.engines.postgres import PostgresEngine

    backup_now("postgres")
    wiped: list[str] = []
    real_wipe = PostgresEngine.wipe

    def recording_wipe(self: PostgresEngine, url: str, *, token: str | None = None) -> None:
        wiped.append(url)
        real_wipe(self, url, token=token)

    monkeypatch.setattr(PostgresEngine, "wipe", recording_wipe)
    before = pg_snapshot(env("DATABASE_URL"))
    # When the drill target does not answer
    result = run_cli(
        "verify",
        "--latest",
        "--source",
        "postgres",
        "--restore-to",
        "postgresql://postgres@127.0.0.1:9/scratch",
    )
    # Then the drill fails (exit 8) saying the target is unreachable, and nothing was wiped
    assert result.code == 8
    assert "unreachable" in result.out + result.err and "127.0.0.1:9" in result.out + result.err
    assert wiped == []
    assert pg_snapshot(env("DATABASE_URL")) == before


@pytest.fixture
def billing(devstack, tmp_path, monkeypatch) -> Iterator[str]:
    """A second configured PostgreSQL source, `billing`, on the same server (database `billing`)."""
    prod = env("DATABASE_URL")
    url = _respell(prod, host="127.0.0.1", path="/billing")
    with psycopg.connect(prod, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS billing")
        conn.execute("CREATE DATABASE billing")
    with psycopg.connect(url) as conn:
        conn.execute("CREATE TABLE invoices (id int PRIMARY KEY, total int)")
        conn.execute("INSERT INTO invoices SELECT g, g * 10 FROM generate_series(1, 25) g")
    from tests.helpers.config import suite_config_document

    config = suite_config_document()
    config["sources"].append(
        {
            "name": "billing",
            "engine": "postgres",
            "url_secret": "BILLING_DATABASE_URL",
            "category": "critical",
        }
    )
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    _reload(monkeypatch, LASTGOOD_CONFIG=str(path), BILLING_DATABASE_URL=url)
    try:
        yield url
    finally:
        with psycopg.connect(prod, autocommit=True) as conn:
            conn.execute("DROP DATABASE IF EXISTS billing WITH (FORCE)")


def test_drill_target_that_is_a_different_configured_source_is_refused(seeded, billing):
    # Given a backup of `postgres` and another configured source `billing` with its rows
    backup_now("postgres")
    before = pg_snapshot(billing)
    # When the drill target is `billing`, spelled differently from its secret
    result = run_cli(
        "verify",
        "--latest",
        "--source",
        "postgres",
        "--restore-to",
        _respell(billing, query="application_name=x"),
    )
    # Then it is refused, naming `billing`, and billing's rows are intact
    assert result.code == 8, result.out + result.err
    assert "'billing'" in result.out + result.err
    assert pg_snapshot(billing) == before


def test_restore_over_a_non_empty_target_takes_a_safety_backup_that_undoes_it(seeded):
    # Given a PostgreSQL backup, and a scratch database holding data of its own — a `users`
    # table the restore replaces and a table the backup does not have
    backup_id = backup_now("postgres")
    scratch = env("SCRATCH_DATABASE_URL")
    wipe("postgres", scratch)
    with psycopg.connect(scratch) as conn:
        conn.execute("CREATE TABLE users (id int PRIMARY KEY, note text)")
        conn.execute("INSERT INTO users SELECT g, 'mine ' || g FROM generate_series(1, 7) g")
        conn.execute("CREATE TABLE precious (id int PRIMARY KEY, note text)")
        conn.execute("INSERT INTO precious SELECT g, 'row ' || g FROM generate_series(1, 40) g")
    before = pg_snapshot(scratch)
    prod = pg_snapshot(env("DATABASE_URL"))
    taken: list[str] = []
    try:
        # When the backup is restored over it with --force
        result = run_cli("restore", backup_id, "--target", scratch, "--force")
        # Then it is restored, after a pinned safety backup of what was there, and the output
        # says how to undo it
        assert result.code == 0, result.err
        taken = _safety_ids(result.out)
        assert len(taken) == 1, result.out
        safety = BackupStore.from_settings().read_manifest("postgres", taken[0])
        assert safety.pinned and safety.pin_reason == f"before restore of {backup_id}"
        undo = f"lastgood restore {taken[0]} --target {scratch} --force --wipe-first"
        assert undo in result.out
        restored = pg_snapshot(scratch)
        assert all(restored[name] == prod[name] for name in ("public.users", "public.orders"))
        # When the undo command is run as printed
        undone = run_cli(*undo.split()[1:])
        taken += _safety_ids(undone.out)
        # Then the target holds exactly what it held before the restore
        assert undone.code == 0, undone.err
        assert pg_snapshot(scratch) == before
    finally:
        wipe("postgres", scratch)
        _delete_backups("postgres", taken)


def test_restore_into_a_production_source_needs_yes_and_names_it(seeded):
    # Given a PostgreSQL backup and the production database (spelled `localhost`)
    prod = env("DATABASE_URL")
    backup_id = backup_now("postgres")
    before = pg_snapshot(prod)
    target = _respell(prod)
    taken: list[str] = []
    try:
        # When it is restored into production with --force but without --yes
        refused = run_cli("restore", backup_id, "--target", target, "--force")
        # Then it is refused, naming the source, and nothing was written
        assert refused.code == 8, refused.out + refused.err
        assert "'postgres'" in refused.err and "--yes" in refused.err
        assert pg_snapshot(prod) == before
        # When --yes is added
        done = run_cli("restore", backup_id, "--target", target, "--force", "--yes")
        taken = _safety_ids(done.out)
        # Then it restores after a safety backup, and the undo line carries --yes
        assert done.code == 0, done.err
        undo = f"lastgood restore {taken[0]} --target {target} --force --wipe-first --yes"
        assert len(taken) == 1 and undo in done.out, done.out
        assert pg_snapshot(prod) == before
    finally:
        _delete_backups("postgres", taken)
