"""Helpers for the health tests: the handler module loaded the way the invoker loads it,
fake probes for unit tests (no services), and the EMF records a run printed."""

from __future__ import annotations

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
