"""Peak RSS of one PostgreSQL backup at 1x, 3x and 10x data, each in a fresh child process.

The runs are `bench.curves`' PostgreSQL backup points (the same child: exactly one
`run_backup`), reused when the curves area ran first, else measured here. Peaks are each
process's own high-water mark (`VmHWM` in /proc/<pid>/status), not `ru_maxrss`: on Linux a
child's `ru_maxrss` starts at its parent's RSS at fork time (the kernel carries the old
address space's high-water mark across exec), so it would report the bench process's memory,
not the backup's. The child polls its own children (pg_dump) every 20 ms for theirs. The
goal row judges the backup process; a second row reports pg_dump's own peak and the sum of
both (an upper bound of what the Lambda sandbox holds at once — what to size the function's
memory by). Throughput of the same runs feeds the plot. `BENCH_RSS_100=1` adds a 100x run
(~1 GB of dump at BENCH_SCALE=1; minutes).

BASE_ROWS gives a ~10 MB dump at 1x and ~96 MB at 10x: from 3x on, the dump is larger
than the S3 part buffers (3 x 8 MiB), so any further growth would be a leak.
"""

from __future__ import annotations

import os
from typing import Any

from bench import curves
from bench.common import Context

BASE_ROWS = curves.BASE["postgres"]
FACTORS = (1, 3, 10) + ((100,) if os.environ.get("BENCH_RSS_100") == "1" else ())
GOAL_MB = 256


def _backup_point(ctx: Context, factor: int) -> dict[str, Any]:
    for point in ctx.results.series.get("curves", []):
        if (point["engine"], point["op"], point["factor"]) == ("postgres", "backup", factor):
            return dict(point)
    return curves.measure(ctx, "postgres", factor, restore=False)[0]


def run(ctx: Context) -> None:
    runs: dict[int, dict[str, float]] = {}
    for factor in FACTORS:
        doc = _backup_point(ctx, factor)
        doc["pg_dump_mb"], doc["bytes"] = doc["tool_mb"], doc["data_mb"] * 1e6
        runs[factor] = doc
        size_mb = doc["data_mb"]
        ctx.results.series["throughput_mb_s"].append((size_mb, doc["mb_s"]))
        ctx.results.series["peak_rss_mb"].append((size_mb, doc["python_mb"]))
        ctx.results.series.setdefault("peak_rss_with_pg_dump_mb", []).append((size_mb, doc["total_mb"]))
    one, ten = runs[1], runs[10]
    growth = ten["python_mb"] / one["python_mb"]
    ctx.results.add(
        "Backup peak RSS at 1× and 10× data (PostgreSQL backup process)",
        ten["python_mb"],
        " MB",
        f"flat (≤ 1.25× growth), < {GOAL_MB} MB",
        ten["python_mb"] < GOAL_MB
        and growth <= 1.25
        and all(
            r["python_mb"] < GOAL_MB and r["python_mb"] / one["python_mb"] <= 1.25 for r in runs.values()
        ),
        "; ".join(
            f"{f}×: {runs[f]['bytes'] / 1e6:.1f} MB dump → {runs[f]['python_mb']:.0f} MB" for f in FACTORS
        )
        + f" (growth 1×→10×: {growth:.2f}×"
        + (f", 1×→100×: {runs[100]['python_mb'] / one['python_mb']:.2f}×" if 100 in runs else "")
        + "; fresh process per run)",
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
