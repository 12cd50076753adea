"""A PostgreSQL backup compressed on several cores is the archive `pg_dump -Fc` writes.

lastgood runs `pg_dump --compress=0` and compresses each data block itself on a thread pool
(`lastgood.engines.pg_compress`). Every archive here is written by the real pg_dump and read
by the real pg_restore: the data pg_restore gets back must equal what it gets from pg_dump's
own compressed archive of the same database, for rows spread over many pieces, an empty table,
a row longer than a piece, and large objects. The fault tests cut and damage the stream: an
archive that stops inside a block is refused (nothing committed), one this module does not
know passes through byte for byte.
"""

from __future__ import annotations

import io
import subprocess
import threading
from collections.abc import Iterator

import psycopg
import pytest
from lastgood.backups.run import run_backup
from lastgood.backups.store import BackupStore
from lastgood.core.errors import BackupError
from lastgood.engines import pg_archive, pg_compress, pg_connect
from lastgood.engines import postgres as pg
from lastgood.engines.pg_tools import pg_bin_dir

from tests.helpers.backup import create_database, drop_database, pg_url

pytestmark = pytest.mark.devstack

SCHEMA = """
CREATE SCHEMA shop;
CREATE TABLE shop.orders (id bigint PRIMARY KEY, note text NOT NULL, total numeric(10, 2));
INSERT INTO shop.orders SELECT g, 'order ' || g || ' ' || md5(g::text), (g % 9000) / 7.0
  FROM generate_series(1, 60000) g;
CREATE TABLE shop.empty (id int);
CREATE TABLE shop.long_rows (id int, body text);
INSERT INTO shop.long_rows SELECT g, (SELECT string_agg(md5((g * 100000 + i)::text), '') FROM generate_series(1, 90000) i)
  FROM generate_series(1, 2) g;
SELECT lo_from_bytea(0, decode(repeat(md5('blob'), 70000), 'hex'));
SELECT lo_from_bytea(0, '\\x00ff'::bytea);
SELECT lo_from_bytea(0, ''::bytea);
"""


@pytest.fixture(scope="module")
def source(devstack) -> Iterator[str]:
    name = create_database("lg_pcompress_src")
    url = pg_url(name)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(SCHEMA)
    try:
        yield url
    finally:
        drop_database(name)


def _pg_dump(url: str, *switches: str) -> bytes:
    return subprocess.run(
        [str(pg_bin_dir() / "pg_dump"), "-Fc", *switches, url], check=True, capture_output=True
    ).stdout


def _sql(archive: bytes) -> list[bytes]:
    """What pg_restore reads out of `archive` (from a pipe, as a restore does), without the
    per-run random `\\restrict` key."""
    out = subprocess.run(
        [str(pg_bin_dir() / "pg_restore"), "-f", "-"], input=archive, check=True, capture_output=True
    ).stdout
    return [line for line in out.splitlines() if not line.startswith((b"\\restrict", b"\\unrestrict"))]


def _compress(archive: bytes, *, write_sizes: tuple[int, ...] = (1 << 20,), threads: int = 2) -> bytes:
    """`archive` fed to the compressor in writes of `write_sizes` (cycled), as pg_dump's pipe would."""
    out = io.BytesIO()
    with pg_compress.ParallelCompressor(out.write, threads=threads) as compressor:
        at, i = 0, 0
        while at < len(archive):
            n = write_sizes[i % len(write_sizes)]
            compressor.write(archive[at : at + n])
            at, i = at + n, i + 1
        compressor.close()
    return out.getvalue()


@pytest.fixture(scope="module")
def uncompressed(source) -> bytes:
    return _pg_dump(source, "--compress=0")


@pytest.fixture(scope="module")
def native(source) -> bytes:
    return _pg_dump(source)


def test_pg_restore_reads_the_same_data_as_from_pg_dumps_own_compression(uncompressed, native):
    compressed = _compress(uncompressed)
    toc = pg_archive.read_toc(compressed)
    assert compressed[toc.compression_at] == pg_compress.GZIP
    assert _sql(compressed) == _sql(native)
    # the same zlib level as pg_dump's: the size is pg_dump's within 1%
    assert abs(len(compressed) - len(native)) < len(native) / 100
    assert len(compressed) < len(uncompressed) / 2


def test_write_sizes_and_thread_counts_do_not_change_the_data(uncompressed, native):
    expected = _sql(native)
    # 1-byte writes through the header and TOC, then odd sizes that cut every kind of field
    odd = _compress(uncompressed, write_sizes=(1,) * 300 + (997, 5, 65537, 3))
    assert _sql(odd) == expected
    assert _sql(_compress(uncompressed, threads=1)) == expected
    assert _sql(_compress(uncompressed, threads=5)) == expected


