"""MongoDB engine: connection policy and probe.

Connection policy (seed 000: serverless functions exhausted Atlas' pool):
maxPoolSize 1, maxIdleTimeMS 5000, waitQueueTimeoutMS 3000 and a short server
selection timeout; one client per URL per process, created lazily and reused
by warm invocations. TLS is required for non-loopback hosts unless
ALLOW_INSECURE_TRANSPORT is set.
"""

from __future__ import annotations

import threading
from typing import Any
from urllib.parse import parse_qs, urlsplit

from pymongo import MongoClient
from pymongo.errors import PyMongoError

from lastgood.redact import redact_text
from lastgood.settings import get_settings
from lastgood.sources.base import ProbeResult, Stopwatch, require_tls

_clients: dict[tuple[str, int | None], MongoClient[Any]] = {}
_lock = threading.Lock()


def _tls_requested(url: str) -> bool:
    if url.startswith("mongodb+srv://"):
        return True  # SRV URLs default to TLS
    query = {k.lower(): v for k, v in parse_qs(urlsplit(url).query).items()}
    return any(v and v[-1].lower() == "true" for k, v in query.items() if k in ("tls", "ssl"))


def get_client(url: str, *, server_selection_timeout_ms: int | None = None) -> MongoClient[Any]:
    """The process-wide client for `url` with the fail-fast pool policy."""
    settings = get_settings()
    require_tls(
        url, secure=_tls_requested(url), allow_insecure=settings.allow_insecure_transport, what="MongoDB"
    )
    key = (url, server_selection_timeout_ms)
    with _lock:
        client = _clients.get(key)
        if client is None:
            client = MongoClient(
                url,
                maxPoolSize=settings.mongo_max_pool_size,
                maxIdleTimeMS=settings.mongo_max_idle_time_ms,
                waitQueueTimeoutMS=settings.mongo_wait_queue_timeout_ms,
                serverSelectionTimeoutMS=server_selection_timeout_ms
                or settings.mongo_server_selection_timeout_ms,
                connectTimeoutMS=min(
                    5000, server_selection_timeout_ms or settings.mongo_server_selection_timeout_ms
                ),
                socketTimeoutMS=60000,
                appname="lastgood",
                connect=False,
            )
            _clients[key] = client
        return client


def close_clients() -> None:
    with _lock:
        for client in _clients.values():
            client.close()
        _clients.clear()


def probe(url: str, *, timeout_s: float, token: str | None = None) -> ProbeResult:
    """`ping` the server; reports the error class (redacted), never raises."""
    watch = Stopwatch()
    try:
        client = get_client(url, server_selection_timeout_ms=max(1, int(timeout_s * 1000)))
        client.admin.command("ping")
        return ProbeResult("mongodb", True, watch.ms)
    except PyMongoError as exc:
        return ProbeResult(
            "mongodb", False, watch.ms, f"{type(exc).__name__}: {redact_text(str(exc), (url,))}"[:300]
        )
