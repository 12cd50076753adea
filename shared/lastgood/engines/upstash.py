"""Upstash Redis / Redis engine: probe, dump, restore, counts, emptiness and wipe.

The REST protocol is spoken by `lastgood.engines.upstash_rest.UpstashRest`,
the key space behind either protocol is `lastgood.engines.redis_keyspace`, the
dump is `redis_dump` and the restore `redis_restore`.
Backups (`ENGINE.dump`) walk the key space with SCAN (never KEYS), pipelining
TYPE + PTTL and then one read per key (GET, HGETALL, LRANGE, SMEMBERS,
ZRANGE WITHSCORES, XRANGE), and write a gzipped RESP command stream
(`redis/dump.resp.gz`): per key `DEL`, the typed writes in chunks, then
`PEXPIRE <remaining ms>`. Replaying it is idempotent and `redis-cli --pipe`
loads it into any Redis/Valkey. An `https://` URL speaks the Upstash REST
API (token required); a `redis://`/`rediss://` URL (Upstash also offers one)
uses the Redis protocol through the `valkey` client.

Known limits, by design of the REST API (JSON cannot carry arbitrary bytes in
a request): through REST a key NAME that is not valid UTF-8 can be listed but
not read, and a restore cannot send binary arguments. Binary values dump fine
through REST (replies are base64). The dump refuses such keys loudly unless
the source option `skip_binary_keys` is set (then they are counted in
`extra.skipped_binary_keys`); a REST restore checks the whole stream first
and refuses before writing anything. Use the database's `rediss://` endpoint
for fully binary key spaces. Stream consumer groups are not backed up.
"""

from __future__ import annotations

from typing import Any

from lastgood.core.errors import ConfigError, SourceUnavailable
from lastgood.core.redact import redact_text
from lastgood.engines import redis_dump, redis_restore
from lastgood.engines.base import (
    DumpResult,
    DumpTarget,
    EngineOptions,
    ObjectSource,
    ProbeResult,
    ProgressFn,
    RestoreResult,
    ServerIdentity,
    SizeEstimate,
    Stopwatch,
)
from lastgood.engines.redis_keyspace import (
    TYPES,
    dbsize,
    is_rest_url,
    is_utf8,
    one,
    open_keyspace,
    reply_text,
)
from lastgood.engines.upstash_rest import UpstashCommandError, UpstashError, UpstashRest