def test_a_row_longer_than_a_piece_and_large_objects_survive(source, uncompressed, tmp_path):
    target = create_database("lg_pcompress_dst")
    try:
        path = tmp_path / "shop.dump"
        path.write_bytes(_compress(uncompressed, write_sizes=(4093,)))
        proc = subprocess.run(
            [str(pg_bin_dir() / "pg_restore"), "--exit-on-error", "-d", pg_url(target), str(path)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr
        query = (
            "SELECT (SELECT md5(string_agg(body, '' ORDER BY id)) FROM shop.long_rows), "
            "(SELECT count(*) FROM shop.orders), (SELECT count(*) FROM shop.empty), "
            "(SELECT md5(string_agg(md5(lo_get(oid)), ',' ORDER BY oid)) FROM pg_largeobject_metadata)"
        )
        with psycopg.connect(source) as a, psycopg.connect(pg_url(target)) as b:
            assert a.execute(query).fetchone() == b.execute(query).fetchone()
            long_bytes = b.execute("SELECT max(length(body)) FROM shop.long_rows").fetchone()
        assert long_bytes is not None and long_bytes[0] > pg_compress.PIECE
    finally:
        drop_database(target)


@pytest.mark.parametrize(
    "cut",
    [
        pytest.param(-3, id="inside the last block's end marker"),
        pytest.param(-40_000, id="inside a large object"),
        pytest.param(0.6, id="inside a table's rows"),
    ],
)
def test_an_archive_that_stops_inside_a_block_is_refused(uncompressed, cut):
    toc = pg_archive.read_toc(uncompressed)
    blocks_end = _blocks_end(uncompressed, toc)
    at = blocks_end + cut if isinstance(cut, int) else int(toc.end + (blocks_end - toc.end) * cut)
    with pytest.raises(BackupError, match=r"ended inside a data block.*nothing was committed"):
        _compress(uncompressed[:at])


def test_a_damaged_chunk_length_is_refused(uncompressed):
    toc = pg_archive.read_toc(uncompressed)
    damaged = bytearray(uncompressed)
    damaged[toc.end + 1 + 1 + toc.int_size] = 1  # the first chunk length's sign byte: negative
    with pytest.raises(BackupError, match="negative"):
        _compress(bytes(damaged))


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda native: native, id="already compressed by pg_dump"),
        pytest.param(lambda native: b"not an archive at all\n" * 100, id="not an archive"),
        pytest.param(lambda native: native[:20], id="shorter than a header"),
        pytest.param(lambda native: b"PGDMP\x01\x0e\x00" + native[8:], id="archive 1.14 (pg_dump 12-15)"),
    ],
)
def test_an_archive_this_module_does_not_rewrite_passes_through_byte_for_byte(native, make):
    raw = make(native)
    out = io.BytesIO()
    with pg_compress.ParallelCompressor(out.write, threads=2) as compressor:
        for at in range(0, len(raw), 65536):
            compressor.write(raw[at : at + 65536])
        compressor.close()
    assert out.getvalue() == raw and not compressor.compressed


def test_the_writers_error_stops_the_stream_and_the_threads(uncompressed):
    def failing(_data: bytes) -> None:
        raise OSError("S3 said no")

    compressor = pg_compress.ParallelCompressor(failing, threads=2)
    with pytest.raises(OSError, match="S3 said no"), compressor:
        compressor.write(uncompressed)
        compressor.close()
    assert compressor._pool._shutdown  # type: ignore[attr-defined]


def test_a_backup_runs_pg_dump_uncompressed_and_stores_pg_dumps_format(source, monkeypatch, tmp_path):
    """The product path: threads forced on, the stored object restores with the stock pg_restore."""
    monkeypatch.setenv(pg_compress.THREADS_ENV, "2")
    seen: list[list[str]] = []
    real = pg.stream_pg_dump

    def spy(args, env, writer, secrets):  # type: ignore[no-untyped-def]
        seen.append(list(args))
        return real(args, env, writer, secrets)

    monkeypatch.setattr(pg, "stream_pg_dump", spy)
    result = run_backup("postgres", on_demand=True, url=source)
    assert "--compress=0" in seen[0]
    store = BackupStore.from_settings()
    assert result.backup_id is not None
    with store.open_object("postgres", result.backup_id, f"{pg_connect.database_name(source)}.dump") as body:
        stored = body.read()
    toc = pg_archive.read_toc(stored)
    assert stored[toc.compression_at] == pg_compress.GZIP
    assert _sql(stored) == _sql(_pg_dump(source))
    assert result.manifest is not None and result.manifest.counts["shop.orders"] == 60000


def test_a_compress_level_the_config_chose_is_left_to_pg_dump(monkeypatch):
    monkeypatch.setenv(pg_compress.THREADS_ENV, "4")
    assert pg_compress.compress_threads(["--compress=9"], "18.1") == 0
    assert pg_compress.compress_threads(["--table=shop.*"], "18.1") == 4
    assert pg_compress.compress_threads([], "15.8") == 0  # archive 1.14: pg_dump compresses
    assert pg_compress.compress_threads([], "unknown") == 0


