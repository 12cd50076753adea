"""MongoDB connection policy, and the names and selection a dump and a restore share.

Connection policy (seed 000: serverless functions exhausted Atlas' pool):
maxPoolSize 1, maxIdleTimeMS 5000, waitQueueTimeoutMS 3000 and a short server
selection timeout; one client per URL per process, created lazily and reused
by warm invocations. TLS is required for non-loopback hosts unless
ALLOW_INSECURE_TRANSPORT is set.
"""

from __future__ import annotations

import fnmatch
import threading
from typing import Any
from urllib.parse import parse_qs, urlsplit

from bson.codec_options import CodecOptions
from bson.raw_bson import RawBSONDocument
from pymongo import MongoClient
from pymongo.errors import PyMongoError

from lastgood.core.settings import get_settings
from lastgood.engines.base import require_tls

# Documents stay raw BSON bytes from the server to the backup and back: no decode/re-encode.
RAW: CodecOptions[RawBSONDocument] = CodecOptions(document_class=RawBSONDocument)

_clients: dict[tuple[str, int | None], MongoClient[Any]] = {}
BULK_SOCKET_TIMEOUT_MS = 300_000
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


def bulk_client(url: str, workers: int) -> MongoClient[Any]:
    """The process-wide client for a dump or restore of `url`: the same policy as `get_client`
    but `workers + 1` connections, one per collection worked on in parallel (mongodump and
    mongorestore open as many). A backup run holds it for minutes, not per request."""
    get_client(url)  # the TLS rule, and the settings
    settings = get_settings()
    key = (url, -max(1, workers))  # negative: never a server-selection timeout of get_client's
    with _lock:
        client = _clients.get(key)
        if client is None:
            client = MongoClient(
                url,
                maxPoolSize=max(settings.mongo_max_pool_size, workers + 1),
                maxIdleTimeMS=settings.mongo_max_idle_time_ms,
                waitQueueTimeoutMS=settings.mongo_wait_queue_timeout_ms,
                serverSelectionTimeoutMS=settings.mongo_server_selection_timeout_ms,
                connectTimeoutMS=min(5000, settings.mongo_server_selection_timeout_ms),
                # a bulk insert can wait behind the other collections' (servers may serialise
                # writes per database); the run's own deadline bounds the whole
                socketTimeoutMS=BULK_SOCKET_TIMEOUT_MS,
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


# --------------------------------------------------------------------------- names and selection


def database_of(url: str, database: str | None = None) -> str:
    """`database` (the source's option) if set, else the one the URL names; MONGODB_DB_NAME otherwise."""
    if database:
        return database
    from pymongo.uri_parser import parse_uri

    try:
        named = parse_uri(url, validate=False, warn=True).get("database")
    except (PyMongoError, ValueError):
        named = None
    return str(named or get_settings().mongodb_db_name)


def url_database(url: str) -> str | None:
    path = urlsplit(url).path.lstrip("/")
    return path.split("?")[0] or None


def matches(namespace: str, patterns: list[str]) -> bool:
    coll = namespace.split(".", 1)[1]
    return any(fnmatch.fnmatchcase(namespace if "." in p else coll, p) for p in patterns)


def selected(namespace: str, include: list[str], exclude: list[str]) -> bool:
    if include and not matches(namespace, include):
        return False
    return not (exclude and matches(namespace, exclude))


def plain_collections(database: Any, skipped: list[str] | None = None) -> list[dict[str, Any]]:
    """Plain collections, by name; views, time series and `system.*` go to `skipped`."""
    out = []
    for info in database.list_collections():
        name = str(info["name"])
        if name.startswith("system.") or info.get("type", "collection") != "collection":
            if skipped is not None:
                skipped.append(f"{name} ({info.get('type', 'system')})")
            continue
        out.append(info)
    return sorted(out, key=lambda i: str(i["name"]))
