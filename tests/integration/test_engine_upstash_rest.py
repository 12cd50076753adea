"""Upstash engine through the REST API (the devstack's Upstash-compatible front over Valkey).

Binary VALUES survive the REST dump (base64 replies) and `redis-cli --pipe`.
A binary key NAME cannot be sent back through JSON: the dump refuses it loudly
unless `skip_binary_keys` is set. Upstash 429/5xx fail the dump with a typed error.
"""

from __future__ import annotations

import io
import os
import secrets
import shutil
import subprocess
import threading
from pathlib import Path

import pytest
import valkey
from lastgood.core.errors import BackupError
from lastgood.engines import redis_dump, resp, upstash, upstash_rest
from lastgood.engines.base import EngineOptions

from tests.helpers.engines import (
    DirSource,
    DirTarget,
    DirWriter,
    assert_same,
    fill,
    gunzip,
    snapshot,
    valkey_server,
)

pytestmark = pytest.mark.devstack


@pytest.fixture
def rest(devstack):
    url, token = os.environ["UPSTASH_REDIS_REST_URL"], os.environ["UPSTASH_REDIS_REST_TOKEN"]
    client = valkey.Valkey.from_url(os.environ["REDIS_URL"])  # same key space as the REST front
    prefix = f"t_engine_upstash_{secrets.token_hex(3)}:".encode()
    yield url, token, client, prefix
    keys = list(client.scan_iter(match=prefix + b"*"))
    if keys:
        client.delete(*keys)
    client.close()


def _include(prefix: bytes) -> EngineOptions:
    return EngineOptions(include=[prefix.decode() + "*"], scan_count=50)


@pytest.mark.skipif(shutil.which("redis-cli") is None, reason="redis-cli (redis-tools) is not installed")
def test_rest_dump_with_binary_values_loads_with_redis_cli_pipe(rest, tmp_path: Path) -> None:
    url, token, client, prefix = rest
    # Given every type with binary values (no binary key names) behind the REST API
    fill(client, prefix, binary_key=False)
    before = snapshot(client, prefix)
    # When dumped through REST
    target = DirTarget(tmp_path / "backup")
    result = upstash.ENGINE.dump(url, target, options=_include(prefix), token=token)
    assert result.extra["protocol"] == "upstash-rest"
    assert result.extra["counts"]["keys"] == 8
    # Then redis-cli --pipe into an empty Valkey reproduces keys, values, types and TTLs
    with valkey_server(tmp_path / "empty") as empty_url:
        proc = subprocess.run(
            ["redis-cli", "-u", empty_url, "--pipe"],
            input=gunzip(target.path(redis_dump.DUMP_OBJECT)),
            capture_output=True,
            timeout=60,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        empty = valkey.Valkey.from_url(empty_url)
        assert_same(before, snapshot(empty, prefix))
        empty.close()


def test_a_binary_key_name_is_refused_through_rest_unless_skipped(rest, tmp_path: Path) -> None:
    url, token, client, prefix = rest
    client.set(prefix + b"ok", "1")
    client.set(prefix + b"\xff\xfe", "binary name")
    # Without the option: a loud failure naming the way out
    with pytest.raises(BackupError, match="rediss://"):
        upstash.ENGINE.dump(url, DirTarget(tmp_path / "a"), options=_include(prefix), token=token)
    # With skip_binary_keys: the rest is dumped and the skipped key is counted
    result = upstash.ENGINE.dump(
        url,
        DirTarget(tmp_path / "b"),
        options=_include(prefix).model_copy(update={"skip_binary_keys": True}),
        token=token,
    )
    assert result.extra["counts"]["keys"] == 1
    assert result.extra["skipped_binary_keys"] == 1


@pytest.mark.parametrize(
    ("mode", "error"), [("429", upstash_rest.UpstashRateLimited), ("500", upstash_rest.UpstashError)]
)
def test_upstash_rate_limit_or_server_error_fails_the_dump(
    rest, upstash_fault, tmp_path: Path, mode, error
) -> None:
    url, token, client, prefix = rest
    client.set(prefix + b"k", "v")
    target = DirTarget(tmp_path)
    with upstash_fault(mode), pytest.raises(error):
        upstash.ENGINE.dump(url, target, options=_include(prefix), token=token)
    assert target.objects == {}  # nothing completed: the orchestration aborts the upload


def test_restore_through_rest_with_force_rewrites_the_backups_keys(rest, tmp_path: Path) -> None:
    url, token, client, prefix = rest
    client.set(prefix + b"s", "v1", px=60_000)
    client.hset(prefix + b"h", mapping={"f": "1"})
    upstash.ENGINE.dump(url, DirTarget(tmp_path), options=_include(prefix), token=token)
    client.set(prefix + b"s", "changed")
    client.hset(prefix + b"h", "extra", "x")
    # The shared key space is not empty: force replays only the backup's keys (DEL first)
    result = upstash.ENGINE.restore(url, DirSource(tmp_path), force=True, token=token)
    assert result.counts["keys"] == 2
    assert client.get(prefix + b"s") == b"v1" and 0 < client.pttl(prefix + b"s") <= 60_000
    assert client.hgetall(prefix + b"h") == {b"f": b"1"}


@pytest.mark.parametrize("protocol", ["rest", "redis"])
def test_strings_rendered_by_the_probe_script_are_the_bytes_string_commands_writes(
    rest, tmp_path: Path, monkeypatch, protocol: str
) -> None:
    url, token, client, prefix = rest
    monkeypatch.setattr(redis_dump, "_STRING_CAP", 4096)
    # Given strings the probe script renders itself (binary, CRLF inside, empty, UTF-8 name,
    # with and without TTL, exactly at the cap) and one just over the cap (read by MGET)
    values = {
        prefix + b"bin": b"\xff\x00\r\n*2\r\n$3\r\n",
        prefix + b"empty": b"",
        prefix + "é-ünï".encode(): "text ✓".encode(),
        prefix + b"ttl": b"soon",
        prefix + b"at-cap": b"c" * 4096,
        prefix + b"over-cap": b"o" * 4097,
    }
    for key, value in values.items():
        client.set(key, value, px=3_600_000 if key.endswith(b"ttl") else None)
    where = url if protocol == "rest" else os.environ["REDIS_URL"]
    # When dumped
    target = DirTarget(tmp_path / protocol)
    result = upstash.ENGINE.dump(where, target, options=_include(prefix), token=token)
    assert result.extra["counts"]["string"] == len(values)
    # Then each key's commands are byte for byte what the Python fast path writes
    stream = gunzip(target.path(redis_dump.DUMP_OBJECT))
    commands = list(resp.iter_commands(io.BytesIO(stream)))
    expected = b""
    for cmd in commands:
        if cmd[0] == b"SET":
            pexpire = [c for c in commands if c[0] == b"PEXPIRE" and c[1] == cmd[1]]
            pttl = int(pexpire[0][2]) if pexpire else -1
            assert cmd[2] == values[cmd[1]]
            expected += redis_dump.string_commands(cmd[1], values[cmd[1]], pttl)
    assert sorted(stream.split(b"*2\r\n$3\r\nDEL\r\n")) == sorted(expected.split(b"*2\r\n$3\r\nDEL\r\n"))
    assert 3_590_000 < int(next(c for c in commands if c[0] == b"PEXPIRE")[2]) <= 3_600_000


def _gzip_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("gzip")]


