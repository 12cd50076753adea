"""Collections in parallel, and a read-ahead thread inside each, for the MongoDB dump and restore.

`run_parallel` runs one task per collection on `workers` threads (mongodump's and
mongorestore's `--numParallelCollections`, default 4). The first failure sets the shared
`stop` event, so the other tasks give up at their next batch (their open backup objects
are aborted by their own `with` blocks), waits for every task to end, then raises that
first failure: nothing half-done is left running and the caller's commit never happens.

`prefetch` moves an iterator (a cursor's raw batches, a gunzipped BSON stream cut into
insert batches) onto a thread of its own, at most `depth` items ahead, so the server's work
and the client's (gzip, SHA-256, upload; gunzip, decode) overlap. Memory stays bounded by
`depth` items per collection.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait

PARALLEL_COLLECTIONS = 4  # mongodump / mongorestore --numParallelCollections default


class Stopped(Exception):
    """A task gave up because another one failed (never the error the caller sees)."""


def run_parallel[T, R](
    items: list[T], task: Callable[[T, threading.Event], R], *, workers: int = PARALLEL_COLLECTIONS
) -> list[R]:
    """`task(item, stop)` for every item on up to `workers` threads; results in `items` order.

    On the first exception: `stop` is set, pending tasks are cancelled, running ones are
    awaited, and the first real exception (not a `Stopped`) is raised."""
    stop = threading.Event()
    if workers <= 1 or len(items) <= 1:
        return [task(item, stop) for item in items]
    with ThreadPoolExecutor(max_workers=min(workers, len(items)), thread_name_prefix="mongo-coll") as pool:
        futures: list[Future[R]] = [pool.submit(task, item, stop) for item in items]
        wait(futures, return_when=FIRST_EXCEPTION)
        failure = next((f.exception() for f in futures if f.done() and f.exception() is not None), None)
        if failure is not None:
            stop.set()
            for future in futures:
                future.cancel()
            wait(futures)
            first = next(
                (
                    exc
                    for f in futures
                    if not f.cancelled()
                    and (exc := f.exception()) is not None
                    and not isinstance(exc, Stopped)
                ),
                failure,
            )
            raise first
        return [f.result() for f in futures]


_END = object()


def prefetch[T](source: Iterable[T], stop: threading.Event, *, depth: int = 2) -> Iterator[T]:
    """Iterate `source` on a thread of its own, up to `depth` items ahead of the consumer.

    An exception in `source` is re-raised in the consumer; when the consumer stops early
    (or `stop` is set) the producer thread ends at its next item."""
    slots: queue.Queue[object] = queue.Queue(maxsize=max(1, depth))
    quit_ = threading.Event()

    def put(item: object) -> bool:
        while not (quit_.is_set() or stop.is_set()):
            try:
                slots.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in source:
                if not put(item):
                    return
            put(_END)
        except BaseException as exc:  # handed to the consumer
            put(exc)

    thread = threading.Thread(target=produce, name="mongo-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            if stop.is_set():
                raise Stopped("another collection failed")
            try:
                item = slots.get(timeout=0.1)
            except queue.Empty:
                continue
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]
    finally:
        quit_.set()
        thread.join()
