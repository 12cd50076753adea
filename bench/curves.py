"""Cost curves: backup AND restore throughput and peak RSS against data size, for every engine.

For PostgreSQL, MongoDB and Upstash, at 1x, 3x and 10x of each engine's base size (times
BENCH_SCALE; 100x too with `BENCH_CURVES_100=1`), the data is generated (`bench.data`), then
ONE `run_backup` runs in a fresh child process and ONE `restore_backup` of that very backup
into the engine's emptied scratch target runs in another, so each peak is that run's own:
`VmHWM` from /proc (`ru_maxrss` would start at the parent's RSS, see `bench.memory`). The
child polls its own children (pg_dump, pg_restore) every 20 ms for their peaks; `tool_mb`
is the largest of them, `total_mb` the sum with the Python process (what a Lambda holds).

Data size on the x axis is the engine's own stream before lastgood's gzip, the unit
docs/limits.md sizes runs by: PostgreSQL the `pg_dump -Fc` dump (stored as is), MongoDB the
raw BSON (`raw_bson_bytes`), Redis the RESP command stream (`raw_bytes`); the stored size
(manifest `totals.bytes`) is kept beside it. Throughput is data MB per second of the whole
run (backup: dump to S3 incl. manifest; restore: SHA-256 verify + apply + count checks). The points go to the results JSON (`series.curves`) and are plotted
to `bench/curves.png` (`curves-scale<N>.png` at another BENCH_SCALE).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from typing import Any

from bench.common import Context, scaled
from bench.data import generate_mongo, generate_postgres, generate_redis

FACTORS = (1, 3, 10) + ((100,) if os.environ.get("BENCH_CURVES_100") == "1" else ())
# base sizes at 1x (BENCH_SCALE=1): ~9.6 MB pg dump, ~4 MB of BSON, ~0.75 MB of gzipped RESP
BASE = {"postgres": 100_000, "mongodb": 10_000, "upstash": 10_000}
UNIT = {"postgres": "rows", "mongodb": "docs", "upstash": "keys"}
SCRATCH = {
    "postgres": "SCRATCH_DATABASE_URL",
    "mongodb": "SCRATCH_MONGODB_URI",
    "upstash": "SCRATCH_REDIS_URL",
}

CHILD = """
import json, sys, threading, time
import psutil

def hwm_mb(pid="self"):
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0

job = json.loads(sys.argv[1])
peak = {"tool_mb": 0.0}
done = threading.Event()

def poll():
    me = psutil.Process()
    while not done.is_set():
        for child in me.children(recursive=True):
            peak["tool_mb"] = max(peak["tool_mb"], hwm_mb(child.pid))
        done.wait(0.02)

threading.Thread(target=poll, daemon=True).start()
t = time.perf_counter()
if job["op"] == "backup":
    from lastgood.backups.run import run_backup
    r = run_backup(job["source"], on_demand=True)
    extra = r.manifest.extra or {}
    raw = extra.get("raw_bson_bytes") or extra.get("raw_bytes") or r.manifest.totals.bytes
    out = {"backup_id": r.backup_id, "bytes": r.manifest.totals.bytes, "data_bytes": raw}
else:
    from lastgood.backups.restore import restore_backup
    r = restore_backup(job["backup_id"], source=job["source"], target_url=job["target"], force=True,
                       safety_backup=False)
    out = {"ok": r.ok, "verify_seconds": r.verify_seconds}
seconds = time.perf_counter() - t
done.set()
print(json.dumps({"seconds": seconds, "python_mb": hwm_mb(), **peak, **out}))
"""


def _generators(ctx: Context) -> dict[str, Callable[[int], None]]:
    env = ctx.env
    return {
        "postgres": lambda n: generate_postgres(env["DATABASE_URL"], rows=n),
        "mongodb": lambda n: generate_mongo(env["MONGODB_URI"], env["MONGODB_DB_NAME"], docs=n),
        "upstash": lambda n: generate_redis(env["REDIS_URL"], keys=n),
    }


def _wipe(engine: str, url: str) -> None:
    if engine == "postgres":
        from lastgood.engines.postgres import ENGINE as pg

        pg.wipe(url)
    elif engine == "mongodb":
        from lastgood.engines.mongodb import ENGINE as mongo

        mongo.wipe(url)
    else:
        from lastgood.engines.upstash import ENGINE as redis

        redis.wipe(url)


def _child(ctx: Context, job: dict[str, Any]) -> dict[str, Any]:
    env = {**os.environ, **ctx.env, "POWERTOOLS_METRICS_DISABLED": "true", "POWERTOOLS_LOG_LEVEL": "WARNING"}
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(job)], capture_output=True, text=True, env=env
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{job['op']} child for {job['source']} failed: {proc.stderr[-300:]}")
    doc: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    doc["total_mb"] = doc["python_mb"] + doc["tool_mb"]
    return doc


def measure(ctx: Context, engine: str, factor: int, *, restore: bool = True) -> list[dict[str, Any]]:
    """Generate `engine`'s data at `factor`, back it up (and restore it) in fresh processes."""
    size = scaled(BASE[engine]) * factor
    _generators(ctx)[engine](size)
    backup = _child(ctx, {"op": "backup", "source": engine})
    mb = (backup["bytes"] / 1e6, backup["data_bytes"] / 1e6)
    points = [_point(engine, "backup", factor, size, mb, backup)]
    if restore:
        target = ctx.env[SCRATCH[engine]]
        _wipe(engine, target)
        job = {"op": "restore", "source": engine, "backup_id": backup["backup_id"], "target": target}
        done = _child(ctx, job)
        _wipe(engine, target)
        if not done["ok"]:
            raise RuntimeError(f"{engine} restore at {factor}x: counts do not match")
        points.append(_point(engine, "restore", factor, size, mb, done))
    ctx.results.series.setdefault("curves", []).extend(points)
    return points


def _point(
    engine: str, op: str, factor: int, size: int, mb: tuple[float, float], run: dict[str, Any]
) -> dict[str, Any]:
    stored, data = mb
    return {
        "engine": engine,
        "op": op,
        "factor": factor,
        "items": size,
        "data_mb": round(data, 2),
        "backup_mb": round(stored, 2),
        "seconds": round(run["seconds"], 3),
        "mb_s": round(data / run["seconds"], 2),
        "items_s": round(size / run["seconds"]),
        "python_mb": round(run["python_mb"], 1),
        "tool_mb": round(run["tool_mb"], 1),
        "total_mb": round(run["total_mb"], 1),
    }


def run(ctx: Context) -> None:
    for engine in BASE:
        for factor in FACTORS:
            measure(ctx, engine, factor)
        points = [p for p in ctx.results.series["curves"] if p["engine"] == engine]
        for op in ("backup", "restore"):
            mine = [p for p in points if p["op"] == op]
            ctx.results.add(
                f"Cost curve: {engine} {op} throughput at {'/'.join(f'{f}×' for f in FACTORS)}",
                mine[-1]["mb_s"],
                " MB/s",
                "reported (no goal)",
                None,
                "; ".join(
                    f"{p['factor']}×: {p['items']} {UNIT[engine]}, {p['data_mb']:.1f} MB "
                    f"({p['backup_mb']:.1f} stored) in {p['seconds']:.1f}s = {p['mb_s']:.1f} MB/s, "
                    f"peak {p['python_mb']:.0f} MB"
                    + (f" + tool {p['tool_mb']:.0f} MB" if p["tool_mb"] else "")
                    for p in mine
                )
                + " (fresh process per run)",
                "curves",
            )
