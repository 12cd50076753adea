"""The collection workers of the MongoDB dump/restore: results in order, the first real failure
wins and stops the others, and the read-ahead thread stays bounded and hands errors over."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from lastgood.engines.mongodb_parallel import Stopped, prefetch, run_parallel


def test_results_come_back_in_the_order_of_the_items() -> None:
    def task(item: int, stop: threading.Event) -> int:
        time.sleep(0.01 * (5 - item))  # later items finish first
        return item * 10

    assert run_parallel([1, 2, 3, 4, 5], task, workers=4) == [10, 20, 30, 40, 50]


def test_the_first_failure_stops_the_running_tasks_and_is_the_error_raised() -> None:
    drained: list[int] = []
    started = threading.Barrier(3, timeout=10)

    def task(item: int, stop: threading.Event) -> int:
        if item < 3:
            started.wait()
        if item == 0:
            raise ValueError("collection 0 failed")
        if item < 3:  # neighbours mid-stream (5 s each if never told to stop)
            for _ in prefetch(iter(range(5000)), stop):
                time.sleep(0.001)
            drained.append(item)
        return item

    began = time.perf_counter()
    with pytest.raises(ValueError, match="collection 0 failed"):
        run_parallel([0, 1, 2, 3, 4, 5], task, workers=3)
    # the neighbours gave up (Stopped, never the error raised) instead of draining
    assert drained == [] and time.perf_counter() - began < 3


def test_a_neighbour_told_to_stop_raises_stopped() -> None:
    stop = threading.Event()
    stop.set()
    with pytest.raises(Stopped):
        list(prefetch(iter([1, 2, 3]), stop))


def test_prefetch_hands_the_producers_error_to_the_consumer_after_its_items() -> None:
    def source() -> Iterator[int]:
        yield 1
        yield 2
        raise OSError("stream broken")

    got: list[int] = []
    with pytest.raises(OSError, match="stream broken"):
        for item in prefetch(source(), threading.Event()):
            got.append(item)
    assert got == [1, 2]


def test_prefetch_reads_at_most_depth_items_ahead_and_ends_its_thread_when_left() -> None:
    produced: list[int] = []

    def source() -> Iterator[int]:
        for i in range(100):
            produced.append(i)
            yield i

    before = threading.active_count()
    items = prefetch(source(), threading.Event(), depth=2)
    assert next(items) == 0
    time.sleep(0.3)
    assert len(produced) <= 4  # the one handed out, `depth` queued, one waiting to be queued
    items.close()  # the consumer stops early
    assert threading.active_count() == before
