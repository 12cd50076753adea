"""Peak RSS of one PostgreSQL backup at 1x, 3x and 10x data, each in a fresh child process.

The child runs exactly one `run_backup`. Peaks are each process's own high-water mark
(`VmHWM` in /proc/<pid>/status), not `ru_maxrss`: on Linux a child's `ru_maxrss` starts at
its parent's RSS at fork time (the kernel carries the old address space's high-water mark
across exec), so it would report the bench process's memory, not the backup's. The child
polls its own children (pg_dump) every 20 ms for theirs. The goal row judges the backup
process; a second row reports pg_dump's own peak and the sum of both (an upper bound of
what the Lambda sandbox holds at once — what to size the function's memory by).
Throughput of the same runs feeds the plot.

BASE_ROWS gives a ~23 MB table at 1x and ~230 MB at 10x: from 3x on, the dump is larger
than the S3 part buffers (3 x 8 MiB), so any further growth would be a leak.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from bench.common import Context, scaled
from bench.data import generate_postgres

BASE_ROWS = 100_000
FACTORS = (1, 3, 10)
GOAL_MB = 256

CHILD = """
import json, threading, time
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

peak = {"pg_dump_mb": 0.0}
done = threading.Event()

def poll():
    me = psutil.Process()
    while not done.is_set():
        for child in me.children(recursive=True):
            peak["pg_dump_mb"] = max(peak["pg_dump_mb"], hwm_mb(child.pid))
        done.wait(0.02)

threading.Thread(target=poll, daemon=True).start()
from lastgood.backups.run import run_backup
t = time.perf_counter()
r = run_backup("postgres", on_demand=True)
seconds = time.perf_counter() - t
done.set()
print(json.dumps({"seconds": seconds, "bytes": r.manifest.totals.bytes, "python_mb": hwm_mb(), **peak}))
"""


def run(ctx: Context) -> None:
    runs: dict[int, dict[str, float]] = {}
    env = {**os.environ, **ctx.env, "POWERTOOLS_METRICS_DISABLED": "true", "POWERTOOLS_LOG_LEVEL": "WARNING"}
    for factor in FACTORS:
        generate_postgres(ctx.env["DATABASE_URL"], scaled(BASE_ROWS) * factor)
        proc = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, env=env)
        if proc.returncode != 0:
            raise RuntimeError(f"backup child at {factor}× failed: {proc.stderr[-300:]}")
        doc = json.loads(proc.stdout.strip().splitlines()[-1])
        doc["total_mb"] = doc["python_mb"] + doc["pg_dump_mb"]
        runs[factor] = doc
        size_mb = doc["bytes"] / 1e6
        ctx.results.series["throughput_mb_s"].append((size_mb, size_mb / doc["seconds"]))
        ctx.results.series["peak_rss_mb"].append((size_mb, doc["python_mb"]))
        ctx.results.series.setdefault("peak_rss_with_pg_dump_mb", []).append((size_mb, doc["total_mb"]))
    one, ten = runs[FACTORS[0]], runs[FACTORS[-1]]
    growth = ten["python_mb"] / one["python_mb"]
    ctx.results.add(
        "Backup peak RSS at 1× and 10× data (PostgreSQL backup process)",
        ten["python_mb"],
        " MB",
        f"flat (≤ 1.25× growth), < {GOAL_MB} MB",
        ten["python_mb"] < GOAL_MB and growth <= 1.25,
        "; ".join(
            f"{f}×: {runs[f]['bytes'] / 1e6:.1f} MB dump → {runs[f]['python_mb']:.0f} MB" for f in FACTORS
        )
        + f" (growth 1×→10×: {growth:.2f}×; fresh process per run)",
        "memory",
    )
    ctx.results.add(
        "pg_dump peak RSS beside it, and the sum (Lambda sizing)",
        ten["total_mb"],
        " MB",
        "reported (no goal)",
        None,
        "; ".join(
            f"{f}×: pg_dump {runs[f]['pg_dump_mb']:.0f} MB, sum {runs[f]['total_mb']:.0f} MB" for f in FACTORS
        ),
        "memory",
    )
