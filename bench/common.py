"""Rows, timing and the shared context every bench module gets."""

from __future__ import annotations

import os
import statistics
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUT = Path(__file__).resolve().parent
SCALE = float(os.environ.get("BENCH_SCALE", "1"))


def scaled(n: int) -> int:
    return max(1, int(n * SCALE))


@dataclass
class Row:
    name: str
    value: float | None
    unit: str
    goal: str
    passed: bool | None  # None: reported only (no goal) or not measured
    detail: str
    area: str = ""

    @property
    def verdict(self) -> str:
        return {True: "PASS", False: "MISS", None: "—"}[self.passed]

    def cells(self) -> list[str]:
        value = "—" if self.value is None else f"{self.value:.3g}{self.unit}"
        return [self.name, value, self.goal or "—", self.verdict, self.detail]


@dataclass
class Results:
    rows: list[Row] = field(default_factory=list)
    # data size (MB of dump) → value, for the plot
    series: dict[str, list[tuple[float, float]]] = field(
        default_factory=lambda: {"throughput_mb_s": [], "peak_rss_mb": []}
    )
    timings: dict[str, float] = field(default_factory=dict)

    def add(
        self,
        name: str,
        value: float | None,
        unit: str,
        goal: str,
        passed: bool | None,
        detail: str,
        area: str = "",
    ) -> Row:
        row = Row(name, value, unit, goal, passed, detail, area)
        self.rows.append(row)
        sys.stderr.write(f"bench: {' | '.join(row.cells())}\n")
        return row

    def not_measured(self, name: str, reason: str, area: str = "") -> Row:
        return self.add(name, None, "", "", None, f"not measured: {reason}", area)


@dataclass
class Context:
    """What a bench area needs: the devstack env, a BackupStore, a scratch dir, the results."""

    env: dict[str, str]
    store: Any  # lastgood.backups.store.BackupStore
    scratch: Path
    results: Results


def run_area(results: Results, area: str, fn: Callable[[], None]) -> None:
    """Run one area; an exception becomes a "not measured" row, never a fake number."""
    started = time.perf_counter()
    sys.stderr.write(f"bench: --- {area}\n")
    try:
        fn()
    except Exception as exc:
        traceback.print_exc()
        results.not_measured(area, f"{type(exc).__name__}: {str(exc)[:200]}", area)
    results.timings[area] = round(time.perf_counter() - started, 1)


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def best_of(
    rounds: int, *fns: Callable[[], Any], before: Callable[[], Any] | None = None
) -> list[tuple[float, Any]]:
    """Run the functions interleaved `rounds` times; the fastest run of each (and its result).

    Interleaving spreads background noise (other processes on the same 2 cores) over
    both sides of a ratio instead of letting it land on one. `before` runs untimed ahead
    of every run (e.g. emptying a restore target).
    """
    best: list[tuple[float, Any] | None] = [None] * len(fns)
    for _ in range(rounds):
        for i, fn in enumerate(fns):
            if before is not None:
                before()
            seconds, result = timed(fn)
            current = best[i]
            if current is None or seconds < current[0]:
                best[i] = (seconds, result)
    return [b for b in best if b is not None]


def percentile(samples: list[float], q: int) -> float:
    return statistics.quantiles(samples, n=100, method="inclusive")[q - 1]


def pg_bin(tool: str) -> str:
    from lastgood.engines.pg_tools import pg_bin_dir

    return str(pg_bin_dir() / tool)
