"""MongoDB: lastgood backup vs the real `mongodump --gzip`; restore vs the real `mongorestore --gzip`.

Same server, same database (bench.data.generate_mongo_database: four collections of different
sizes, with indexes), in the same run. The tools are found on PATH, else in
`../shared/tools/mongo-tools/bin` beside the repository (where the tests look too); without
them both rows say "not measured" and why. The tools run with their defaults for the job:
`mongodump --gzip --out DIR` (4 collections in parallel, gzip level 6 to local disk) and
`mongorestore --gzip` (4 collections in parallel, 1 insertion worker each) into an empty
database. lastgood's side is the whole product path: dump → gzip → SHA-256 → S3 (moto) →
manifest; restore: verify every object's SHA-256 → spool → gunzip → insert → indexes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from bench.common import ROOT, SCALE, Context, best_of
from bench.data import generate_mongo_database

ROUNDS = 3  # best of 3, interleaved, at every scale: at 10x a restore takes over a minute a side, and two rounds left the row to noise
TOOLS_DIR = ROOT.parent / "shared" / "tools" / "mongo-tools" / "bin"
BACKUP_ROW = "MongoDB backup vs real mongodump --gzip"
RESTORE_ROW = "MongoDB restore vs real mongorestore --gzip"


def mongo_tool(name: str) -> str | None:
    """The tool on PATH, else in ../shared/tools/mongo-tools/bin (as the tests find it); None if absent."""
    found = shutil.which(name)
    if found:
        return found
    candidate = TOOLS_DIR / name
    return str(candidate) if candidate.is_file() and os.access(candidate, os.X_OK) else None


def _version(tool: str) -> str:
    out = subprocess.run([tool, "--version"], capture_output=True, text=True, timeout=30).stdout
    first = out.splitlines()[0] if out else "unknown version"
    return first.split(":", 1)[-1].strip() if ":" in first else first.strip()


def _run(cmd: list[str]) -> None:
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
    if result.returncode != 0 or "don't know what to do" in result.stderr:
        raise RuntimeError(f"{Path(cmd[0]).name} failed ({result.returncode}): {result.stderr[-300:]}")


def run(ctx: Context) -> None:
    mongodump, mongorestore = mongo_tool("mongodump"), mongo_tool("mongorestore")
    if mongodump is None or mongorestore is None:
        reason = (
            f"mongodump/mongorestore not found on PATH nor in {TOOLS_DIR.relative_to(ROOT.parent)} "
            "(install mongo-tools 100.x)"
        )
        ctx.results.not_measured(BACKUP_ROW, reason, "mongodb")
        ctx.results.not_measured(RESTORE_ROW, reason, "mongodb")
        return

    from lastgood.backups.restore import restore_backup
    from lastgood.backups.run import run_backup
    from lastgood.engines.mongodb import ENGINE
    from pymongo import MongoClient

    uri, db_name = ctx.env["MONGODB_URI"], ctx.env["MONGODB_DB_NAME"]
    counts = generate_mongo_database(uri, db_name, SCALE)
    client: MongoClient[Any] = MongoClient(uri)
    try:
        stats = client[db_name].command("dbStats")
        bson_mb = float(stats.get("dataSize", 0)) / 1e6
        indexes = sum(len(list(client[db_name][n.split(".", 1)[1]].list_indexes())) for n in counts)
    finally:
        client.close()
    shape = (
        f"{sum(counts.values())} docs in {len(counts)} collections, {indexes} indexes, {bson_mb:.1f} MB BSON"
    )
    dump_dir = ctx.scratch / "mongodump"

    def native_dump() -> int:
        shutil.rmtree(dump_dir, ignore_errors=True)
        _run([mongodump, "--uri", uri, "--db", db_name, "--gzip", "--out", str(dump_dir), "--quiet"])
        return sum(p.stat().st_size for p in dump_dir.rglob("*") if p.is_file())

    def ours() -> Any:
        return run_backup("mongodb", on_demand=True, store=ctx.store)

    (native_s, native_bytes), (ours_s, result) = best_of(ROUNDS, native_dump, ours)
    ratio = native_s / ours_s
    stored = result.manifest.totals.bytes if result.manifest else 0
    dump_version = _version(mongodump)
    ctx.results.add(
        BACKUP_ROW,
        ratio,
        "×",
        "≥ 1.0",
        ratio >= 1.0,
        f"{shape}: mongodump {dump_version} --gzip --out DIR {native_s:.2f}s ({native_bytes / 1e6:.1f} MB), "
        f"lastgood {ours_s:.2f}s (→ gzip {stored / 1e6:.1f} MB → S3 + SHA-256 + manifest; best of {ROUNDS})",
        "mongodb",
    )

    target_url = ctx.env["SCRATCH_MONGODB_URI"]
    target_db = target_url.rstrip("/").rsplit("/", 1)[-1].split("?", 1)[0]

    def empty_target() -> None:
        ENGINE.wipe(target_url)

    def native_restore() -> None:
        _run(
            [
                mongorestore,
                "--uri",
                uri,
                "--gzip",
                "--nsFrom",
                f"{db_name}.*",
                "--nsTo",
                f"{target_db}.*",
                "--dir",
                str(dump_dir),
                "--quiet",
            ]
        )

    def ours_restore() -> Any:
        return restore_backup(result.backup_id, source="mongodb", target_url=target_url, store=ctx.store)

    (native_r, _), (ours_r, report) = best_of(ROUNDS, native_restore, ours_restore, before=empty_target)
    empty_target()
    ratio = native_r / ours_r
    ctx.results.add(
        RESTORE_ROW,
        ratio,
        "×",
        "≥ 1.0",
        ratio >= 1.0,
        f"{shape}: mongorestore {_version(mongorestore)} --gzip (default 4 collections in parallel, "
        f"1 insertion worker each) into an empty database {native_r:.2f}s, lastgood {ours_r:.2f}s "
        f"(S3 → SHA-256 verify {report.verify_seconds:.2f}s → gunzip → raw BSON inserts + indexes; "
        f"counts match: {report.ok}; best of {ROUNDS})",
        "mongodb",
    )
