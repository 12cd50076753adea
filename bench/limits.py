"""`python -m bench.limits [results.json]`: docs/limits.md's thresholds, computed from a bench run's curves.

For every engine and direction, the throughput of the largest measured point (the one least
dominated by fixed costs: process start, imports, connections) gives what fits in one
Lambda run (`LAMBDA_BUDGET_S`: the 900 s timeout less the 30 s the handler keeps for a clean
stop) and the size above which a source should move to Fargate (`FARGATE_AT_S`: two thirds
of the limit, room for growth). The peak RSS column is the largest sum (Python + pg_dump /
pg_restore) over all points, what the function's memory must hold. Prints a markdown table.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

LAMBDA_BUDGET_S = 870
FARGATE_AT_S = 600
UNIT = {"postgres": "MB of pg_dump -Fc dump", "mongodb": "MB of BSON", "upstash": "MB of RESP"}


def _size(mb: float) -> str:
    return f"~{mb / 1000:.1f} GB" if mb >= 1000 else f"~{mb:.0f} MB"


def rows(doc: dict[str, Any]) -> list[list[str]]:
    points = doc.get("series", {}).get("curves", [])
    out = []
    for engine in ("postgres", "mongodb", "upstash"):
        for op in ("backup", "restore"):
            mine = sorted(
                (p for p in points if p["engine"] == engine and p["op"] == op), key=lambda p: p["data_mb"]
            )
            if not mine:
                continue
            top = mine[-1]
            rate, per_item = top["mb_s"], top["items"] / top["seconds"]
            items = {"postgres": "rows", "mongodb": "documents", "upstash": "keys"}[engine]
            out.append(
                [
                    f"{engine} {op}",
                    f"{rate:.1f} MB/s ({per_item:,.0f} {items}/s) at {top['data_mb']:.0f} MB",
                    f"{max(p['total_mb'] for p in mine):.0f} MB",
                    f"{_size(rate * LAMBDA_BUDGET_S)} ({UNIT[engine]})",
                    _size(rate * FARGATE_AT_S) if op == "backup" else "—",
                ]
            )
    return out


def table(doc: dict[str, Any]) -> str:
    header = [
        "what",
        "measured (largest point)",
        "peak RSS",
        f"fits in ~{LAMBDA_BUDGET_S} s",
        f"Fargate above ({FARGATE_AT_S} s)",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows(doc)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    path = Path(args[0]) if args else Path(__file__).resolve().parent / "results.json"
    doc = json.loads(path.read_text())
    sys.stdout.write(f"from {path.name} (BENCH_SCALE={doc.get('scale')}, {doc.get('cores')} cores)\n\n")
    sys.stdout.write(table(doc) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