def _blocks_end(archive: bytes, toc: pg_archive.Toc) -> int:
    """Where the last data block ends (whatever pg_dump writes after it is not a block)."""
    n = toc.int_size
    at = toc.end

    def int_at(pos: int) -> tuple[int, int]:
        return int.from_bytes(archive[pos + 1 : pos + 1 + n], "little"), pos + 1 + n

    while at < len(archive) and archive[at] in (pg_compress.BLK_DATA, pg_compress.BLK_BLOBS):
        kind = archive[at]
        _, at = int_at(at + 1)
        while True:
            if kind == pg_compress.BLK_BLOBS:
                oid, at = int_at(at)
                if oid == 0:
                    break
            while True:
                length, at = int_at(at)
                if length == 0:
                    break
                at += length
            if kind == pg_compress.BLK_DATA:
                break
    return at


def test_the_cut_points_are_inside_blocks(uncompressed):
    """The refusal tests above cut where they say: blocks end before the archive's tail."""
    toc = pg_archive.read_toc(uncompressed)
    assert toc.end < _blocks_end(uncompressed, toc) <= len(uncompressed)


def test_usable_cpus_follow_lambdas_memory_share_and_the_cgroup_quota(monkeypatch, tmp_path):
    monkeypatch.delenv(pg_compress.THREADS_ENV, raising=False)
    monkeypatch.setattr(pg_compress.os, "sched_getaffinity", lambda _pid: {0, 1, 2, 3})
    monkeypatch.setattr(pg_compress, "CPU_MAX", tmp_path / "cpu.max")
    assert pg_compress.usable_cpus() == 4
    (tmp_path / "cpu.max").write_text("200000 100000\n")  # a 2-vCPU Fargate task
    assert pg_compress.usable_cpus() == 2 and pg_compress.compress_threads([], "18.1") == 2
    (tmp_path / "cpu.max").write_text("max 100000\n")
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024")  # about 0.58 vCPU
    assert pg_compress.compress_threads([], "18.1") == 0
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "3538")  # two vCPUs
    assert pg_compress.compress_threads([], "18.1") == 2
    monkeypatch.setenv(pg_compress.THREADS_ENV, "0")
    assert pg_compress.compress_threads([], "18.1") == 0
    monkeypatch.setenv(pg_compress.THREADS_ENV, "two")
    with pytest.raises(BackupError, match="whole number"):
        pg_compress.compress_threads([], "18.1")


def test_no_thread_is_left_behind(uncompressed):
    before = {t.name for t in threading.enumerate()}
    _compress(uncompressed)
    after = {t.name for t in threading.enumerate()}
    assert not {n for n in after - before if n.startswith("pg-deflate")}


def test_a_toc_longer_than_many_writes_is_still_found_and_compressed(devstack):
    name = create_database("lg_pcompress_wide")
    url = pg_url(name)
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(
                "DO $$ BEGIN FOR i IN 1..1500 LOOP "
                "EXECUTE format('CREATE TABLE wide_%s (id int PRIMARY KEY, note text "
                "DEFAULT %L)', i, repeat('x', 200)); "
                "EXECUTE format('INSERT INTO wide_%s VALUES (1)', i); END LOOP; END $$"
            )
        raw = _pg_dump(url, "--compress=0")
        toc = pg_archive.read_toc(raw)
        assert toc.end > 16 * 65536  # the TOC arrives over many writes
        compressed = _compress(raw, write_sizes=(65536,))
        assert compressed[pg_archive.read_toc(compressed).compression_at] == pg_compress.GZIP
        assert _sql(compressed) == _sql(_pg_dump(url))
    finally:
        drop_database(name)


def test_a_backup_whose_archive_is_not_recognised_is_stored_uncompressed_and_says_so(source, monkeypatch):
    """The archive passes through: the backup still commits a file pg_restore reads, and warns."""
    monkeypatch.setenv(pg_compress.THREADS_ENV, "2")
    monkeypatch.setattr(pg_archive, "SUPPORTED", ((1, 14),))  # as if pg_dump wrote a newer archive
    warnings: list[str] = []
    monkeypatch.setattr(pg.logger, "warning", lambda msg, *a, **k: warnings.append(msg))
    result = run_backup("postgres", on_demand=True, url=source)
    assert result.backup_id is not None
    with BackupStore.from_settings().open_object(
        "postgres", result.backup_id, f"{pg_connect.database_name(source)}.dump"
    ) as body:
        stored = body.read()
    assert stored.startswith(b"PGDMP") and _sql(stored) == _sql(_pg_dump(source))
    assert any("stored uncompressed" in w and "LASTGOOD_COMPRESS_THREADS=0" in w for w in warnings)
