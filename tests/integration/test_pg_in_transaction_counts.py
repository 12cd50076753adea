"""A PostgreSQL restore counts the restored rows inside pg_restore's transaction.

The count is a TOC entry appended to the archive as it streams to pg_restore. It reports with
NOTIFY, which arrives only if the transaction commits. Every way this can fail falls back to
counting after the commit, and none of them fails the restore: an archive that cannot be
rewritten, a target without plpgsql, a count that errors, lost notifications. The archives
here are written by the real pg_dump, and the rewritten ones are read by the real pg_restore.
"""

from __future__ import annotations

import io
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from lastgood.backups.restore import restore_backup
from lastgood.backups.run import run_backup
from lastgood.backups.store import BackupStore
from lastgood.engines import pg_archive, pg_counts
from lastgood.engines import postgres as pg
from lastgood.engines.pg_tools import pg_bin_dir

from tests.helpers.backup import create_database, drop_database, pg_url
from tests.helpers.restore import pg_snapshot

pytestmark = pytest.mark.devstack

SCHEMA = """
CREATE SCHEMA shop;
CREATE TABLE shop.customers (id bigint PRIMARY KEY, email text NOT NULL UNIQUE);
CREATE TABLE shop.orders (id bigint PRIMARY KEY, customer_id bigint NOT NULL REFERENCES shop.customers (id),
    total numeric(10, 2) NOT NULL);
CREATE TABLE public."Odd Name" (id int);
INSERT INTO shop.customers SELECT g, 'c' || g || '@example.org' FROM generate_series(1, 3000) g;
INSERT INTO shop.orders SELECT g, 1 + g % 3000, (g % 9000) / 7.0 FROM generate_series(1, 20000) g;
INSERT INTO public."Odd Name" SELECT g FROM generate_series(1, 7) g;
"""
EXPECTED = {"shop.customers": 3000, "shop.orders": 20000, "public.Odd Name": 7}


@pytest.fixture(scope="module")
def source(devstack) -> Iterator[tuple[str, str]]:
    name = create_database("lg_txcount_src")
    url = pg_url(name)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(SCHEMA)
    try:
        result = run_backup("postgres", on_demand=True, url=url)
        yield result.backup_id, url
    finally:
        drop_database(name)


@pytest.fixture
def target(devstack) -> Iterator[str]:
    name = create_database("lg_txcount_dst")
    yield pg_url(name)
    drop_database(name)


@pytest.fixture
def archive_file(source, tmp_path) -> Path:
    """`pg_dump -Fc -f`: written to a file, so its data offsets are set (pg_dump seeks back)."""
    _, url = source
    path = tmp_path / "shop.dump"
    subprocess.run([str(pg_bin_dir() / "pg_dump"), "-Fc", "-f", str(path), url], check=True)
    return path


def _restore(backup_id: str, target: str):  # type: ignore[no-untyped-def]
    return restore_backup(backup_id, source="postgres", target_url=target, store=BackupStore.from_settings())


