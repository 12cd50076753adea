"""PostgreSQL engine: connection policy and probe.

Non-loopback hosts need `sslmode=require` (or verify-ca / verify-full) unless
ALLOW_INSECURE_TRANSPORT is set.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import psycopg

from lastgood.redact import redact_text
from lastgood.settings import get_settings
from lastgood.sources.base import ProbeResult, Stopwatch, require_tls

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


def probe(url: str, *, timeout_s: float, token: str | None = None) -> ProbeResult:
    watch = Stopwatch()
    try:
        with connect(url, timeout_s=timeout_s) as conn:
            conn.execute("SET statement_timeout = %s", (int(timeout_s * 1000),))
            row = conn.execute("SELECT current_setting('server_version')").fetchone()
        return ProbeResult("postgres", True, watch.ms, detail={"server_version": row[0] if row else None})
    except psycopg.Error as exc:
        return ProbeResult(
            "postgres", False, watch.ms, f"{type(exc).__name__}: {redact_text(str(exc), (url,))}"[:300]
        )
