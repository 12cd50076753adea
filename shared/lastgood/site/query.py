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
from typing import Any

from lastgood.core.config import DatasetConfig
from lastgood.core.errors import SourceUnavailable
from lastgood.core.redact import redact_text
from lastgood.site.canonical import render_items, sha256_hex

QUERY_MAX_TIME_MS = 30_000
BATCH_SIZE = 1000


class Rendered:
    """A dataset in its published form: canonical bytes, their SHA-256 and the items as readers parse them.

    `items` is the body parsed back (what a reader of the published bytes gets), computed on
    first use: regenerate needs it only for an item schema (the other guards need the count,
    which is the number of documents rendered), the loader always.
    """

    __slots__ = ("_items", "body", "count", "sha256")

    def __init__(self, body: bytes, sha256: str, count: int) -> None:
        self.body, self.sha256, self.count = body, sha256, count
        self._items: list[Any] | None = None

    @property
    def items(self) -> list[Any]:
        if self._items is None:
            items = json.loads(self.body)
            if (
                not isinstance(items, list) or len(items) != self.count
            ):  # pragma: no cover - render's own bytes
                raise ValueError("rendered body is not the array of the documents rendered")
            self._items = items
        return self._items


def render(documents: Iterable[Any]) -> Rendered:
    """Canonical JSON array of `documents`: serialised once; `Rendered.items` parses on demand."""
    listed = documents if isinstance(documents, list) else list(documents)
    body = render_items(listed)
    return Rendered(body, sha256_hex(body), len(listed))


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
