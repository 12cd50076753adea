"""Resilient KV: Upstash Redis as the primary, MongoDB as a live mirror and fallback (seed 001).

What a caller gets (`get_kv()` returns the process-wide instance)::

    kv = get_kv()
    kv.set("session:42", {"user": 42}, ttl=3600)
    kv.get("session:42")                      # -> {"user": 42}
    kv.hset("user:42", {"plan": "pro"}); kv.hgetall("user:42"); kv.incr("visits")

Values are JSON (see "Arguments" below); Redis holds their JSON text, so
other Redis clients see readable values and `INCR` works on numbers.

Write path. Every write goes to Upstash first and is then mirrored, inside the
call, to the MongoDB collection `kv_mirror` (one document per key, see
`lastgood.kv.document.MirrorDoc`) with a short timeout; a mirror document's
version only goes up (an older write never replaces a newer one). A failed mirror write never fails the
user's write: the key is recorded as *dirty* (in memory and in the KV hash
`lastgood:kv_dirty`, field = key, value = the write's version) and repaired
from KV by the next resync. A run of mirror failures opens a separate mirror
breaker, so a dead MongoDB costs one timeout, not one per write.

Failure detection. HTTP 429, 5xx, timeouts and connection errors from Upstash
open the circuit breaker (warnings `KV rate limit hit, switching to MongoDB` /
`KV unavailable`). While it is open, reads and writes go to MongoDB and written
documents carry `needs_resync: true`. After the cool-down (`KV_BREAKER_COOLDOWN_S`)
the next call is a half-open probe: it PINGs Upstash and copies pending keys
back (bounded by `KV_RECOVER_BUDGET_S`). Only a completed resync closes the
breaker (a lone successful KV call does not), and it closes only once every
write pending in MongoDB since the outage began is in KV, writes landing
during the copy included (`lastgood.kv.routing`, `lastgood.kv.resync`): a
read after recovery never sees an older value than an acknowledged write.
Both stores down → `KVUnavailable`; so is a fallback read of a key whose newer
value only KV holds (its mirror write failed), rather than a stale value.

Arguments. Keys and hash field names must be `str`; values must be JSON
(None, bool, int, finite float, str, lists, dicts with `str` keys); counts and
seconds `int`. Anything else (a dict such as `{"$regex": ...}`, a list, None,
bytes) is a `TypeError` before any I/O (`lastgood.kv.validate`), and every
MongoDB query names its key as an exact string (`lastgood.kv.document.key_filter`).

Resync (`ResilientKV.resync`, run by the scheduled health check and by
`lastgood kv resync`): documents with `needs_resync` are copied to KV in
version order (remaining TTL kept; expired or deleted keys are removed from KV),
logging `Synced <key> from MongoDB to KV`; then dirty keys are copied from KV
to MongoDB. "Newer version wins": a dirty key whose KV version is newer than
the pending document is not overwritten by it.

Where the breaker state lives. Breakers are module-level, one per Upstash URL,
so warm invocations of one Lambda process share them; each new process starts
closed. What must survive a process is persisted: `needs_resync` flags in
MongoDB and the dirty set in KV. A fresh process checks MongoDB once for
pending documents before its first KV call and resyncs them first, and the
scheduled health run resyncs whatever any process left behind.

Limits (documented, not hidden): while one process serves from MongoDB (its
breaker open), another process whose KV calls succeed reads KV, so it sees
the first one's outage writes only after a resync (the half-open probe after
the cool-down, or the next scheduled health run). The mirror is written after the KV write, so
two processes writing the same key at the same moment can leave the mirror one
version behind KV until that key's next write; read-modify-write operations in
MongoDB mode (hset/incr/expire) use an optimistic version check and retry.
A request that timed out against a hanging Upstash may still be applied by it
later; the write was served from MongoDB meanwhile and the resync copies that
value again, but a late-applied request landing after the resync is not undone.

Modules, by responsibility:

- `client`   — `ResilientKV` (the public API), `get_kv`, `reset_kv`
- `breaker`  — `CircuitBreaker`, `BreakerState`, the per-URL `breaker_for` registry
- `document` — `MirrorDoc` (the one `kv_mirror` document model) and `key_filter`
- `validate` — the argument checks every `ResilientKV` method runs first
- `mirror`   — `MirrorStore` (every MongoDB operation, dirty-key tracking)
- `fallback` — the calls served from MongoDB while KV is unreachable
- `resync`   — `ResyncReport` and the copy-back after an outage
- `routing`  — `Router`: KV or MongoDB for each call, and when the breaker closes
- `status`   — `health_status` (the health-report entry, metrics, audit)
- `codec`    — JSON value encoding and the Upstash types the others use

Importing this package does no I/O; `get_kv()` builds the clients on first use.
"""

from lastgood.kv.client import ResilientKV, get_kv, reset_kv
from lastgood.kv.status import health_status

__all__ = ["ResilientKV", "get_kv", "health_status", "reset_kv"]
