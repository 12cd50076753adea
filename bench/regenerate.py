"""Regenerate vs a plain pymongo drain + json.dumps of the same query, and the loader's latencies.

Measured at the issue's two sizes, 20k and 100k documents (`SIZES`, not multiplied by
BENCH_SCALE: a dataset is what a page serves, and 100k is the issue's upper size). Both
sides run with warm clients: the drain's MongoClient is created and used once before it is
timed, and regenerate publishes the small dataset first (S3 and MongoDB clients, the
config), as a warm Lambda instance would have them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any

from bench.common import ROOT, Context, best_of, percentile, timed
from bench.data import BENCH_COLLECTION, generate_mongo

SIZES = (20_000, 100_000)
SMALL = 300  # the size of the seed's prompts dataset (296)
WARM_HITS = 1000
LIVE_READS = 30
ROUNDS = 5  # best of 5, interleaved: a one-second row is otherwise mostly noise (moto, mongod)

CHILD = """
import json, time
from lastgood.site.regenerate import regenerate

def hwm_mb():  # this process's own peak (ru_maxrss would start at the parent's RSS)
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) / 1024 for line in status if line.startswith("VmHWM:"))

t = time.perf_counter()
report = regenerate(["bench"])
print(json.dumps({"seconds": time.perf_counter() - t, "status": report.outcomes[0].status,
                  "rss_mb": hwm_mb()}))
"""


def _bench_config(ctx: Context) -> str:
    from lastgood.core.config import read_config_document

    config = read_config_document(ROOT / "devstack" / "demo" / "lastgood.toml")
    config["datasets"] += [
        {"name": "bench", "collection": BENCH_COLLECTION, "sort": [["_id", 1]], "min_count": 1},
        {"name": "bench-small", "collection": "bench_small", "sort": [["_id", 1]], "min_count": 1},
    ]
    path = ctx.scratch / "bench-config.json"
    path.write_text(json.dumps(config))
    return str(path)


def _reload() -> None:
    from lastgood.core import aws
    from lastgood.core.config import reset_config
    from lastgood.core.settings import reset_settings
    from lastgood.site import loader

    reset_settings()
    reset_config()
    aws.reset_clients()
    loader.clear_cache()


def run(ctx: Context) -> None:
    from pymongo import MongoClient

    uri, db_name = ctx.env["MONGODB_URI"], ctx.env["MONGODB_DB_NAME"]
    generate_mongo(uri, db_name, SMALL, collection="bench_small")
    previous = os.environ.get("LASTGOOD_CONFIG")
    os.environ["LASTGOOD_CONFIG"] = _bench_config(ctx)
    _reload()
    try:
        _warm()
        for docs in SIZES:
            generate_mongo(uri, db_name, docs)
            _regenerate(ctx, uri, db_name, docs, MongoClient, rss=docs == SIZES[-1])
            if docs == SIZES[0]:
                _loader(ctx, docs)
    finally:
        if previous is None:
            os.environ.pop("LASTGOOD_CONFIG", None)
        else:
            os.environ["LASTGOOD_CONFIG"] = previous
        _reload()


def _warm() -> None:
    from lastgood.site.regenerate import regenerate

    small = regenerate(["bench-small"]).outcomes[0]
    if small.status not in ("published", "unchanged"):
        raise RuntimeError(f"bench-small not published: {small.status} {small.reason}")


def _regenerate(ctx: Context, uri: str, db_name: str, docs: int, client_class: Any, *, rss: bool) -> None:
    from lastgood.site.regenerate import regenerate

    client = client_class(uri)
    coll = client[db_name][BENCH_COLLECTION]
    bumps = iter(range(1, 1_000_000))

    def native() -> int:
        items = list(coll.find({}, sort=[("_id", 1)]))
        return len(json.dumps(items, default=str, sort_keys=True, ensure_ascii=False).encode())

    def ours() -> Any:
        return regenerate(["bench"])

    def change_one_document() -> None:
        # untimed: every regenerate run then has a new version to publish (an unchanged
        # dataset is a hash comparison and no write, which would flatter the ratio)
        coll.update_one({"n": 0}, {"$set": {"bench_round": next(bumps)}})

    try:
        timed(native)  # warm the server's cache and the client for both sides
        (native_s, body_bytes), (ours_s, report) = best_of(ROUNDS, native, ours, before=change_one_document)
    finally:
        client.close()
    outcome = report.outcomes[0]
    ratio = ours_s / native_s
    ctx.results.add(
        f"Regenerate {docs} docs vs pymongo drain + json.dumps (time)",
        ratio,
        "×",
        "≤ 1.3",
        ratio <= 1.3 and outcome.status == "published",
        f"drain+dumps {native_s:.2f}s ({body_bytes / 1e6:.1f} MB), regenerate {ours_s:.2f}s "
        f"({outcome.status}: canonical JSON serialised once, guards, version + live (If-Match) + "
        f"last-good writes, invalidation; warm clients on both sides; best of {ROUNDS}, one document "
        "changed before every run so each run publishes)",
        "regenerate",
    )
    if not rss:
        return
    env = {**os.environ, "POWERTOOLS_METRICS_DISABLED": "true", "POWERTOOLS_LOG_LEVEL": "WARNING"}
    proc = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        ctx.results.not_measured("Regenerate peak RSS", proc.stderr[-200:], "regenerate")
        return
    child = json.loads(proc.stdout.strip().splitlines()[-1])
    ctx.results.add(
        f"Regenerate peak RSS ({docs} docs, fresh process)",
        child["rss_mb"],
        " MB",
        "reported (no goal)",
        None,
        f"a second run ({child['status']}: query + render + hash, no write) in {child['seconds']:.2f}s",
        "regenerate",
    )


def _loader(ctx: Context, docs: int) -> None:
    from lastgood.site import loader
    from lastgood.site.regenerate import regenerate

    small = regenerate(["bench-small"]).outcomes[0]
    if small.status not in ("published", "unchanged"):
        raise RuntimeError(f"bench-small not published: {small.status} {small.reason}")
    loader.clear_cache()
    loader.load("bench-small")
    warm = []
    for _ in range(WARM_HITS):
        t = time.perf_counter()
        hit = loader.load("bench-small")
        warm.append((time.perf_counter() - t) * 1000)
    assert hit.layer == "memory"
    ctx.results.add(
        "Loader warm-cache hit p50 (p99 in detail)",
        percentile(warm, 50),
        " ms",
        "reported (no goal)",
        None,
        f"p99 {percentile(warm, 99):.4f} ms over {WARM_HITS} hits ({SMALL} items)",
        "loader",
    )
    for name, size in (("bench-small", SMALL), ("bench", docs)):
        live = []
        for _ in range(LIVE_READS if size <= SMALL else max(5, LIVE_READS // 3)):
            loader.clear_cache()
            t = time.perf_counter()
            ds = loader.load(name)
            live.append((time.perf_counter() - t) * 1000)
        ctx.results.add(
            f"Loader live read p50, {size} items (p99 in detail)",
            percentile(live, 50),
            " ms",
            "reported (no goal)",
            None,
            f"p99 {percentile(live, 99):.1f} ms over {len(live)} cold-cache reads answered by `{ds.layer}` "
            "(S3 GET + JSON parse + min_count/schema check)",
            "loader",
        )