@pytest.mark.skipif(shutil.which("redis-cli") is None, reason="redis-cli (redis-tools) is not installed")
def test_a_dump_of_many_compressor_buffers_loads_with_redis_cli_pipe(rest, tmp_path: Path) -> None:
    url, token, client, prefix = rest
    # Given ~1.5 MB of values: several of the sink's 256 KiB buffers, compressed on its worker
    # thread while the next SCAN page is read
    pipe = client.pipeline(transaction=False)
    for i in range(3000):
        pipe.set(prefix + b"s%d" % i, secrets.token_bytes(200) + b"x" * 300)
    for i in range(50):
        pipe.hset(prefix + b"h%d" % i, mapping={f"f{j}": secrets.token_hex(20) for j in range(40)})
    pipe.execute()
    before = snapshot(client, prefix)
    target = DirTarget(tmp_path / "backup")
    result = upstash.ENGINE.dump(
        url, target, options=EngineOptions(include=[prefix.decode() + "*"]), token=token
    )
    # Then the object is one whole gzip member of every key's commands, in the writes' order
    stream = gunzip(target.path(redis_dump.DUMP_OBJECT))
    assert len(stream) == result.extra["raw_bytes"] > 1_500_000
    assert target.objects[redis_dump.DUMP_OBJECT].writes > 3
    assert result.extra["counts"]["keys"] == 3050
    assert _gzip_threads() == []
    with valkey_server(tmp_path / "empty") as empty_url:
        proc = subprocess.run(
            ["redis-cli", "-u", empty_url, "--pipe"], input=stream, capture_output=True, timeout=60
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        empty = valkey.Valkey.from_url(empty_url)
        assert_same(before, snapshot(empty, prefix))
        empty.close()


def test_upstash_failing_mid_dump_stops_the_compressor_and_commits_nothing(
    rest, devstack, tmp_path: Path, monkeypatch
) -> None:
    url, token, client, prefix = rest
    pipe = client.pipeline(transaction=False)
    for i in range(2000):
        pipe.set(prefix + b"s%d" % i, secrets.token_bytes(300))
    pipe.execute()
    # Given an Upstash that starts answering 500 once the first compressed bytes are written
    # (the writes come from the compressor's thread, while the dump waits on the next page)
    real_write = DirWriter.write

    def write_then_break(self: DirWriter, data: bytes) -> int:
        devstack.fault("500")
        return real_write(self, data)

    monkeypatch.setattr(DirWriter, "write", write_then_break)
    target = DirTarget(tmp_path)
    try:
        with pytest.raises(upstash_rest.UpstashError):
            upstash.ENGINE.dump(
                url,
                target,
                options=EngineOptions(include=[prefix.decode() + "*"], scan_count=100),
                token=token,
            )
    finally:
        devstack.fault("ok")
    # Then the error reaches the caller, no compressor thread is left behind, nothing completed
    assert _gzip_threads() == []
    assert target.objects == {}
    assert list(tmp_path.rglob("*.partial"))  # only the aborted upload's stand-in
