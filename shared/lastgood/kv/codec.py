"""What the resilient KV stores and speaks: JSON value encoding and the Upstash client it needs.

This is the only kv module that imports the Upstash types and errors (`get_kv`
imports the `UpstashRest` client itself); the other kv modules take `Arg`,
`Reply`, the Upstash errors and `Primary` from here.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from lastgood.engines.upstash_rest import Arg, Reply, UpstashCommandError, UpstashError, UpstashRateLimited

__all__ = [
    "Arg",
    "Primary",
    "Reply",
    "UpstashCommandError",
    "UpstashError",
    "UpstashRateLimited",
    "dumps",
    "loads",
    "pairs",
]


class Primary(Protocol):
    """What ResilientKV needs from the Upstash client (`UpstashRest`)."""

    def command(self, *args: Arg) -> Reply: ...

    def pipeline(self, commands: Any, *, raise_on_error: bool = True) -> list[Reply]: ...


def dumps(value: Any) -> str:
    """The JSON text stored for a value (compact, stable key order, UTF-8)."""
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def loads(raw: Reply) -> Any:
    if raw is None:
        return None
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8")
    if isinstance(raw, int):
        return raw
    if isinstance(raw, list):
        raise TypeError("expected a scalar reply")
    try:
        return json.loads(raw)
    except ValueError:
        return raw  # a value written by another client that is not JSON: hand back the text


def pairs(reply: Reply) -> dict[str, Any]:
    """An HGETALL reply (flat name, value, … list) as a dict of decoded values."""
    items = reply if isinstance(reply, list) else []
    out: dict[str, Any] = {}
    for name, value in zip(items[0::2], items[1::2], strict=True):
        out[name.decode("utf-8") if isinstance(name, bytes) else str(name)] = loads(value)
    return out
