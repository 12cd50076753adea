"""PostgreSQL connection policy: TLS rule, psycopg connections and libpq arguments for the pg tools.

Non-loopback hosts need `sslmode=require`/verify-* unless ALLOW_INSECURE_TRANSPORT is set.
Its own module so the PITR paths (capture, slot, lag, base) connect without importing the
dump/restore engine (`lastgood.engines.postgres`) and its archive and compression modules.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit, urlunsplit

import psycopg

from lastgood.core.errors import ConfigError
from lastgood.core.settings import get_settings
from lastgood.engines.base import require_tls

_SECURE_MODES = {"require", "verify-ca", "verify-full"}


def check_transport(url: str) -> None:
    query = parse_qs(urlsplit(url).query)
    mode = (query.get("sslmode") or [""])[-1].lower()
    require_tls(
        url,
        secure=mode in _SECURE_MODES,
        allow_insecure=get_settings().allow_insecure_transport,
        what="PostgreSQL",
    )


def connect(url: str, *, timeout_s: float = 5.0, **kwargs: Any) -> psycopg.Connection[Any]:
    check_transport(url)
    return psycopg.connect(url, connect_timeout=max(1, round(timeout_s)), **kwargs)


def libpq_args(url: str) -> tuple[str, dict[str, str]]:
    """(`--dbname` value without the password, env with `PGPASSWORD`) for the pg tools."""
    check_transport(url)
    parts = urlsplit(url)
    if parts.scheme not in {"postgres", "postgresql"}:
        raise ConfigError(f"expected a postgres:// or postgresql:// URL, got scheme {parts.scheme!r}")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["PGAPPNAME"] = "lastgood"
    env.setdefault("PGCONNECT_TIMEOUT", "10")
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user, _, password = userinfo.partition(":")
        if password:
            env["PGPASSWORD"] = unquote(password)
        netloc = f"{user}@{host}" if user else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment)), env


def database_name(url: str) -> str:
    name = unquote(urlsplit(url).path.lstrip("/"))
    return name or "postgres"
