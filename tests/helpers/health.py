"""Helpers for the health tests: the handler module loaded the way the invoker loads it,
fake probes for unit tests (no services), and the EMF records a run printed."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

from lastgood.engines.base import ProbeResult

ROOT = Path(__file__).resolve().parents[2]

# Every variable a health probe reads to decide whether its dependency is configured.
DEPENDENCY_VARIABLES = (
    "MONGODB_URI",
    "DATABASE_URL",
    "UPSTASH_REDIS_REST_URL",
    "UPSTASH_REDIS_REST_TOKEN",
    "BACKUP_BUCKET",
    "SITE_BUCKET",
)


def load_health_handler() -> ModuleType:
    """A fresh import of functions/health/app.py (a new resolver per test)."""
    path = ROOT / "functions" / "health" / "app.py"
    spec = importlib.util.spec_from_file_location(f"health_app_{time.monotonic_ns()}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def unset_dependencies(monkeypatch: Any) -> None:
    """No dependency configured, by any route get_secret knows (env, secret ARN, SSM)."""
    for name in DEPENDENCY_VARIABLES:
        for suffix in ("", "_SECRET_ARN", "_SSM_PARAM"):
            monkeypatch.delenv(name + suffix, raising=False)


def fixed_probe(name: str, ok: bool, latency_ms: float = 1.5, error: str | None = None) -> Any:
    def probe(timeout_s: float) -> ProbeResult:
        return ProbeResult(name, ok, latency_ms, None if ok else (error or "ConnectionRefused: down"))

    return probe


def sleeping_probe(name: str, seconds: float) -> Any:
    def probe(timeout_s: float) -> ProbeResult:
        time.sleep(seconds)
        return ProbeResult(name, True, seconds * 1000)

    return probe


def emf_records(text: str) -> list[dict[str, Any]]:
    """The EMF documents among printed lines (Powertools prints one JSON object per line)."""
    records = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{") and '"_aws"' in line:
            records.append(json.loads(line))
    return records


def metric_names(records: list[dict[str, Any]]) -> set[str]:
    return {m["Name"] for doc in records for d in doc["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]}


def saved_environ() -> Iterator[None]:
    """Restore os.environ exactly (the invoker applies template variables to the process)."""
    saved = dict(os.environ)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


# --------------------------------------------------------------------------- fault tests (issue 14)


def closed_port() -> int:
    """A loopback port nothing listens on (bound and released)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def blackhole_server() -> Iterator[str]:
    """A TCP server on loopback that accepts every connection and never answers (a hung endpoint)."""
    import socket
    import threading

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    server.settimeout(0.2)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            held.append(conn)  # read nothing, answer nothing

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(2)
        for conn in held:
            conn.close()
        server.close()


def call_within(seconds: float, fn: Any, *args: Any) -> Any:
    """`fn(*args)` in a daemon thread; fails the test if it has not returned within `seconds`."""
    import threading

    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = fn(*args)
        except BaseException as exc:  # re-raised in the test's thread
            box["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        raise AssertionError(f"{getattr(fn, '__name__', fn)} did not answer within {seconds:g}s")
    if "error" in box:
        raise box["error"]
    return box["value"]


def pg_sessions(devstack: Any, database: str, *, at_least: int | None = None) -> int:
    """`pg_stat_database.sessions` of `database`, read from another database once it has settled
    (a closed session's statistics reach the shared counters a moment after it ends)."""
    import psycopg

    base = devstack.env["DATABASE_URL"].rsplit("/", 1)[0]
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        last, stable_since = -1, time.monotonic()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            conn.execute("SELECT pg_stat_clear_snapshot()")
            row = conn.execute(
                "SELECT sessions FROM pg_stat_database WHERE datname = %s", (database,)
            ).fetchone()
            value = int(row[0]) if row else 0
            if value != last:
                last, stable_since = value, time.monotonic()
            elif time.monotonic() - stable_since > 1.2 and (at_least is None or value >= at_least):
                return value
            time.sleep(0.1)
        return last


def valkey_command_calls(devstack: Any, command: str) -> int:
    """How many times Valkey (behind the Upstash REST front) has run `command` (INFO commandstats)."""
    import valkey

    client = valkey.Valkey.from_url(devstack.env["REDIS_URL"])
    try:
        stats = client.info("commandstats")
    finally:
        client.close()
    entry = stats.get(f"cmdstat_{command.lower()}") or {}
    return int(entry.get("calls", 0))


@contextlib.contextmanager
def mongo_pool_connections() -> Iterator[list[Any]]:
    """The pooled connections MongoDB clients created inside the block (pymongo CMAP events),
    for clients created inside it (register first, then create the client)."""
    from pymongo import monitoring

    created: list[Any] = []

    class Listener(monitoring.ConnectionPoolListener):
        def connection_created(self, event: Any) -> None:
            created.append(event.address)

        def pool_created(self, event: Any) -> None: ...
        def pool_ready(self, event: Any) -> None: ...
        def pool_cleared(self, event: Any) -> None: ...
        def pool_closed(self, event: Any) -> None: ...
        def connection_ready(self, event: Any) -> None: ...
        def connection_closed(self, event: Any) -> None: ...
        def connection_check_out_started(self, event: Any) -> None: ...
        def connection_check_out_failed(self, event: Any) -> None: ...
        def connection_checked_out(self, event: Any) -> None: ...
        def connection_checked_in(self, event: Any) -> None: ...

    listener = Listener()
    monitoring.register(listener)
    try:
        yield created
    finally:
        with contextlib.suppress(ValueError):
            monitoring._LISTENERS.cmap_listeners.remove(listener)
