"""The fallback loader: what application code calls to read a dataset. It never returns empty data.

    from lastgood.loader import load
    ds = load("prompts")        # ds.items, ds.layer, ds.age_seconds, ds.stale

Default chain: `memory` (warm cache, TTL) → `live` (S3 live/) → `last-good`
(S3 last-good/) → `mongodb` (fail-fast pool policy) → `bundled` (the copy
shipped inside the deployment, refreshed by `lastgood bundle`). A layer's
answer counts only if it parses, validates (shape, min_count, schema) and is
not empty. Data older than the dataset's freshness budget is served with a
warning and a `StaleData` metric rather than nothing. Each fallback logs which
layer failed and why, and `FallbackUsed` (dimension `layer`) is emitted when a
layer after `live` answered. If every layer fails: `CRITICAL: All fallbacks
failed` is logged and `DataUnavailable` raised.

S3 is read with the fast client (1 s connect, 2 s read, no retries): a slow
bucket costs seconds, not a retry storm. The loader imports no PostgreSQL
driver, and pymongo only when the `mongodb` layer is reached.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lastgood.config import DatasetConfig, get_config
from lastgood.errors import DataUnavailable, GuardRejected
from lastgood.guards import validate_items
from lastgood.observability import emit_metrics, logger
from lastgood.redact import redact_text

DEFAULT_CHAIN = ("memory", "live", "last-good", "mongodb", "bundled")
PRIMARY_LAYERS = {"memory", "live"}


@dataclass
class Dataset:
    name: str
    items: list[Any]
    layer: str
    age_seconds: float | None
    stale: bool

    def __len__(self) -> int:
        return len(self.items)


@dataclass
class _Answer:
    items: Any
    generated_at: datetime | None


_cache: dict[str, tuple[float, Dataset]] = {}
_cache_lock = threading.Lock()


def cache_ttl_s() -> float:
    return float(os.environ.get("LOADER_CACHE_TTL_S", "60"))


def clear_cache() -> None:
    with _cache_lock:
        _cache.clear()


def bundled_dir() -> Path:
    from lastgood.settings import get_settings, package_dir

    configured = get_settings().bundled_dir
    return Path(configured) if configured else package_dir() / "bundled"


def parse_payload(raw: bytes) -> tuple[Any, datetime | None]:
    """A dataset file is a JSON array, or the bundled envelope {"generated_at", "items"}."""
    doc = json.loads(raw)
    if isinstance(doc, dict) and "items" in doc:
        stamp = doc.get("generated_at")
        return doc["items"], _parse_time(stamp) if isinstance(stamp, str) else None
    return doc, None


def _parse_time(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        return None


def _from_s3(key_fn: Callable[[str], str]) -> Callable[[DatasetConfig], _Answer]:
    def read(dataset: DatasetConfig) -> _Answer:
        from lastgood.publish import SiteStore

        body, modified, metadata = SiteStore.from_settings(fast=True).read(key_fn(dataset.name))
        items, _ = parse_payload(body)
        stamp = _parse_time(metadata.get("generated-at", "")) if metadata.get("generated-at") else None
        return _Answer(items, stamp or modified)

    return read


def _from_mongodb(dataset: DatasetConfig) -> _Answer:
    from lastgood.canonical import render
    from lastgood.regenerate import query_dataset

    return _Answer(json.loads(render(query_dataset(dataset))), datetime.now(UTC))


def _from_bundled(dataset: DatasetConfig) -> _Answer:
    path = bundled_dir() / f"{dataset.name}.json"
    items, stamp = parse_payload(path.read_bytes())
    return _Answer(items, stamp)


def _layers() -> dict[str, Callable[[DatasetConfig], _Answer]]:
    from lastgood.publish import last_good_key, live_key

    return {
        "live": _from_s3(live_key),
        "last-good": _from_s3(last_good_key),
        "mongodb": _from_mongodb,
        "bundled": _from_bundled,
    }


def _describe(exc: BaseException) -> str:
    if isinstance(exc, GuardRejected):
        return f"invalid: {exc.reason}"
    if isinstance(exc, FileNotFoundError):
        return "no bundled copy"
    if isinstance(exc, json.JSONDecodeError):
        return f"corrupt JSON ({exc.msg} at byte {exc.pos})"
    return redact_text(f"{type(exc).__name__}: {exc}")[:300]


def load(name: str, *, chain: tuple[str, ...] | list[str] | None = None) -> Dataset:
    """Load dataset `name` through the fallback chain (see the module docstring)."""
    dataset = get_config().dataset(name)
    order = tuple(chain or DEFAULT_CHAIN)
    unknown = [layer for layer in order if layer not in DEFAULT_CHAIN]
    if unknown:
        raise ValueError(f"unknown loader layers {unknown}; valid: {', '.join(DEFAULT_CHAIN)}")
    layers = _layers()
    reasons: dict[str, str] = {}
    for layer in order:
        if layer == "memory":
            with _cache_lock:
                cached = _cache.get(name)
            if cached and time.monotonic() - cached[0] <= cache_ttl_s():
                return cached[1]
            reasons["memory"] = "cold" if not cached else "expired"
            continue
        try:
            answer = layers[layer](dataset)
            items = validate_items(dataset, answer.items)
        except Exception as exc:  # each layer's failure is logged and the next layer tried
            reasons[layer] = _describe(exc)
            logger.warning(
                "loader layer failed", extra={"dataset": name, "layer": layer, "reason": reasons[layer]}
            )
            continue
        now = datetime.now(UTC)
        age = (now - answer.generated_at).total_seconds() if answer.generated_at else None
        stale = age is None or age > dataset.freshness_seconds
        result = Dataset(name, list(items), layer, age, stale)
        if layer not in PRIMARY_LAYERS:
            logger.warning(
                "loader fell back",
                extra={"dataset": name, "layer": layer, "earlier_layers": reasons},
            )
            emit_metrics({"FallbackUsed": ("Count", 1)}, dataset=name, layer=layer)
        if stale:
            logger.warning(
                "serving stale data",
                extra={
                    "dataset": name,
                    "layer": layer,
                    "age_seconds": age,
                    "budget": dataset.freshness_seconds,
                },
            )
            emit_metrics({"StaleData": ("Count", 1)}, dataset=name)
        if "memory" in order:
            with _cache_lock:
                _cache[name] = (time.monotonic(), result)
        return result
    logger.critical("CRITICAL: All fallbacks failed", extra={"dataset": name, "reasons": reasons})
    emit_metrics({"AllFallbacksFailed": ("Count", 1)}, dataset=name)
    raise DataUnavailable(name, reasons)
