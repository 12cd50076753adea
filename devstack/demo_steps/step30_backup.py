"""Demo step 30: back up every source (manifest written last) and list the backups."""

from __future__ import annotations

import json
from typing import Any

SOURCES = ("postgres", "mongodb", "upstash")


def run(ctx: Any) -> None:
    ctx.section("Backups: stream each source to S3 (SHA-256 per object, SSE-KMS, manifest last)")
    failed: list[str] = []
    for source in SOURCES:
        proc = ctx.lastgood("backup", "--source", source, "--json", check=False)
        if proc.returncode != 0:
            ctx.summary(f"backup {source}: FAILED (exit {proc.returncode}): {proc.stderr.strip()[-300:]}")
            failed.append(source)
            continue
        manifest = json.loads(proc.stdout)
        totals = manifest["totals"]
        objects = ", ".join(
            f"{o['key']} ({o['bytes']} B, sha256 {o['sha256'][:12]}…)" for o in manifest["objects"][:4]
        )
        more = f" +{len(manifest['objects']) - 4} more" if len(manifest["objects"]) > 4 else ""
        ctx.summary(
            f"backup {source}: {manifest['backup_id']} {manifest['engine']} {manifest.get('server_version')}, "
            f"{totals['objects']} object(s), {totals['bytes']} bytes, {totals['count']} records, "
            f"{manifest['duration_s']:.2f}s — {objects}{more}"
        )
    ctx.section("Duplicate scheduled invocation for one slot is skipped (idempotent per slot)")
    slot = "2025-01-29T02:00:00Z"
    first = ctx.lastgood("backup", "--source", "postgres", "--slot", slot, check=False)
    second = ctx.lastgood("backup", "--source", "postgres", "--slot", slot, check=False)
    ctx.summary(
        f"slot {slot}: first run → {first.stdout.strip().splitlines()[0] if first.stdout else first.stderr.strip()}"
    )
    ctx.summary(f"slot {slot}: second run → {second.stdout.strip()}")
    listing = ctx.lastgood("list")
    for line in listing.stdout.strip().splitlines()[:8]:
        ctx.summary(line)
    if failed:
        raise RuntimeError(f"backup failed for: {', '.join(failed)}")
