"""The one table, `bench/results.json` and `bench/throughput.png`."""

from __future__ import annotations

import json
import os
import platform
from dataclasses import asdict
from pathlib import Path

from bench.common import OUT, SCALE, Results

HEADER = ("measurement", "value", "goal", "verdict", "detail")
OPT_IN = ("BENCH_SCALE", "BENCH_RSS_100", "BENCH_CURVES_100")


def table(results: Results) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(c.replace("|", "/") for c in row.cells()) + " |" for row in results.rows]
    return "\n".join(lines)


def summary(results: Results, seconds: float) -> str:
    verdicts = [r.verdict for r in results.rows]
    unmeasured = sum(1 for r in results.rows if r.detail.startswith("not measured"))
    return (
        f"BENCH_SCALE={SCALE:g} · {seconds:.0f} s on {os.cpu_count()} cores · Python {platform.python_version()} · "
        f"{verdicts.count('PASS')} PASS, {verdicts.count('MISS')} MISS, "
        f"{len(verdicts) - verdicts.count('PASS') - verdicts.count('MISS') - unmeasured} reported, "
        f"{unmeasured} not measured"
    )


def file_name(name: str) -> str:
    """`results.json` at BENCH_SCALE=1, `results-scale10.json` at 10: one scale never overwrites another."""
    if SCALE == 1:
        return name
    stem, _, ext = name.rpartition(".")
    return f"{stem}-scale{SCALE:g}.{ext}"


def write_json(results: Results, seconds: float, path: Path = OUT / "results.json") -> Path:
    doc = {
        "scale": SCALE,
        "seconds": round(seconds, 1),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "area_seconds": results.timings,
        "env": {k: v for k, v in os.environ.items() if k in OPT_IN},
        "rows": [asdict(r) | {"verdict": r.verdict} for r in results.rows],
        "series": results.series,
    }
    path.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    return path


def plot(results: Results, path: Path = OUT / "throughput.png") -> Path | None:
    throughput = sorted(results.series.get("throughput_mb_s", []))
    rss = sorted(results.series.get("peak_rss_mb", []))
    total = sorted(results.series.get("peak_rss_with_pg_dump_mb", []))
    if not throughput and not rss:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.6))
    left.plot([p[0] for p in throughput], [p[1] for p in throughput], marker="o", label="lastgood backup")
    left.set_ylim(bottom=0)
    left.set_title("PostgreSQL backup throughput")
    left.set_ylabel("MB/s of dump written to S3")
    right.plot([p[0] for p in rss], [p[1] for p in rss], marker="o", label="backup process")
    if total:
        right.plot([p[0] for p in total], [p[1] for p in total], marker="s", label="+ pg_dump (sum)")
    right.axhline(256, color="red", linestyle="--", linewidth=1, label="256 MB goal")
    right.set_ylim(0, max(300, *(p[1] * 1.1 for p in rss + total)))
    right.set_title("Backup peak RSS")
    right.set_ylabel("MB")
    for axis in (left, right):
        axis.set_xlabel("dump size (MB)")
        axis.set_xscale("log")
        axis.grid(True, alpha=0.3)
        axis.legend(fontsize=8)
    fig.suptitle(f"make bench, BENCH_SCALE={SCALE:g}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


ENGINE_STYLE = {"postgres": "tab:blue", "mongodb": "tab:green", "upstash": "tab:red"}


def plot_curves(results: Results, path: Path = OUT / "curves.png") -> Path | None:
    """Throughput and peak RSS against backup size, per engine, backup and restore (`bench.curves`)."""
    points = results.series.get("curves", [])
    if not points:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for engine, color in ENGINE_STYLE.items():
        for op, style in (("backup", "-o"), ("restore", "--s")):
            mine = sorted(
                (p for p in points if p["engine"] == engine and p["op"] == op), key=lambda p: p["data_mb"]
            )
            if not mine:
                continue
            xs = [p["data_mb"] for p in mine]
            left.plot(xs, [p["mb_s"] for p in mine], style, color=color, label=f"{engine} {op}")
            right.plot(xs, [p["total_mb"] for p in mine], style, color=color, label=f"{engine} {op}")
    right.axhline(256, color="black", linestyle=":", linewidth=1, label="256 MB")
    left.set_title("Throughput (fresh process per run)")
    left.set_ylabel("MB/s of data (dump / BSON / RESP)")
    left.set_ylim(bottom=0)
    right.set_title("Peak RSS (Python + pg_dump/pg_restore)")
    right.set_ylabel("MB")
    right.set_ylim(bottom=0)
    for axis in (left, right):
        axis.set_xlabel("data size (MB: pg_dump -Fc / raw BSON / RESP)")
        axis.set_xscale("log")
        axis.grid(True, alpha=0.3)
        axis.legend(fontsize=7)
    fig.suptitle(f"make bench cost curves, BENCH_SCALE={SCALE:g}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
