"""Redis/Upstash engine: the commands written per key and how a restore replays them.

The key space is replaced by a recorder here (no server): what is checked is the
command stream itself. Real round trips are in tests/integration/test_engine_*.
"""

from __future__ import annotations

import gzip
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from lastgood.core.errors import RestoreError
from lastgood.engines import redis_dump, redis_keyspace, upstash
from lastgood.engines.resp import encode_commands

from tests.helpers.engines import DirSource


def test_a_string_with_ttl_is_deleted_set_and_given_its_remaining_ttl() -> None:
    assert redis_dump.key_commands(b"k", "string", b"\xff\x00", 1500) == [
        ["DEL", b"k"],
        ["SET", b"k", b"\xff\x00"],
        ["PEXPIRE", b"k", 1500],
    ]


def test_a_key_without_ttl_gets_no_expire() -> None:
    assert redis_dump.key_commands(b"k", "set", [b"a"], -1) == [["DEL", b"k"], ["SADD", b"k", b"a"]]


def test_big_collections_are_written_in_chunks() -> None:
    # Given a hash with 5 fields and a chunk size of 2
    flat = [x for i in range(5) for x in (b"f%d" % i, b"v%d" % i)]
    cmds = redis_dump.key_commands(b"h", "hash", flat, -1, chunk=2)
    # Then three HSETs carry all the pairs, in order
    assert [c[0] for c in cmds] == ["DEL", "HSET", "HSET", "HSET"]
    assert [a for c in cmds[1:] for a in c[2:]] == flat


def test_zset_pairs_are_turned_into_score_member_for_zadd() -> None:
    cmds = redis_dump.key_commands(b"z", "zset", [b"m1", b"1.5", b"m2", b"-3"], -1)
    assert cmds[1] == ["ZADD", b"z", b"1.5", b"m1", b"-3", b"m2"]


def test_stream_entries_keep_their_ids_and_an_empty_stream_is_recreated_empty() -> None:
    cmds = redis_dump.key_commands(b"s", "stream", [(b"1-1", [b"f", b"v"])], -1)
    assert cmds[1] == ["XADD", b"s", b"1-1", b"f", b"v"]
    empty = redis_dump.key_commands(b"e", "stream", [], -1)
    assert empty[1:] == [["XADD", b"e", "0-1", "_", "_"], ["XDEL", b"e", "0-1"]]


class RecordingKeyspace(redis_keyspace.Keyspace):
    def __init__(self, *, binary_safe: bool = True, dbsize: int = 0) -> None:
        self.binary_safe_args = binary_safe
        self.sent: list[list[Any]] = []
        self.batches = 0
        self.dbsize = dbsize

    def run(self, commands: Sequence[Sequence[Any]]) -> list[Any]:
        if list(commands[0]) == ["DBSIZE"]:
            return [self.dbsize]
        self.batches += 1
        self.sent += [list(c) for c in commands]
        return [1] * len(commands)

    def close(self) -> None:
        pass


def _backup(tmp_path: Path, commands: list[list[Any]]) -> DirSource:
    path = tmp_path / "redis" / "dump.resp.gz"
    path.parent.mkdir(parents=True)
    path.write_bytes(gzip.compress(encode_commands(commands)))
    return DirSource(tmp_path)


STREAM = [
    *redis_dump.key_commands(b"a:1", "string", b"x", 1000),
    *redis_dump.key_commands(b"a:2", "list", [b"1", b"2"], -1),
    *redis_dump.key_commands(b"b:1", "hash", [b"f", b"v"], -1),
]


def _patch(monkeypatch: pytest.MonkeyPatch, ks: RecordingKeyspace) -> None:
    monkeypatch.setattr(upstash, "open_keyspace", lambda url, token=None, timeout_s=30.0: ks)


