"""MongoDB: lastgood backup vs a raw pymongo cursor drain; restore vs `insert_many` of the same documents."""

from __future__ import annotations

from typing import Any

from bench.common import Context, best_of, scaled, timed
from bench.data import BENCH_COLLECTION, generate_mongo

DOCS = 30_000  # ~11 MB of BSON at BENCH_SCALE=1


def run(ctx: Context) -> None:
    from bson.raw_bson import RawBSONDocument
    from lastgood.backups.restore import restore_backup
    from lastgood.backups.run import run_backup
    from lastgood.engines.mongodb import ENGINE
    from pymongo import MongoClient

    uri, db_name = ctx.env["MONGODB_URI"], ctx.env["MONGODB_DB_NAME"]
    docs = scaled(DOCS)
    generate_mongo(uri, db_name, docs)
    raw: MongoClient[Any] = MongoClient(uri, document_class=RawBSONDocument)
    plain: MongoClient[Any] = MongoClient(uri)
    try:
        db = raw[db_name]

        def drain() -> int:
            """Every document of every collection, as raw BSON (what the backup reads too)."""
            total = 0
            for name in db.list_collection_names():
                for doc in db[name].find({}, batch_size=1000):
                    total += len(doc.raw)
            return total

        def ours() -> Any:
            return run_backup("mongodb", on_demand=True, store=ctx.store)

        (native_s, raw_bytes), (ours_s, result) = best_of(2, drain, ours)
        ratio = native_s / ours_s
        stored = result.manifest.totals.bytes if result.manifest else 0
        ctx.results.add(
            "MongoDB backup vs raw pymongo cursor drain",
            ratio,
            "×",
            "≥ 0.8",
            ratio >= 0.8,
            f"{docs} docs, {raw_bytes / 1e6:.1f} MB BSON: drain {native_s:.2f}s, lastgood {ours_s:.2f}s "
            f"(raw BSON → gzip {stored / 1e6:.1f} MB → S3, SHA-256, metadata; best of 2)",
            "mongodb",
        )

        documents = list(plain[db_name][BENCH_COLLECTION].find({}))
        scratch = plain["bench_insert_many"][BENCH_COLLECTION]
        scratch.drop()
        native_r, _ = timed(lambda: scratch.insert_many(documents, ordered=False))
        plain.drop_database("bench_insert_many")
        target = ctx.env["SCRATCH_MONGODB_URI"]
        ENGINE.wipe(target)
        ours_r, report = timed(
            lambda: restore_backup(
                result.backup_id, source="mongodb", target_url=target, force=True, store=ctx.store
            )
        )
        ENGINE.wipe(target)
        ratio = native_r / ours_r
        ctx.results.add(
            "MongoDB restore vs insert_many of the same documents",
            ratio,
            "×",
            "reported (no goal)",
            None,
            f"insert_many {native_r:.2f}s, lastgood {ours_r:.2f}s (S3 → SHA-256 verify "
            f"{report.verify_seconds:.2f}s → gunzip → raw BSON batches + indexes; counts match: {report.ok})",
            "mongodb",
        )
    finally:
        raw.close()
        plain.close()
