"""Prune: retention planning for 100k backups; S3 requests to delete 10,000 objects through `prune_source`."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.common import Context, timed

PLAN_BACKUPS = 100_000
REMOVED_BACKUPS = 100
OBJECTS_PER_BACKUP = 100  # manifest + 99 data objects → 10,000 objects removed
SOURCE = "bench-prune"


def run(ctx: Context) -> None:
    _planning(ctx)
    _deleting(ctx)


def _planning(ctx: Context) -> None:
    from lastgood.backups.retention import BackupInfo, RetentionPolicy, plan

    now = datetime(2026, 1, 1, tzinfo=UTC)
    backups = [BackupInfo(f"b{i}", now - timedelta(minutes=5 * i)) for i in range(PLAN_BACKUPS)]
    policy = RetentionPolicy.from_dict(
        {"keep_hourly": 24, "keep_daily": 30, "keep_weekly": 13, "keep_monthly": 12}
    )
    seconds, result = timed(lambda: plan(backups, policy, now, force=True))
    ctx.results.add(
        f"Prune planning for {PLAN_BACKUPS // 1000}k backups",
        seconds * 1000,
        " ms",
        "reported (no goal)",
        None,
        f"seed-003 GFS policy over one backup every 5 min (~347 days): kept {len(result.keep)}, "
        f"removed {len(result.remove)}, a reason per backup",
        "prune",
    )


def _deleting(ctx: Context) -> None:
    from lastgood.backups.keys import manifest_key, object_key
    from lastgood.backups.manifest import BackupManifest, ObjectEntry, new_backup_id
    from lastgood.backups.prune import prune_source
    from lastgood.backups.retention import RetentionPolicy

    store = ctx.store
    now = datetime.now(UTC).replace(microsecond=0)
    puts: list[tuple[str, bytes]] = []
    for b in range(REMOVED_BACKUPS + 1):  # the newest one is kept
        moment = now - timedelta(hours=b + 1)
        backup_id = new_backup_id(moment)
        entries = [
            ObjectEntry(key=f"part-{i:03d}.bin", bytes=1, sha256="0" * 64)
            for i in range(OBJECTS_PER_BACKUP - 1)
        ]
        manifest = BackupManifest.build(
            backup_id=backup_id,
            source=SOURCE,
            engine="postgres",
            started_at=moment,
            finished_at=moment,
            objects=entries,
        )
        for entry in entries:
            puts.append((object_key(SOURCE, backup_id, entry.key), b"x"))
        puts.append((manifest_key(SOURCE, backup_id), manifest.model_dump_json().encode()))
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda kv: store.s3.put_object(Bucket=store.bucket, Key=kv[0], Body=kv[1]), puts))

    calls: Counter[str] = Counter()

    def count(event_name: str, **_: Any) -> None:
        calls[event_name.rsplit(".", 1)[-1]] += 1

    store.s3.meta.events.register("before-call.s3", count)
    try:
        seconds, result = timed(
            lambda: prune_source(
                SOURCE, store=store, policy=RetentionPolicy.from_dict({"keep_last": 1}), force=True
            )
        )
    finally:
        store.s3.meta.events.unregister("before-call.s3", count)
    deletes = calls["DeleteObjects"]
    others = ", ".join(f"{name} {n}" for name, n in sorted(calls.items()) if name != "DeleteObjects")
    ok = deletes <= 10 and result.deleted_keys == REMOVED_BACKUPS * OBJECTS_PER_BACKUP and not result.failed
    ctx.results.add(
        f"DeleteObjects requests to prune {REMOVED_BACKUPS * OBJECTS_PER_BACKUP:,} objects",
        float(deletes),
        "",
        "≤ 10",
        ok,
        f"prune_source removed {len(result.plan.remove)} backups / {result.deleted_keys} objects in "
        f"{seconds:.2f}s (manifests first); other S3 calls: {others} (counted by a botocore hook)",
        "prune",
    )
