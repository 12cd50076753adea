"""A Redis key space behind one face: the Upstash REST API (https) or the Redis protocol (redis://).

`open_keyspace(url)` picks the protocol from the URL. `Keyspace.run` pipelines
commands and returns one item per command: the raw reply (bytes, int, None or
nested lists, the same shapes through REST and through `valkey`) or the
server's error as an exception. Through REST, arguments must be UTF-8
(`binary_safe_args` is False).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from lastgood.core.errors import ConfigError, SourceUnavailable
from lastgood.core.redact import redact_text
from lastgood.core.settings import get_settings
from lastgood.engines.base import endpoint_names, require_tls
from lastgood.engines.upstash_rest import Arg, UpstashCommandError, UpstashRest

# The key types a dump reads and a restore writes.
TYPES = ("string", "hash", "list", "set", "zset", "stream")


class RedisUnavailable(SourceUnavailable):
    """A `redis://` source or target failed (connection, timeout, protocol)."""


class Keyspace:
    """What dump/restore need from a key space; REST and Redis protocol behind one face.

    `run` pipelines commands and returns one item per command: the raw reply
    (bytes, int, None or nested lists) or the server's error as an exception.
    """

    kind = "?"
    binary_safe_args = True
    db = 0  # the logical database (db number) the commands run in
    endpoints: list[str] = []  # canonical host:port names (`base.endpoint_names`)

    def run(self, commands: Sequence[Sequence[Arg]]) -> list[Any]:
        raise NotImplementedError

    def close(self) -> None:  # pragma: no cover - overridden
        pass


class RestKeyspace(Keyspace):
    kind = "upstash-rest"
    binary_safe_args = False

    def __init__(self, url: str, token: str, timeout_s: float) -> None:
        self.rest = UpstashRest(url, token, timeout_s=timeout_s)
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        self.endpoints = endpoint_names(parts.hostname, port)  # a REST database is always db 0

    def run(self, commands: Sequence[Sequence[Arg]]) -> list[Any]:
        return list(self.rest.pipeline(commands, raise_on_error=False))

    def close(self) -> None:
        self.rest.close()


class RedisKeyspace(Keyspace):
    kind = "redis"

    def __init__(self, url: str, timeout_s: float) -> None:
        import valkey

        require_tls(
            url,
            secure=url.startswith("rediss://"),
            allow_insecure=get_settings().allow_insecure_transport,
            what="Redis",
        )
        self._url = url
        self._errors: tuple[type[BaseException], ...] = (valkey.exceptions.ValkeyError, OSError)
        self._client: Any = valkey.Valkey.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=min(timeout_s, 5.0)
        )
        # Raw replies, the same shapes the REST API gives: no per-command parsing.
        self._client.response_callbacks.clear()  # this client's own copy
        where = self._client.connection_pool.connection_kwargs
        self.db = int(where.get("db") or 0)
        self.endpoints = (
            [f"unix:{where['path']}"]
            if where.get("path")
            else endpoint_names(where.get("host"), where.get("port"))
        )

    def run(self, commands: Sequence[Sequence[Arg]]) -> list[Any]:
        if not commands:
            return []
        pipe = self._client.pipeline(transaction=False)
        for cmd in commands:
            pipe.execute_command(*cmd)
        try:
            replies: list[Any] = pipe.execute(raise_on_error=False)
        except self._errors as exc:
            raise RedisUnavailable(
                f"Redis {type(exc).__name__}: {redact_text(str(exc), (self._url,))}"[:300]
            ) from None
        return replies

    def close(self) -> None:
        self._client.close()


def is_rest_url(url: str) -> bool:
    return url.startswith(("https://", "http://"))


def open_keyspace(url: str, *, token: str | None = None, timeout_s: float = 30.0) -> Keyspace:
    """A key space client for an Upstash REST URL (https) or a Redis URL (redis/rediss)."""
    if is_rest_url(url):
        if not token:
            raise ConfigError("an Upstash REST URL needs its token (token_secret in the source config)")
        return RestKeyspace(url, token, timeout_s)
    if url.startswith(("redis://", "rediss://", "unix://")):
        return RedisKeyspace(url, timeout_s)
    raise ConfigError("Redis/Upstash URL must start with https:// (Upstash REST) or redis:// / rediss://")


def one(ks: Keyspace, *cmd: Arg) -> Any:
    """One command's reply; the server's error raises `UpstashCommandError`."""
    reply = ks.run([cmd])[0]
    if isinstance(reply, Exception):
        raise UpstashCommandError(f"{cmd[0]!s}: {reply}")
    return reply


def dbsize(ks: Keyspace) -> int:
    return int(one(ks, "DBSIZE"))


def is_utf8(key: bytes) -> bool:
    try:
        key.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def match_any(key: bytes, patterns: list[bytes]) -> bool:
    text = key.decode("latin-1")
    return any(fnmatch.fnmatchcase(text, p.decode("latin-1")) for p in patterns)


def reply_text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)
