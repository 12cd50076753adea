"""`ServerIdentity`: servers are compared by what they say they are, not by URL strings."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from lastgood.backups.manifest import BackupManifest
from lastgood.engines.base import ServerIdentity, endpoint_names, engine_family


def _pg(server: str, database: str) -> ServerIdentity:
    return ServerIdentity(engine="postgres", server_id=server, database=database, method="test")


def test_same_server_and_database_is_the_same_target_another_database_is_not():
    assert _pg("pg-system:1", "app").same_target(_pg("pg-system:1", "app"))
    assert not _pg("pg-system:1", "app").same_target(_pg("pg-system:1", "scratch"))
    assert not _pg("pg-system:1", "app").same_target(_pg("pg-system:2", "app"))


def test_a_shared_alias_makes_the_same_target_but_never_across_engines():
    # Given a Redis server whose run_id changed (restart) but whose endpoint did not
    before = ServerIdentity(
        engine="redis", server_id="redis-run:a", database="0", method="t", aliases=("addr:loopback:6379",)
    )
    after = ServerIdentity(
        engine="redis", server_id="redis-run:b", database="0", method="t", aliases=("addr:loopback:6379",)
    )
    assert before.same_target(after)
    mongo = ServerIdentity(
        engine="mongodb", server_id="hosts:x", database="0", method="t", aliases=("addr:loopback:6379",)
    )
    assert not before.same_target(mongo)


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "127.1.2.3", "::1", "[::1]", "LOCALHOST."])
def test_every_loopback_spelling_is_one_endpoint(host):
    assert endpoint_names(host, 5432) == ["loopback:5432"]


def test_ip_literals_and_names_are_normalised():
    assert endpoint_names("10.0.0.05".replace(".05", ".5"), 1) == ["10.0.0.5:1"]
    assert endpoint_names("DB.Example.COM.", 5432) == ["db.example.com:5432"]
    assert endpoint_names("/var/run/postgresql", 5432) == ["unix:/var/run/postgresql"]


def test_upstash_and_redis_are_one_family():
    assert engine_family("upstash") == engine_family("redis") == "redis"
    assert engine_family("postgres") == "postgres" and engine_family("mongodb") == "mongodb"


def _manifest(**extra: object) -> BackupManifest:
    now = datetime(2025, 1, 29, 2, tzinfo=UTC)
    return BackupManifest.build(
        backup_id="20250129T020000Z-3f9a1c",
        source="postgres",
        engine="postgres",
        started_at=now,
        finished_at=now,
        objects=[],
        **extra,  # type: ignore[arg-type]
    )


def test_the_manifest_records_the_source_identity_and_reads_it_back():
    identity = _pg("pg-system:7714", "app")
    manifest = _manifest(source_identity=identity)
    assert BackupManifest.from_json(manifest.to_bytes()).source_identity == identity


def test_a_format_1_manifest_without_a_source_identity_stays_readable():
    # Given a manifest written by a lastgood that did not record identities
    doc = _manifest().to_dict()
    del doc["source_identity"]
    # Then it parses, with no identity
    import json

    assert BackupManifest.from_json(json.dumps(doc)).source_identity is None