def _after_commit_counts(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Records each count after the commit (`PostgresEngine.counts`)."""
    calls: list[str] = []
    real = pg.PostgresEngine.counts

    def counts(self, url, *, token=None):  # type: ignore[no-untyped-def]
        calls.append(url)
        return real(self, url, token=token)

    monkeypatch.setattr(pg.PostgresEngine, "counts", counts)
    return calls


def _through_rewriter(data: bytes) -> tuple[pg_archive.WithEntry, bytes]:
    """`data` read through the rewriter 64 KiB at a time: (the rewriter, what it gave)."""
    stream = pg_archive.WithEntry(io.BytesIO(data), tag="t", desc="ROW COUNT", defn="SELECT 1;")
    return stream, b"".join(iter(lambda: stream.read(1 << 16), b""))


def _listing(path: Path) -> list[str]:
    out = subprocess.run(
        [str(pg_bin_dir() / "pg_restore"), "-l", str(path)], check=True, capture_output=True, text=True
    ).stdout
    return [line for line in out.splitlines() if line and not line.startswith(";")]


def _rewritten_with_entry_last(archive: Path, tmp_path: Path) -> Path:
    """`archive` rewritten into a file; asserts pg_restore lists its entries unchanged and the
    appended one last."""
    stream, out = _through_rewriter(archive.read_bytes())
    assert stream.appended
    rewritten = tmp_path / "rewritten.dump"
    rewritten.write_bytes(out)
    before, after = _listing(archive), _listing(rewritten)
    assert after[:-1] == before and "ROW COUNT" in after[-1]
    return rewritten


def test_restore_counts_inside_its_transaction_and_does_not_scan_after_the_commit(
    source, target, monkeypatch
):
    backup_id, source_url = source
    after_commit = _after_commit_counts(monkeypatch)
    # When the backup is restored into an empty database
    report = _restore(backup_id, target)
    # Then every table's count came from inside the transaction (none after the commit),
    assert after_commit == []
    assert report.ok and {c.name: c.restored for c in report.checks} == EXPECTED
    # they are the target's real counts, and the data is the source's
    assert pg.ENGINE.counts(target) == EXPECTED
    assert pg_snapshot(target) == pg_snapshot(source_url)


def test_the_rewritten_archive_lists_the_entry_last_and_restores_from_a_file(archive_file, target, tmp_path):
    # Given a pg_dump archive whose data offsets are set, rewritten as a restore streams it
    assert pg_archive.read_toc(archive_file.read_bytes()).offsets, "pg_dump -f sets the data offsets"
    # Then pg_restore lists the original entries unchanged and the new one last,
    rewritten = _rewritten_with_entry_last(archive_file, tmp_path)
    # and restores it by name (seeking to the moved data offsets), data complete
    subprocess.run(
        [
            str(pg_bin_dir() / "pg_restore"),
            "--single-transaction",
            "--exit-on-error",
            "-d",
            target,
            str(rewritten),
        ],
        check=True,
        capture_output=True,
    )
    assert pg.ENGINE.counts(target) == EXPECTED


def test_a_definition_longer_than_one_read_is_still_rewritten(devstack, tmp_path):
    # Given an archive whose TOC holds a function body longer than the rewriter's first read
    name = create_database("lg_txcount_long")
    try:
        url = pg_url(name)
        body = "x" * (pg_archive.READ_CHUNK + 4096)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(
                f"CREATE FUNCTION public.long_one() RETURNS text LANGUAGE sql AS $$ SELECT '{body}' $$"
            )
        path = tmp_path / "long.dump"
        subprocess.run([str(pg_bin_dir() / "pg_dump"), "-Fc", "-f", str(path), url], check=True)
    finally:
        drop_database(name)
    head = path.read_bytes()[: pg_archive.READ_CHUNK + 8192]
    assert pg_archive.read_toc(head).end > pg_archive.READ_CHUNK
    # When it streams through the rewriter, then the entry is appended and listed last (the
    # rewriter read on instead of passing the archive through)
    _rewritten_with_entry_last(path, tmp_path)


@pytest.mark.parametrize(
    "damage",
    [
        "a newer archive version",
        "a TOC cut short",
        "not an archive",
        "an impossible string length",
        "a string length past the archive's end",
    ],
)
def test_an_archive_it_cannot_read_passes_through_byte_for_byte(archive_file, damage):
    data = bytearray(archive_file.read_bytes())
    toc = pg_archive.read_toc(data)
    # the first entry's first string length: its sign byte comes after the count, id and had-data ints
    length_at = toc.count_at + 3 * (1 + toc.int_size)
    if damage == "a newer archive version":
        data[6] = 99
    elif damage == "a TOC cut short":
        data = data[: toc.end - 10]
    elif damage == "not an archive":
        data = bytearray(b"-- plain SQL\n" * 100)
    elif damage == "an impossible string length":
        data[length_at + toc.int_size] = 0x7F  # its high byte: beyond the TOC limit
    else:  # possible (under the TOC limit), so the rewriter reads on, to the end of the stream
        data[length_at + 1 : length_at + 1 + toc.int_size] = (len(data) + 1000).to_bytes(
            toc.int_size, "little"
        )
    # When the stream is read through the rewriter
    stream, out = _through_rewriter(bytes(data))
    # Then nothing was appended and every byte is the original's
    assert not stream.appended and out == bytes(data)


def test_a_count_that_fails_inside_the_transaction_does_not_fail_the_restore(source, target, monkeypatch):
    backup_id, _ = source
    # Given an in-transaction count that raises at run time (division by zero in its table list)
    failing = pg_counts._COUNT_BLOCK.replace("{tables}", "SELECT (1/0)::text AS nspname, 'x' AS relname")
    monkeypatch.setattr(pg_counts, "_COUNT_BLOCK", failing)
    after_commit = _after_commit_counts(monkeypatch)
    # When the backup is restored
    report = _restore(backup_id, target)
    # Then the restore committed, and the rows were counted after the commit instead
    assert report.ok and after_commit == [target]
    assert {c.name: c.restored for c in report.checks} == EXPECTED


def test_lost_notifications_fall_back_to_counting_after_the_commit(source, target, monkeypatch):
    backup_id, _ = source
    # Given a count whose notifications go to a channel nobody listens on (lost on the way)
    monkeypatch.setattr(pg_counts.TransactionCounts, "statement", lambda self: _elsewhere(self))
    monkeypatch.setattr(pg_counts, "NOTIFY_WAIT_S", 0.2)
    after_commit = _after_commit_counts(monkeypatch)
    # When the backup is restored
    report = _restore(backup_id, target)
    # Then the counts still come, from a count after the commit
    assert report.ok and after_commit == [target]


def _elsewhere(tally: pg_counts.TransactionCounts) -> str:
    return pg_counts._COUNT_BLOCK.format(tables=pg_counts.USER_TABLES.strip(), channel="lastgood_nobody")


def test_a_partial_set_of_notifications_is_not_taken_for_the_counts(target):
    # Given a listener, and notifications for one table where the sender says it counted two
    tally = pg_counts.TransactionCounts(pg.connect(target, autocommit=True))
    try:
        assert tally.active
        with psycopg.connect(target, autocommit=True) as conn:
            conn.execute("SELECT pg_notify(%s, %s)", (tally.channel, '{"s": "a", "t": "b", "n": 1}'))
            conn.execute("SELECT pg_notify(%s, %s)", (tally.channel, '{"tables": 2}'))
        # Then collect reports nothing (the caller counts after the commit)
        assert tally.collect(timeout_s=1.0) is None
    finally:
        tally.close()


def test_a_target_without_plpgsql_gets_the_archive_unchanged_and_counts_after_the_commit(
    source, target, monkeypatch
):
    backup_id, _ = source
    # Given a target database where plpgsql was dropped
    with psycopg.connect(target, autocommit=True) as conn:
        conn.execute("DROP EXTENSION plpgsql")
    fed: list[object] = []
    real = pg.stream_pg_restore

    def recording(args, env, stream, *rest):  # type: ignore[no-untyped-def]
        fed.append(stream)
        real(args, env, stream, *rest)

    monkeypatch.setattr(pg, "stream_pg_restore", recording)
    after_commit = _after_commit_counts(monkeypatch)
    # When the backup is restored
    report = _restore(backup_id, target)
    # Then pg_restore got the stored archive as it is, the restore committed, and the rows
    # were counted after the commit
    assert fed and not isinstance(fed[0], pg_archive.WithEntry)
    assert report.ok and after_commit == [target]
