"""Redis engine (redis:// through the valkey client) against the devstack Valkey.

Must show: the backup, gunzipped and fed to `redis-cli --pipe` against an EMPTY
Valkey, reproduces every key, value (a non-UTF-8 one too), type and TTL.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from pathlib import Path

import pytest
import valkey
from lastgood.core.errors import RestoreError
from lastgood.engines import redis_dump, redis_keyspace, upstash
from lastgood.engines.base import EngineOptions

from tests.helpers.engines import DirSource, DirTarget, assert_same, fill, gunzip, snapshot, valkey_server

pytestmark = pytest.mark.devstack


@pytest.fixture
def source(devstack):
    url = os.environ["REDIS_URL"]
    client = valkey.Valkey.from_url(url)
    prefix = f"t_engine_redis_{secrets.token_hex(3)}:".encode()
    yield url, client, prefix
    keys = list(client.scan_iter(match=prefix + b"*"))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.mark.skipif(shutil.which("redis-cli") is None, reason="redis-cli (redis-tools) is not installed")
def test_redis_cli_pipe_into_an_empty_valkey_reproduces_keys_values_types_ttls(
    source, tmp_path: Path
) -> None:
    url, client, prefix = source
    # Given keys of every type, binary values, a binary key name and TTLs
    fill(client, prefix)
    before = snapshot(client, prefix)
    # When the engine dumps them
    target = DirTarget(tmp_path / "backup")
    result = upstash.ENGINE.dump(url, target, options=EngineOptions(include=[prefix.decode() + "*"]))
    assert result.extra["counts"] == {
        "keys": 9,
        "string": 4,
        "hash": 1,
        "list": 1,
        "set": 1,
        "zset": 1,
        "stream": 1,
    }
    assert target.counts == {redis_dump.DUMP_OBJECT: 9}
    assert result.server_version.split()[0] in ("valkey", "redis")
    # And the gunzipped stream is fed to redis-cli --pipe against an empty Valkey
    with valkey_server(tmp_path / "empty") as empty_url:
        proc = subprocess.run(
            ["redis-cli", "-u", empty_url, "--pipe"],
            input=gunzip(target.path(redis_dump.DUMP_OBJECT)),
            capture_output=True,
            timeout=60,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert b"errors: 0" in proc.stdout
        # Then every key, value, type and TTL is there
        empty = valkey.Valkey.from_url(empty_url)
        assert_same(before, snapshot(empty, prefix))
        empty.close()


def test_engine_restore_into_an_empty_valkey_and_refusal_when_not_empty(source, tmp_path: Path) -> None:
    url, client, prefix = source
    fill(client, prefix)
    before = snapshot(client, prefix)
    upstash.ENGINE.dump(
        url, DirTarget(tmp_path / "backup"), options=EngineOptions(include=[prefix.decode() + "*"])
    )
    with valkey_server(tmp_path / "target") as target_url:
        assert upstash.ENGINE.is_empty(target_url)
        result = upstash.ENGINE.restore(target_url, DirSource(tmp_path / "backup"))
        target = valkey.Valkey.from_url(target_url)
        assert_same(before, snapshot(target, prefix))
        assert result.counts["keys"] == 9
        assert upstash.ENGINE.counts(target_url) == result.counts
        # A second restore is refused (target not empty) unless forced; forced, it is idempotent
        with pytest.raises(RestoreError, match="not empty"):
            upstash.ENGINE.restore(target_url, DirSource(tmp_path / "backup"))
        target.rpush(prefix + b"list", "stray")
        upstash.ENGINE.restore(target_url, DirSource(tmp_path / "backup"), force=True)
        assert_same(before, snapshot(target, prefix))
        # wipe empties the target key space
        upstash.ENGINE.wipe(target_url)
        assert upstash.ENGINE.is_empty(target_url)
        target.close()


@pytest.mark.parametrize("trigger", ["EVAL", "MGET"])
def test_a_key_deleted_during_the_scan_is_skipped_and_counted(
    source, tmp_path: Path, monkeypatch, trigger: str
) -> None:
    url, client, prefix = source
    client.set(prefix + b"keep", "1")
    client.set(prefix + b"gone", "2")
    if trigger == "MGET":  # values too large for the probe script are read after it
        monkeypatch.setattr(redis_dump, "_STRING_CAP", -1)
    # Given a key that disappears between SCAN and the probe, or between the probe and its
    # read (a real race, made deterministic)
    original = redis_keyspace.RedisKeyspace.run

    def run(self, commands):
        if any(cmd[0] == trigger for cmd in commands):
            client.delete(prefix + b"gone")
        return original(self, commands)

    monkeypatch.setattr(redis_keyspace.RedisKeyspace, "run", run)
    result = upstash.ENGINE.dump(
        url, DirTarget(tmp_path), options=EngineOptions(include=[prefix.decode() + "*"])
    )
    assert result.extra["counts"]["keys"] == 1
    assert result.extra["vanished"] == 1


def test_without_scripting_the_dump_probes_with_type_and_pttl(source, tmp_path: Path, monkeypatch) -> None:
    url, client, prefix = source
    fill(client, prefix)
    full = upstash.ENGINE.dump(
        url, DirTarget(tmp_path / "a"), options=EngineOptions(include=[prefix.decode() + "*"])
    )
    # Given a server that refuses EVAL (scripting disabled, an ACL, a cluster's CROSSSLOT)
    original = redis_keyspace.RedisKeyspace.run

    def run(self, commands):
        evals = [i for i, cmd in enumerate(commands) if cmd[0] == "EVAL"]
        replies = original(self, [c for c in commands if c[0] != "EVAL"])
        for i in evals:
            replies.insert(i, valkey.exceptions.ResponseError("NOPERM no scripts"))
        return replies

    monkeypatch.setattr(redis_keyspace.RedisKeyspace, "run", run)
    result = upstash.ENGINE.dump(
        url, DirTarget(tmp_path / "b"), options=EngineOptions(include=[prefix.decode() + "*"])
    )
    assert result.extra["counts"] == full.extra["counts"]
    assert result.extra["counts"]["keys"] == 9
