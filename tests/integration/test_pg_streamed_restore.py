"""PostgreSQL restore streams the dump once into pg_restore's single transaction: every table,
index and constraint arrives, and a damaged dump commits nothing — into an empty target or over
a non-empty one."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from lastgood.backups.restore import restore_backup
from lastgood.backups.run import run_backup
from lastgood.backups.store import BackupStore
from lastgood.core import aws
from lastgood.core.errors import BackupIntegrityError

from tests.helpers.backup import create_database, drop_database, pg_url
from tests.helpers.restore import flipped_byte, object_keys, pg_is_empty, pg_snapshot

pytestmark = pytest.mark.devstack

SCHEMA = """
CREATE SCHEMA shop;
CREATE TABLE shop.customers (id bigint PRIMARY KEY, email text NOT NULL UNIQUE, note text);
CREATE TABLE shop.orders (
    id bigint PRIMARY KEY, customer_id bigint NOT NULL REFERENCES shop.customers (id),
    total numeric(10, 2) NOT NULL, payload bytea);
CREATE INDEX orders_customer_idx ON shop.orders (customer_id);
INSERT INTO shop.customers SELECT g, 'c' || g || '@example.org', md5(g::text) FROM generate_series(1, 5000) g;
INSERT INTO shop.orders SELECT g, 1 + g % 5000, (g % 9000) / 7.0,
    decode(md5(g::text) || md5((g * 3)::text) || md5((g * 7)::text), 'hex')
  FROM generate_series(1, 60000) g;
"""


def _constraints(url: str) -> list[tuple[str, str]]:
    with psycopg.connect(url) as conn:
        return sorted(
            (str(r[0]), str(r[1]))
            for r in conn.execute(
                "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE connamespace = 'shop'::regnamespace"
            ).fetchall()
        )


@pytest.fixture(scope="module")
def shop_backup(devstack) -> Iterator[tuple[str, str]]:
    """A ~3 MB dump (many stream chunks past the held tail) of a database with an index and an FK."""
    name = create_database("lg_stream_src")
    url = pg_url(name)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(SCHEMA)
    try:
        result = run_backup("postgres", on_demand=True, url=url)
        assert result.manifest is not None and result.manifest.objects[0].bytes > 1_000_000
        yield result.backup_id, url
    finally:
        drop_database(name)


@pytest.fixture
def target(devstack) -> Iterator[str]:
    name = create_database("lg_stream_dst")
    yield pg_url(name)
    drop_database(name)


def _counting_gets(monkeypatch: pytest.MonkeyPatch, key: str) -> list[dict[str, object]]:
    s3 = aws.client("s3")
    real_get = s3.get_object
    gets: list[dict[str, object]] = []

    def counting_get(**kwargs):  # type: ignore[no-untyped-def]
        if kwargs.get("Key") == key:
            gets.append(kwargs)
        return real_get(**kwargs)

    monkeypatch.setattr(s3, "get_object", counting_get)
    return gets


def test_a_streamed_restore_brings_every_table_index_and_constraint_in_one_read(
    shop_backup, target, monkeypatch
):
    backup_id, source_url = shop_backup
    (key,) = object_keys("postgres", backup_id)
    gets = _counting_gets(monkeypatch, key)
    # When the backup is restored into an empty database
    report = restore_backup(
        backup_id, source="postgres", target_url=target, store=BackupStore.from_settings()
    )
    # Then the dump was read from S3 once (no separate verify pass), the counts match,
    assert len(gets) == 1
    assert report.ok and {c.name for c in report.checks} >= {"shop.customers", "shop.orders"}
    # and the tables, rows, indexes and constraints (PK, UNIQUE, FK) equal the source's
    assert pg_snapshot(target) == pg_snapshot(source_url)
    assert _constraints(target) == _constraints(source_url)
    assert any("FOREIGN KEY" in d for _, d in _constraints(target))


@pytest.mark.parametrize("where", ["middle", "last byte"])
def test_a_damaged_dump_commits_nothing_into_an_empty_target(shop_backup, target, where):
    backup_id, _ = shop_backup
    (key,) = object_keys("postgres", backup_id)
    # Given the stored dump with one byte flipped (in the part streamed early, or in its tail)
    # When it is restored
    with flipped_byte(key, None if where == "middle" else -1), pytest.raises(BackupIntegrityError) as caught:
        restore_backup(backup_id, source="postgres", target_url=target, store=BackupStore.from_settings())
    # Then the integrity error names the dump and says nothing was written, and the target is empty
    message = str(caught.value)
    assert ".dump" in message and "SHA-256" in message and "nothing was written" in message
    assert pg_is_empty(target)


def test_a_damaged_dump_over_a_non_empty_target_leaves_it_as_it_was(shop_backup, target):
    backup_id, _ = shop_backup
    (key,) = object_keys("postgres", backup_id)
    # Given a target holding other data
    with psycopg.connect(target, autocommit=True) as conn:
        conn.execute("CREATE TABLE keepme (id int PRIMARY KEY, v text)")
        conn.execute("INSERT INTO keepme SELECT g, 'v' || g FROM generate_series(1, 100) g")
    before = pg_snapshot(target)
    # When a damaged dump is restored over it with force (--clean inside the transaction)
    with flipped_byte(key), pytest.raises(BackupIntegrityError, match="nothing was written"):
        restore_backup(
            backup_id,
            source="postgres",
            target_url=target,
            force=True,
            safety_backup=False,
            store=BackupStore.from_settings(),
        )
    # Then the target is exactly as it was
    assert pg_snapshot(target) == before
