"""The fallback loader: what application code calls to read a dataset. It never returns empty data.

    from lastgood.site.loader import load
    ds = load("prompts")   # ds.items, ds.layer, ds.age_seconds, ds.stale

Chain (configurable per call, default `DEFAULT_CHAIN`):

- `memory`    — this process's warm cache (`LASTGOOD_CACHE_TTL_S`, default 60 s);
- `live`      — `live/data/<name>.json` in `SITE_BUCKET`;
- `last-good` — `last-good/data/<name>.json`;
- `mongodb`   — the dataset's query, with the fail-fast pool policy of seed 000;
- `bundled`   — `<name>.json` shipped inside the deployment (`LASTGOOD_BUNDLED_DIR`, else
                the layer's copy, else the project folder `bundled_dir` of lastgood.toml),
                refreshed by `lastgood bundle`.

The loader reads S3 directly (the fast client: 1 s connect, 2 s read, one
attempt — a slow bucket costs seconds, never a retry storm). Browsers read the
same objects through CloudFront (`/data/<name>.json`, live with last-good as
the failover origin); the loader runs server-side next to the bucket and needs
no CDN.

A layer's answer counts only if it parses as a JSON array, passes the
dataset's item schema and has at least `min_count` (and never zero) items —
a corrupt, truncated or emptied copy is skipped like a missing one. Age comes
from the object's `generated-at` metadata (else LastModified); for the bundled
copy from `bundled/_bundle.json` (else the file's mtime); MongoDB is fresh by
definition. Data older than the dataset's freshness budget is still served,
flagged `stale`, with a warning and a `StaleData` metric. Because regenerate
writes nothing when the content is unchanged, the age is that of the
*content* (when it was last published): a dataset's freshness budget should
be at least how long its content may legitimately stay the same.

Every layer that fails is logged with its reason; when a layer after the
first real one answers, a warning names it and the earlier reasons, and
`FallbackUsed` (dimensions dataset, layer = the layer that answered) is
emitted. If every layer fails: `logger.critical("CRITICAL: All fallbacks
failed")`, an `AllFallbacksFailed` metric, and `DataUnavailable` is raised.

Importing this module imports neither pymongo nor psycopg: the driver is
imported only when the `mongodb` layer is reached.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lastgood.core.config import DatasetConfig, LastgoodConfig, bundled_folder, get_config
from lastgood.core.errors import ConfigError, DataUnavailable
from lastgood.core.observability import emit_metrics, logger
from lastgood.core.redact import redact_text
from lastgood.site.documents import BundleIndex
from lastgood.site.guards import items_problem
from lastgood.site.keys import bundled_name

LAYERS = ("memory", "live", "last-good", "mongodb", "bundled")
DEFAULT_CHAIN: tuple[str, ...] = LAYERS


@dataclass(frozen=True)
class Dataset:
    """What `load` returns: never empty."""

    name: str
    items: list[Any]
    layer: str  # the layer that answered this call (`memory` for a warm-cache hit)
    age_seconds: float | None
    stale: bool
    origin: str  # the layer the data came from (same as `layer` unless served from memory)
    generated_at: datetime | None = None

    def __len__(self) -> int:
        return len(self.items)


class LayerFailed(Exception):
    """A layer could not give a usable answer (`reason` is safe to log)."""


@dataclass(frozen=True)
class _Answer:
    body: bytes | None  # raw JSON (S3, bundled) or None when `items` came parsed (mongodb)
    items: Any
    generated_at: datetime | None


_cache: dict[str, tuple[float, Dataset]] = {}
_cache_lock = threading.Lock()


def clear_cache() -> None:
    """Forget the warm cache (tests; a process that knows the data changed)."""
    with _cache_lock:
        _cache.clear()


def bundled_dir() -> Path:
    """`LASTGOOD_BUNDLED_DIR`, else the layer's copy, else the project's `bundled_dir` folder."""
    return bundled_folder()


def missing_bundled_copies(folder: Path | None = None, config: LastgoodConfig | None = None) -> list[str]:
    """The configured datasets without a bundled copy (first deploy: run `lastgood bundle`);
    `config check` warns about them, health may report them."""
    where = folder or bundled_dir()
    datasets = (config or get_config()).datasets
    return [ds.name for ds in datasets if not (where / bundled_name(ds.name)).is_file()]


def parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def parse_items(body: bytes) -> Any:
    """The JSON in `body`; `LayerFailed` names a corrupt/truncated document."""
    try:
        return json.loads(body)
    except UnicodeDecodeError:
        raise LayerFailed("corrupt JSON: not UTF-8") from None
    except json.JSONDecodeError as exc:
        raise LayerFailed(f"corrupt or truncated JSON: {exc.msg} at byte {exc.pos} of {len(body)}") from None


# --------------------------------------------------------------------------- layers


def _read_s3(dataset: DatasetConfig, key: str) -> _Answer:
    from botocore.exceptions import BotoCoreError, ClientError

    from lastgood.site.publish import SiteStore
    from lastgood.storage.s3 import error_code, is_not_found

    try:
        body, info = SiteStore.from_settings(fast=True).read(key)
    except ConfigError as exc:  # e.g. SITE_BUCKET unset: the next layer may still answer
        raise LayerFailed(str(exc)) from None
    except ClientError as exc:
        if is_not_found(exc):
            raise LayerFailed(f"s3://…/{key} does not exist") from None
        raise LayerFailed(f"S3 error {error_code(exc)} reading {key}") from None
    except BotoCoreError as exc:  # endpoint unreachable, timeouts
        raise LayerFailed(f"S3 unreachable: {type(exc).__name__}: {redact_text(str(exc))[:200]}") from None
    return _Answer(body, parse_items(body), parse_time(info.generated_at) or info.last_modified)


def _live(dataset: DatasetConfig) -> _Answer:
    from lastgood.site.keys import live_key

    return _read_s3(dataset, live_key(dataset.name))


def _last_good(dataset: DatasetConfig) -> _Answer:
    from lastgood.site.keys import last_good_key

    return _read_s3(dataset, last_good_key(dataset.name))


def _mongodb(dataset: DatasetConfig) -> _Answer:
    from lastgood.core.errors import SourceUnavailable
    from lastgood.site.query import query_documents, render

    try:
        rendered = render(query_documents(dataset))
    except (SourceUnavailable, ConfigError) as exc:
        raise LayerFailed(str(exc)) from None
    return _Answer(None, rendered.items, datetime.now(UTC))


def _bundled(dataset: DatasetConfig) -> _Answer:
    from lastgood.site.canonical import sha256_hex

    folder = bundled_dir()
    path = folder / bundled_name(dataset.name)
    try:
        body = path.read_bytes()
    except FileNotFoundError:
        raise LayerFailed(f"no bundled copy at {path}") from None
    except OSError as exc:
        raise LayerFailed(f"bundled copy unreadable: {type(exc).__name__}") from None
    items = parse_items(body)
    entry = BundleIndex.read(folder).entries.get(dataset.name)
    stamp = None
    if entry is not None and entry.sha256 == sha256_hex(body):
        stamp = parse_time(entry.generated_at)
    if stamp is None:
        stamp = datetime.fromtimestamp(path.stat().st_mtime, UTC)
    return _Answer(body, items, stamp)


READERS: dict[str, Callable[[DatasetConfig], _Answer]] = {
    "live": _live,
    "last-good": _last_good,
    "mongodb": _mongodb,
    "bundled": _bundled,
}


# --------------------------------------------------------------------------- load


def parse_chain(text: str | Sequence[str] | None) -> tuple[str, ...]:
    """`"live,bundled"` or a sequence → a validated chain (ConfigError lists the valid layers)."""
    if text is None:
        return DEFAULT_CHAIN
    parts = [p.strip() for p in text.split(",")] if isinstance(text, str) else [str(p) for p in text]
    parts = [p for p in parts if p]
    unknown = [p for p in parts if p not in LAYERS]
    if unknown or not parts:
        raise ConfigError(f"invalid loader chain {parts}: layers are {', '.join(LAYERS)}")
    return tuple(dict.fromkeys(parts))


def _from_memory(name: str, ttl: float) -> Dataset | None:
    if ttl <= 0:
        return None
    with _cache_lock:
        cached = _cache.get(name)
    if cached is None:
        return None
    stored_at, dataset = cached
    elapsed = time.monotonic() - stored_at
    if elapsed > ttl:
        return None
    age = None if dataset.age_seconds is None else dataset.age_seconds + elapsed
    return replace(dataset, layer="memory", age_seconds=age)


def load(name: str, *, chain: str | Sequence[str] | None = None) -> Dataset:
    """Dataset `name` from the first layer of `chain` that gives a valid, non-empty answer."""
    from lastgood.core.settings import get_settings

    dataset = get_config().dataset(name)
    order = parse_chain(chain)
    ttl = get_settings().loader_cache_ttl_s
    reasons: dict[str, str] = {}
    first_real = next((layer for layer in order if layer != "memory"), None)
    for layer in order:
        if layer == "memory":
            hit = _from_memory(name, ttl)
            if hit is not None:
                return hit
            continue  # a cold cache is not a failure
        try:
            answer = READERS[layer](dataset)
            problem = items_problem(answer.items, min_count=dataset.min_count, schema=dataset.item_schema)
            if problem is not None:
                raise LayerFailed(f"invalid: {problem}")
        except LayerFailed as exc:
            reasons[layer] = str(exc)
            logger.warning(
                f"loader: {name} layer {layer} failed: {exc}",
                extra={"dataset": name, "layer": layer, "reason": str(exc)},
            )
            continue
        return _serve(dataset, layer, answer, reasons, cache="memory" in order and ttl > 0, first=first_real)
    logger.critical(
        "CRITICAL: All fallbacks failed", extra={"dataset": name, "chain": list(order), "reasons": reasons}
    )
    emit_metrics({"AllFallbacksFailed": ("Count", 1)}, dataset=name)
    raise DataUnavailable(name, reasons)


def _serve(
    dataset: DatasetConfig,
    layer: str,
    answer: _Answer,
    reasons: dict[str, str],
    *,
    cache: bool,
    first: str | None,
) -> Dataset:
    now = datetime.now(UTC)
    age = None if answer.generated_at is None else max(0.0, (now - answer.generated_at).total_seconds())
    stale = age is None or age > dataset.freshness_seconds
    result = Dataset(dataset.name, answer.items, layer, age, stale, layer, answer.generated_at)
    if layer != first:
        logger.warning(
            f"loader: {dataset.name} served from fallback layer {layer}",
            extra={"dataset": dataset.name, "layer": layer, "earlier_layers": reasons},
        )
        emit_metrics({"FallbackUsed": ("Count", 1)}, dataset=dataset.name, layer=layer)
    if stale:
        logger.warning(
            f"loader: {dataset.name} from {layer} is stale "
            f"(age {'unknown' if age is None else f'{age:.0f}s'}, budget {dataset.freshness_seconds}s)",
            extra={"dataset": dataset.name, "layer": layer, "age_seconds": age},
        )
        emit_metrics({"StaleData": ("Count", 1)}, dataset=dataset.name)
    if cache:
        with _cache_lock:
            _cache[dataset.name] = (time.monotonic(), result)
    return result
