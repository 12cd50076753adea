"""Demo step 50: retention people can trust — the policy explained, a dry run, a pinned backup kept."""

from __future__ import annotations

import json
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from devstack.demo import DemoContext, StepFailed

SEED_003 = ("--keep-hourly", "24", "--keep-daily", "30", "--keep-weekly", "13", "--keep-monthly", "12")


def run(ctx: DemoContext) -> None:
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
        proc = ctx.lastgood("prune", "--simulate", str(timeline), *SEED_003, "--json", echo=False)
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

    ctx.section("Prune the real postgres backups: pin one, dry run, then keep only the newest")
    listing = json.loads(ctx.lastgood("list", "--source", "postgres", "--json", echo=False).stdout)
    complete = [b for b in listing if b["status"] != "incomplete"]
    for _ in range(2):  # an older one the policy will remove, and a newest one it keeps
        ctx.lastgood("backup", "--source", "postgres")
    listing = json.loads(ctx.lastgood("list", "--source", "postgres", "--json", echo=False).stdout)
    complete = [b for b in listing if b["status"] != "incomplete"]
    oldest = complete[-1]["backup_id"]
    ctx.lastgood("pin", oldest, "--reason", "demo: kept whatever the policy says")
    dry = ctx.lastgood("prune", "--source", "postgres", "--keep-last", "1", "--dry-run", "--force")
    for line in dry.stdout.strip().splitlines()[:10]:
        ctx.say("   " + line)
    after_dry = json.loads(ctx.lastgood("list", "--source", "postgres", "--json", echo=False).stdout)
    ctx.summary(f"--dry-run: {len(listing)} backups before, {len(after_dry)} after (nothing deleted)")
    ctx.lastgood("prune", "--source", "postgres", "--keep-last", "1", "--force")
    after = json.loads(ctx.lastgood("list", "--source", "postgres", "--json", echo=False).stdout)
    survivors = {b["backup_id"] for b in after}
    ctx.summary(
        f"prune --keep-last 1: {len(listing)} → {len(after)} backups; pinned {oldest} kept: {oldest in survivors}"
    )
    ctx.lastgood("unpin", oldest)
    if len(after_dry) != len(listing) or oldest not in survivors:
        raise StepFailed("dry run deleted something, or the pinned backup was pruned")
