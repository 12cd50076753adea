"""Run callables concurrently, each with its own time limit, all under one deadline.

Each task runs in a daemon thread: a task that misses its limit is reported as
such and abandoned — never joined, so neither the health report nor the process
exit waits for a hung socket. Nothing here knows what a probe or a check is.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass
class Outcome:
    """What one task did: its value, or the exception it raised, or `timed_out`."""

    value: Any = None
    error: BaseException | None = None
    timed_out: bool = False
    limit_s: float = 0.0
    elapsed_s: float = 0.0


class _Task:
    def __init__(self, fn: Callable[[], Any]) -> None:
        self.fn = fn
        self.done = threading.Event()
        self.value: Any = None
        self.error: BaseException | None = None
        self.elapsed_s = 0.0

    def run(self) -> None:
        started = time.perf_counter()
        try:
            self.value = self.fn()
        except BaseException as exc:  # reported to the caller, never lost in the thread
            self.error = exc
        finally:
            self.elapsed_s = time.perf_counter() - started
            self.done.set()


def run_within(
    tasks: Mapping[str, tuple[Callable[[], Any], float]], deadline_s: float, *, name: str = "task"
) -> dict[str, Outcome]:
    """Start every `(fn, limit_s)` at once; wait for each until `min(limit_s, deadline_s)`."""
    started = time.perf_counter()
    running: dict[str, tuple[_Task, float]] = {}
    for key, (fn, limit_s) in tasks.items():
        task = _Task(fn)
        threading.Thread(target=task.run, name=f"{name}-{key}", daemon=True).start()
        running[key] = (task, max(0.0, min(limit_s, deadline_s)))
    out: dict[str, Outcome] = {}
    for key, (task, limit) in sorted(running.items(), key=lambda item: item[1][1]):
        task.done.wait(max(0.0, started + limit - time.perf_counter()))
        if not task.done.is_set():
            out[key] = Outcome(timed_out=True, limit_s=limit, elapsed_s=time.perf_counter() - started)
        else:
            out[key] = Outcome(task.value, task.error, limit_s=limit, elapsed_s=task.elapsed_s)
    return {key: out[key] for key in tasks}
