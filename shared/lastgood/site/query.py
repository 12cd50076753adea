"""Reading a dataset's documents from MongoDB and rendering them (regenerate and the loader).

The query uses the process-wide fail-fast client (`lastgood.engines.mongodb.get_client`:
maxPoolSize 1, waitQueueTimeoutMS 3000, short server selection): an exhausted
pool or a stopped server fails in seconds instead of stalling. `pymongo` is
imported only when a query actually runs, so importing this module (and the
loader) costs nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from lastgood.core.config import DatasetConfig
from lastgood.core.errors import SourceUnavailable
from lastgood.core.redact import redact_text
from lastgood.site.canonical import render_items, sha256_hex

QUERY_MAX_TIME_MS = 30_000
BATCH_SIZE = 1000


@dataclass(frozen=True)
class Rendered:
    """A dataset in its published form: canonical bytes, their SHA-256 and the parsed items."""

    body: bytes
    sha256: str
    items: list[Any]

    @property
    def count(self) -> int:
        return len(self.items)


def render(documents: Iterable[Any]) -> Rendered:
    """Canonical JSON array of `documents`; items are parsed back so guards see what readers see."""
    body = render_items(documents)
    items = json.loads(body)
    return Rendered(body, sha256_hex(body), items)


def query_documents(dataset: DatasetConfig) -> list[dict[str, Any]]:
    """The dataset's documents (filter, projection, sort from config) from `MONGODB_DB_NAME`.

    Raises `SourceUnavailable` (message redacted) when MongoDB cannot answer.
    """
    from pymongo.errors import PyMongoError

    from lastgood.core.settings import get_secret, get_settings
    from lastgood.engines.mongodb import get_client

    url = str(get_secret("MONGODB_URI"))
    try:
        client = get_client(url)
        collection = client[get_settings().mongodb_db_name][dataset.collection]
        cursor = collection.find(
            dataset.filter,
            dataset.projection,
            sort=[(field, direction) for field, direction in dataset.sort] or None,
            batch_size=BATCH_SIZE,
            max_time_ms=QUERY_MAX_TIME_MS,
        )
        return list(cursor)
    except PyMongoError as exc:
        text = redact_text(f"{type(exc).__name__}: {exc}", (url,))
        raise SourceUnavailable(f"mongodb query of {dataset.collection!r} failed: {text}"[:500]) from None