def test_restore_replays_every_command_and_counts_keys_by_type(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    ks = RecordingKeyspace()
    _patch(monkeypatch, ks)
    result = upstash.ENGINE.restore("redis://127.0.0.1:1/0", _backup(tmp_path, STREAM))
    assert ks.sent == [[a if isinstance(a, bytes) else str(a).encode() for a in c] for c in STREAM]
    assert result.counts == {"keys": 3, "string": 1, "hash": 1, "list": 1, "set": 0, "zset": 0, "stream": 0}


def test_restore_only_replays_the_keys_matching_the_patterns(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    ks = RecordingKeyspace()
    _patch(monkeypatch, ks)
    result = upstash.ENGINE.restore("redis://127.0.0.1:1/0", _backup(tmp_path, STREAM), only=["a:*"])
    assert {c[1] for c in ks.sent} == {b"a:1", b"a:2"}
    assert result.counts["keys"] == 2


def test_restore_refuses_a_non_empty_target_without_force(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    ks = RecordingKeyspace(dbsize=4)
    _patch(monkeypatch, ks)
    with pytest.raises(RestoreError, match="not empty"):
        upstash.ENGINE.restore("redis://127.0.0.1:1/0", _backup(tmp_path, STREAM))
    assert ks.sent == []
    upstash.ENGINE.restore("redis://127.0.0.1:1/0", _backup(tmp_path / "again", STREAM), force=True)
    assert len(ks.sent) == len(STREAM)


def test_a_rest_restore_refuses_binary_arguments_before_writing_anything(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Given a backup whose second key has a binary value, and a REST (not binary-safe) target
    ks = RecordingKeyspace(binary_safe=False)
    _patch(monkeypatch, ks)
    stream = [*STREAM, *redis_dump.key_commands(b"c", "string", b"\xff\xfe", -1)]
    # When restoring, Then it is refused naming the reason, and nothing was sent
    with pytest.raises(RestoreError, match="binary argument"):
        upstash.ENGINE.restore("https://example.invalid", _backup(tmp_path, stream), token="t")
    assert ks.sent == []


def test_batches_end_only_at_key_boundaries(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # Given a list key written in many chunks (a re-sent batch must never duplicate items)
    ks = RecordingKeyspace()
    _patch(monkeypatch, ks)
    big = redis_dump.key_commands(b"l", "list", [b"%d" % i for i in range(3000)], -1, chunk=2)
    stream = [*big, *redis_dump.key_commands(b"k", "string", b"v", -1)]
    upstash.ENGINE.restore("redis://127.0.0.1:1/0", _backup(tmp_path, stream))
    # Then the whole list went in one batch, the next key in another
    assert ks.batches == 2


def test_a_corrupt_stream_is_a_restore_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _patch(monkeypatch, RecordingKeyspace())
    path = tmp_path / "redis" / "dump.resp.gz"
    path.parent.mkdir(parents=True)
    path.write_bytes(gzip.compress(b"*2\r\n$3\r\nDEL\r\n"))
    with pytest.raises(RestoreError, match="unreadable RESP stream"):
        upstash.ENGINE.restore("redis://127.0.0.1:1/0", DirSource(tmp_path))


def test_rest_urls_need_a_token_and_unknown_schemes_are_refused() -> None:
    from lastgood.core.errors import ConfigError

    with pytest.raises(ConfigError, match="token"):
        upstash.open_keyspace("https://example.invalid")
    with pytest.raises(ConfigError, match="redis://"):
        upstash.open_keyspace("ftp://x")


@pytest.mark.parametrize("value, pttl", [(b"\xff\x00\r\n", 1500), (b"", -1), (b"v" * 70_000, 0)])
def test_the_string_fast_path_writes_the_same_bytes_as_key_commands(value: bytes, pttl: int) -> None:
    expected = encode_commands(redis_dump.key_commands(b"k\xc3\xa9", "string", value, pttl))
    assert redis_dump.string_commands(b"k\xc3\xa9", value, pttl) == expected
