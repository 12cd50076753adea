"""Demo step 50: retention people can trust — the policy explained, a dry run with reasons,
then the real run deleting exactly what the dry run planned, a pinned backup kept."""

from __future__ import annotations

import json
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from devstack.demo import DemoContext, StepFailed

SEED_003 = ("--keep-hourly", "24", "--keep-daily", "30", "--keep-weekly", "13", "--keep-monthly", "12")
DEMO_POLICY = ("--keep-daily", "7", "--keep-weekly", "4")
# A history for the postgres source: (age, pinned); the real backups of earlier steps are newer.
HISTORY = [(timedelta(days=2), False), (timedelta(days=3), False), (timedelta(days=3, hours=6), False)]
HISTORY += [(timedelta(days=12), False), (timedelta(days=45), False), (timedelta(days=80), False)]
HISTORY += [(timedelta(days=200), True)]


def run(ctx: DemoContext) -> None:
    explain(ctx)
    prune_history(ctx)


def explain(ctx: DemoContext) -> None:
    ctx.section(
        "Retention: explain the seed-003 GFS policy over 400 days of hourly backups (no bucket access)"
    )
    start = datetime(2025, 1, 1, tzinfo=UTC)
    with tempfile.TemporaryDirectory() as tmp:
        timeline = Path(tmp) / "timeline.txt"
        timeline.write_text(
            "".join(f"{(start + timedelta(hours=h)):%Y-%m-%dT%H:%M:%SZ}\n" for h in range(400 * 24)),
            encoding="utf-8",
        )
        proc = ctx.lastgood("prune", "--simulate", str(timeline), *SEED_003, "--json")
    plan = json.loads(proc.stdout)
    kept = [p for p in plan if p["keep"]]
    by_rule: dict[str, int] = {}
    for p in kept:
        for reason in p["reasons"]:
            by_rule[reason] = by_rule.get(reason, 0) + 1
    ctx.summary(f"simulate {' '.join(SEED_003)}: {len(plan)} hourly backups → keep {len(kept)} ({by_rule})")
    ctx.summary(
        f"oldest kept: {kept[0]['time']} {kept[0]['reasons']}; newest: {kept[-1]['time']} {kept[-1]['reasons']}"
    )


def prune_history(ctx: DemoContext) -> None:
    ctx.section(
        "Prune real postgres backups: a history at chosen times, one pinned; dry run, then the real run"
    )
    import boto3
    from lastgood.backups.manifest import BackupManifest

    env = ctx.stack.env
    s3 = boto3.client(
        "s3",
        endpoint_url=env["AWS_ENDPOINT_URL"],
        region_name=env["AWS_REGION"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
    )
    bucket = env["BACKUP_BUCKET"]
    listing = backups(ctx)
    complete = [b for b in listing if b["status"] != "incomplete"]
    if not complete:
        ctx.lastgood("backup", "--source", "postgres")
        complete = [b for b in backups(ctx) if b["status"] != "incomplete"]
    model = complete[0]["backup_id"]
    manifest = BackupManifest.from_json(
        s3.get_object(Bucket=bucket, Key=f"backups/postgres/{model}/manifest.json")["Body"].read()
    )
    sse: dict[str, Any] = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": env["KMS_KEY_ID"]}
    now = datetime.now(UTC).replace(microsecond=0)
    made: dict[str, bool] = {}
    for age, pinned in HISTORY:
        # a real backup's objects, copied server-side under an older backup id: restorable as is
        when = now - age
        backup_id = f"{when:%Y%m%dT%H%M%SZ}-{len(made):06x}"
        for entry in manifest.objects:
            s3.copy_object(
                Bucket=bucket,
                Key=f"backups/postgres/{backup_id}/{entry.key}",
                CopySource={"Bucket": bucket, "Key": f"backups/postgres/{model}/{entry.key}"},
                **sse,
            )
        copy = manifest.model_copy(
            update={
                "backup_id": backup_id,
                "slot": None,
                "started_at": f"{when:%Y-%m-%dT%H:%M:%SZ}",
                "finished_at": f"{when + timedelta(seconds=3):%Y-%m-%dT%H:%M:%SZ}",
                "pinned": pinned,
                "pin_reason": "demo: the schema before migration 12" if pinned else None,
            }
        )
        s3.put_object(
            Bucket=bucket, Key=f"backups/postgres/{backup_id}/manifest.json", Body=copy.to_bytes(), **sse
        )
        made[backup_id] = pinned
    ctx.say(
        f"   (created {len(made)} postgres backups dated 2 to 200 days ago from {model}; the oldest is pinned)"
    )
    before = {b["backup_id"] for b in backups(ctx)}

    dry = ctx.lastgood("prune", "--source", "postgres", *DEMO_POLICY, "--dry-run")
    for line in dry.stdout.strip().splitlines():
        ctx.say("   " + line)
    planned = json.loads(
        ctx.lastgood("prune", "--source", "postgres", *DEMO_POLICY, "--dry-run", "--json", echo=False).stdout
    )[0]
    planned_removed = {d["backup_id"] for d in planned["removed"]}
    after_dry = {b["backup_id"] for b in backups(ctx)}
    ctx.summary(f"--dry-run: {len(before)} backups before, {len(after_dry)} after (nothing deleted)")

    # The mass-deletion guard: removing more than half of the source's backups needs --force.
    guarded = ctx.lastgood("prune", "--source", "postgres", *DEMO_POLICY, check=False)
    after_guard = {b["backup_id"] for b in backups(ctx)}
    ctx.summary(
        f"without --force: exit {guarded.returncode} ({guarded.stderr.strip().splitlines()[-1] if guarded.stderr.strip() else ''}); "
        f"nothing deleted: {after_guard == before}"
    )
    real = json.loads(
        ctx.lastgood("prune", "--source", "postgres", *DEMO_POLICY, "--force", "--json").stdout
    )[0]
    after = {b["backup_id"] for b in backups(ctx)}
    pinned_id = next(b for b, p in made.items() if p)
    ctx.summary(
        f"prune {' '.join(DEMO_POLICY)}: {len(before)} → {len(after)} backups; removed exactly the planned "
        f"{sorted(planned_removed)}: {after == before - planned_removed}; {real['deleted_keys']} objects deleted "
        f"({real['manifest_deletes']} manifests first, then {real['delete_requests']} DeleteObjects request(s)); "
        f"audit {real['audit_key']}"
    )
    ctx.summary(f"pinned {pinned_id} (200 days old) kept: {pinned_id in after}")
    ctx.lastgood("unpin", pinned_id, check=False, echo=False)
    if after_dry != before:
        raise StepFailed("the dry run deleted something")
    if guarded.returncode != 9 or after_guard != before:
        raise StepFailed("the mass-deletion guard did not refuse (or deleted something)")
    if after != before - planned_removed or not planned_removed:
        raise StepFailed("the real run did not delete exactly the planned backups")
    if pinned_id not in after:
        raise StepFailed("the pinned backup was pruned")


def backups(ctx: DemoContext) -> list[dict[str, Any]]:
    listing: list[dict[str, Any]] = json.loads(
        ctx.lastgood("list", "--source", "postgres", "--json", echo=False).stdout
    )
    return listing
