"""Demo step 40: integrity check catches one flipped byte; restore drills with measured RTO; a failed
migration rolled back. Leaves the devstack's data as it found it (the corrupted byte is put back,
the scratch targets are wiped, the migration's safety backup is unpinned)."""

from __future__ import annotations

import json
import shlex
from typing import Any

SOURCES = ("postgres", "mongodb", "upstash")


def _latest(ctx: Any, source: str) -> str:
    rows = json.loads(ctx.lastgood("list", "--source", source, "--json", echo=False).stdout)
    complete = [r for r in rows if r["status"] != "incomplete"]
    if complete:
        return str(complete[0]["backup_id"])
    return str(json.loads(ctx.lastgood("backup", "--source", source, "--json").stdout)["backup_id"])


def _pg_state(url: str) -> tuple[Any, ...]:
    import psycopg

    with psycopg.connect(url) as conn:
        columns = conn.execute(
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'public' ORDER BY 1, 2"
        ).fetchall()
        rows = tuple(
            conn.execute(f"SELECT md5(string_agg(t::text, ',' ORDER BY t::text)) FROM {table} t").fetchone()
            for table in ("users", "orders", "audit_log")
        )
    return tuple(columns), rows


def run(ctx: Any) -> None:
    env = ctx.stack.env
    s3 = ctx.stack.boto3_client("s3")
    bucket = env["BACKUP_BUCKET"]
    latest = {source: _latest(ctx, source) for source in SOURCES}

    ctx.section("Integrity: flip ONE byte of a stored object; verify names it and fails")
    backup_id = latest["mongodb"]
    key = f"backups/mongodb/{backup_id}/lastgood/prompts.bson.gz"
    original = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    corrupted = bytearray(original)
    corrupted[len(corrupted) // 2] ^= 0x01
    s3.put_object(Bucket=bucket, Key=key, Body=bytes(corrupted), ServerSideEncryption="aws:kms")
    ctx.say(f"   flipped byte {len(corrupted) // 2} of s3://{bucket}/{key} (same length)")
    try:
        verify = ctx.lastgood("verify", backup_id, check=False)
        bad = [line.strip() for line in verify.stdout.splitlines() if "BAD OBJECT" in line]
        ctx.say(verify.stdout.rstrip())
        if verify.returncode == 0 or not any("prompts.bson.gz" in line for line in bad):
            raise RuntimeError(f"verify did not catch the flipped byte (exit {verify.returncode})")
        ctx.summary(f"verify {backup_id}: exit {verify.returncode}, {bad[-1][:110]}…")
        restore = ctx.lastgood("restore", backup_id, "--target", env["SCRATCH_MONGODB_URI"], check=False)
        ctx.summary(
            f"restore of the corrupt backup refused (exit {restore.returncode}) before writing: "
            + restore.stderr.strip().splitlines()[-1].removeprefix("lastgood: error: ")[:150]
            + "…"
        )
        if restore.returncode == 0:
            raise RuntimeError("restore accepted a corrupt backup")
    finally:
        s3.put_object(Bucket=bucket, Key=key, Body=original, ServerSideEncryption="aws:kms")
    untouched = ctx.lastgood("verify", latest["postgres"], check=False)
    ctx.summary(f"untouched backup postgres/{latest['postgres']}: exit {untouched.returncode} (verified)")
    ctx.lastgood("verify", backup_id)  # the byte is back: it verifies again
    ctx.summary(f"byte put back: {backup_id} verifies again")

    ctx.section("Restore drill: newest backup of each source → scratch target, measured recovery time")
    for source in SOURCES:
        drill = ctx.lastgood("verify", "--latest", "--source", source, "--drill", "--json", check=False)
        doc = json.loads(drill.stdout) if drill.stdout.strip().startswith("{") else {}
        d = doc.get("drill") or {}
        if drill.returncode != 0 or not d.get("ok"):
            raise RuntimeError(f"drill {source} failed (exit {drill.returncode}): {drill.stderr[-300:]}")
        counts = ", ".join(f"{k} {v['restored']}/{v['expected']}" for k, v in list(d["counts"].items())[:4])
        ctx.summary(
            f"drill {source}: recovery time {d['recovery_time_seconds']:.3f}s "
            f"(verify {d['verify_seconds']:.3f}s + restore {d['restore_seconds']:.3f}s) vs RTO "
            f"{d['rto_seconds']}s; counts {counts}"
        )
    listing = ctx.lastgood("list", echo=False)
    for line in listing.stdout.strip().splitlines()[:4]:
        ctx.say("   " + line)

    ctx.section("Migration safety: pinned backup → failing migration → rolled back")
    from devstack.stack import pg_bin_dir

    url = env["DATABASE_URL"]
    before = _pg_state(url)
    psql = shlex.quote(str(pg_bin_dir() / "psql"))
    sql = "ALTER TABLE users ADD COLUMN oops int; DELETE FROM orders; CREATE TABLE junk(x int)"
    command = f"{psql} {shlex.quote(url)} -q -c {shlex.quote(sql)} && exit 3"
    migrate = ctx.lastgood(
        "migrate", "--source", "postgres", "--yes", "--json", "--", "sh", "-c", command, check=False
    )
    outcome = json.loads(migrate.stdout)
    after = _pg_state(url)
    ctx.summary(
        f"migration exited {outcome['exit_code']}; rolled back from pinned {outcome['backup_id']}: "
        f"{'schema and rows identical to before' if after == before else 'DIFFERENT FROM BEFORE'}"
    )
    ctx.lastgood("unpin", outcome["backup_id"], echo=False)
    if not outcome["rolled_back"] or after != before:
        ctx.stack.seed()
        raise RuntimeError("the failed migration was not rolled back to the prior state")