class UpstashEngine:
    """The Engine protocol for Upstash (REST, https://) and Redis/Valkey (redis://, rediss://)."""

    name = "upstash"

    def probe(self, url: str, *, timeout_s: float, token: str | None = None) -> ProbeResult:
        """PING through REST (https) or the Redis protocol; never raises."""
        if is_rest_url(url):
            return self._probe_rest(url, timeout_s=timeout_s, token=token)
        watch = Stopwatch()
        try:
            ks = open_keyspace(url, timeout_s=timeout_s)
            try:
                reply = one(ks, "PING")
            finally:
                ks.close()
            ok = reply in (b"PONG", "PONG", True)
            return ProbeResult("redis", ok, watch.ms, None if ok else f"unexpected PING reply {reply!r}")
        except (SourceUnavailable, ConfigError) as exc:
            return ProbeResult("redis", False, watch.ms, f"{type(exc).__name__}: {exc}"[:300])

    def _probe_rest(self, url: str, *, timeout_s: float, token: str | None) -> ProbeResult:
        watch = Stopwatch()
        try:
            with UpstashRest(url, token or "", timeout_s=timeout_s) as rest:
                reply = rest.command("PING")
            ok = reply in (b"PONG", "PONG")
            return ProbeResult("upstash", ok, watch.ms, None if ok else f"unexpected PING reply {reply!r}")
        except (UpstashError, ValueError) as exc:
            error = f"{type(exc).__name__}: {redact_text(str(exc), (token or '',))}"
            return ProbeResult("upstash", False, watch.ms, error[:300])

    def dump(
        self, url: str, target: DumpTarget, *, options: EngineOptions, token: str | None = None
    ) -> DumpResult:
        """SCAN the key space and stream it as a gzipped RESP command stream."""
        ks = open_keyspace(url, token=token)
        try:
            return redis_dump.dump(ks, target, options)
        finally:
            ks.close()

    def restore(
        self,
        url: str,
        source: ObjectSource,
        *,
        only: list[str] | None = None,
        force: bool = False,
        token: str | None = None,
        progress: ProgressFn | None = None,
    ) -> RestoreResult:
        """Replay the backup's RESP stream into a Redis/Valkey (redis://) or Upstash (REST) target."""
        objects = redis_restore.resp_objects(source)
        ks = open_keyspace(url, token=token)
        try:
            return redis_restore.restore(ks, source, objects, only=only, force=force, progress=progress)
        finally:
            ks.close()

    def is_empty(self, url: str, *, token: str | None = None) -> bool:
        ks = open_keyspace(url, token=token)
        try:
            return dbsize(ks) == 0
        finally:
            ks.close()

    def counts(self, url: str, *, token: str | None = None) -> dict[str, int]:
        """`{"keys": n, "string": …, "hash": …}` over the whole key space (SCAN + TYPE)."""
        out: dict[str, int] = {"keys": 0, **dict.fromkeys(TYPES, 0)}
        ks = open_keyspace(url, token=token)
        try:
            cursor: Any = b"0"
            seen: set[bytes] = set()
            while True:
                cursor, keys = one(ks, "SCAN", cursor, "COUNT", 1000)
                keys = [k for k in keys if k not in seen]
                seen.update(keys)
                if not ks.binary_safe_args:
                    keys = [k for k in keys if is_utf8(k)]
                for kind in ks.run([["TYPE", k] for k in keys]):
                    name = reply_text(kind)
                    if name in out:
                        out["keys"] += 1
                        out[name] += 1
                if cursor in (b"0", 0, "0"):
                    break
        finally:
            ks.close()
        return out

    def wipe(self, url: str, *, token: str | None = None) -> None:
        """FLUSHDB: empty the URL's key space (scratch drills, migration rollback)."""
        ks = open_keyspace(url, token=token)
        try:
            one(ks, "FLUSHDB")
        finally:
            ks.close()

    def identity(self, url: str, token: str | None = None) -> ServerIdentity:
        """`INFO server` `run_id` + the db number (REST: db 0), with the endpoint as an alias (so a
        restarted server is still recognised); where INFO has no run_id (an Upstash REST database
        may not report one), the URL's host:port normalised."""
        ks = open_keyspace(url, token=token, timeout_s=5.0)
        try:
            try:
                info = reply_text(one(ks, "INFO", "server"))
            except UpstashCommandError:  # INFO not offered: the endpoint is all there is
                info = ""
            db, endpoints = ks.db, list(ks.endpoints)
            over = " over the Upstash REST API" if ks.kind == "upstash-rest" else ""
        finally:
            ks.close()
        run_id = next(
            (line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("run_id:")), ""
        )
        aliases = tuple(f"addr:{e}" for e in endpoints)
        if run_id:
            return ServerIdentity(
                engine="redis",
                server_id=f"redis-run:{run_id}",
                database=str(db),
                method=f"run_id from INFO server{over}",
                aliases=aliases,
            )
        return ServerIdentity(
            engine="redis",
            server_id=aliases[0],
            database=str(db),
            method=f"URL host:port normalised (INFO server{over} reports no run_id)",
            aliases=aliases,
        )

    def estimate_size(
        self, url: str, *, token: str | None = None, database: str | None = None
    ) -> SizeEstimate:
        from lastgood.engines.sizes import redis_size  # DBSIZE + INFO memory (lastgood.engines.sizes)

        return redis_size(url, token)


ENGINE = UpstashEngine()
