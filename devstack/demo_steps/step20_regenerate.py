"""Demo step 20: regenerate publishes the datasets behind its guards; the loader never returns empty.

1. `lastgood invoke regenerate` publishes prompts / patterns / learning (a second run: unchanged).
2. Every prompt is deleted in MongoDB → regenerate rejects it, live stays byte-identical.
3. Live deleted, then MongoDB stopped, then S3 unreachable → `lastgood load prompts` still answers,
   from last-good, then from the bundled copy; only with the bundled copy missing too does it fail
   loudly (`CRITICAL: All fallbacks failed`, non-zero exit).
Everything it changed is restored at the end (MongoDB re-seeded and restarted, live republished).
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from typing import Any

from devstack.demo import DemoContext, StepFailed

S3_DOWN = {"AWS_ENDPOINT_URL_S3": "http://127.0.0.1:9"}  # a closed port: S3 unreachable, moto keeps its state


def _statuses(report: dict[str, Any]) -> str:
    return ", ".join(f"{d['dataset']}={d['status']}" for d in report.get("datasets", []))


def _live(ctx: DemoContext) -> bytes | None:
    s3 = ctx.stack.boto3_client("s3")
    try:
        return bytes(
            s3.get_object(Bucket=ctx.stack.env["SITE_BUCKET"], Key="live/data/prompts.json")["Body"].read()
        )
    except s3.exceptions.NoSuchKey:
        return None


def _answered_by(ctx: DemoContext, *, env: dict[str, str] | None = None) -> tuple[int, str, int | None]:
    """Run `lastgood load prompts`: (exit code, the stderr line saying which layer, item count)."""
    result = ctx.lastgood("load", "prompts", check=False, env=env)
    lines = [ln for ln in result.stderr.splitlines() if ln.startswith("lastgood:")]
    count = len(json.loads(result.stdout)) if result.returncode == 0 and result.stdout.strip() else None
    return result.returncode, (lines[-1] if lines else result.stderr.strip()[-200:]), count


def run(ctx: DemoContext) -> None:
    ctx.section("Regenerate: MongoDB → canonical JSON → guards → S3 live/ + last-good/ + CloudFront")
    first = ctx.invoke("regenerate", "events/regenerate-schedule.json")
    ctx.summary(f"regenerate → {_statuses(first)} in {first.get('seconds')}s")
    counts = {d["dataset"]: d.get("count") for d in first.get("datasets", [])}
    ctx.say(f"   items: {counts}; invalidation: {json.dumps(first.get('invalidation'))}")
    second = ctx.invoke("regenerate", "events/regenerate-schedule.json")
    ctx.summary(f"again → {_statuses(second)}, invalidation: {second.get('invalidation')}")
    if counts.get("prompts") != 296 or {d["status"] for d in second["datasets"]} != {"unchanged"}:
        raise StepFailed("expected 296 prompts published and an unchanged second run")

    before = _live(ctx)
    db = _mongo(ctx)
    try:
        ctx.section("Guard: every prompt deleted in MongoDB")
        deleted = db["prompts"].delete_many({}).deleted_count
        ctx.say(f"   (deleted {deleted} prompts in MongoDB)")
        rejected = ctx.invoke("regenerate", "events/regenerate-prompts.json")
        prompts = rejected["datasets"][0]
        identical = _live(ctx) == before
        digest = hashlib.sha256(before or b"").hexdigest()[:12]
        ctx.summary(
            f"regenerate prompts → {prompts['status']} ({prompts['reason']}); "
            f"live/data/prompts.json unchanged: {identical} (sha256 {digest}…)"
        )
        if prompts["status"] != "rejected" or not identical:
            raise StepFailed("the empty prompts collection was not rejected, or live changed")

        ctx.section("Loader: live deleted, MongoDB stopped, S3 unreachable")
        ctx.stack.boto3_client("s3").delete_object(
            Bucket=ctx.stack.env["SITE_BUCKET"], Key="live/data/prompts.json"
        )
        ctx.say("   (live/data/prompts.json deleted)")
        ctx.stack.stop("mongodb")
        ctx.say("   (devstack: mongodb stopped)")
        code, line, count = _answered_by(ctx)
        ctx.summary(f"lastgood load prompts → exit {code}: {line}")
        if code != 0 or count != 296 or "from last-good" not in line:
            raise StepFailed("expected 296 prompts from last-good")
        ctx.say("   (S3 unreachable: AWS_ENDPOINT_URL_S3=http://127.0.0.1:9)")
        code, line, count = _answered_by(ctx, env=S3_DOWN)
        ctx.summary(f"… and S3 unreachable → exit {code}: {line}")
        if code != 0 or count != 296 or "from bundled" not in line:
            raise StepFailed("expected 296 prompts from the bundled copy")
        ctx.say("   (bundled copy missing: LASTGOOD_BUNDLED_DIR=<an empty folder>)")
        with tempfile.TemporaryDirectory(prefix="no-bundle-") as empty:
            result = ctx.lastgood(
                "load", "prompts", check=False, env={**S3_DOWN, "LASTGOOD_BUNDLED_DIR": empty}
            )
        critical = "CRITICAL: All fallbacks failed" in result.stderr
        ctx.summary(f"… and no bundled copy → exit {result.returncode}, CRITICAL logged: {critical}")
        if result.returncode == 0 or not critical:
            raise StepFailed("expected a non-zero exit and 'CRITICAL: All fallbacks failed'")
    finally:
        if not ctx.stack.is_running("mongodb"):
            ctx.stack.start("mongodb")
        ctx.stack.seed()
        restored = ctx.invoke("regenerate", "events/regenerate-schedule.json")
        ctx.say(f"   (restored: mongodb running and re-seeded; regenerate → {_statuses(restored)})")


def _mongo(ctx: DemoContext) -> Any:
    from pymongo import MongoClient

    client: MongoClient[dict[str, Any]] = MongoClient(
        ctx.stack.env["MONGODB_URI"], serverSelectionTimeoutMS=5000
    )
    return client[ctx.stack.env["MONGODB_DB_NAME"]]
