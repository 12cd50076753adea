"""Upstash: lastgood backup vs a raw SCAN + pipelined GET through the same REST front."""

from __future__ import annotations

from typing import Any

from bench.common import Context, best_of, scaled
from bench.data import generate_redis

KEYS = 20_000
SCAN_COUNT = "500"  # the engine's default SCAN page (option scan_count): same round trips per key
ROUNDS = 5  # cheap (under a second a side at 1x): more rounds, less noise in the best of each


def run(ctx: Context) -> None:
    from lastgood.backups.run import run_backup
    from lastgood.engines.upstash_rest import UpstashRest

    keys = scaled(KEYS)
    generate_redis(ctx.env["REDIS_URL"], keys)
    rest = UpstashRest(ctx.env["UPSTASH_REDIS_REST_URL"], ctx.env["UPSTASH_REDIS_REST_TOKEN"], timeout_s=30)

    def raw() -> int:
        """What a minimal dumper must do: SCAN the key space, read each value in one pipeline per batch."""
        cursor: Any = "0"
        n = 0
        while True:
            reply = rest.command("SCAN", cursor, "COUNT", SCAN_COUNT)
            assert isinstance(reply, list)
            cursor, batch = reply[0], reply[1]
            assert isinstance(batch, list)
            if batch:
                rest.pipeline([["GET", k] for k in batch if isinstance(k, bytes)])
                n += len(batch)
            if cursor in (b"0", 0, "0"):
                return n

    def ours() -> Any:
        return run_backup("upstash", on_demand=True, store=ctx.store)

    try:
        (native_s, n), (ours_s, result) = best_of(ROUNDS, raw, ours)
    finally:
        rest.close()
    ratio = native_s / ours_s
    stored = result.manifest.totals.bytes if result.manifest else 0
    ctx.results.add(
        "Upstash backup vs raw SCAN + pipelined GET (same REST front)",
        ratio,
        "×",
        "≥ 0.8",
        ratio >= 0.8,
        f"{n} keys, SCAN COUNT {SCAN_COUNT} on both: raw {native_s:.2f}s, lastgood {ours_s:.2f}s (one EVAL per page also reads type + TTL and renders small strings as RESP "
        f"server-side; gzip {stored / 1e6:.1f} MB → S3; best of {ROUNDS})",
        "upstash",
    )
