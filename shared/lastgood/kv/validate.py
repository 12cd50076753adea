"""Type checks for what callers hand the resilient KV, done before any I/O.

Keys and hash field names are `str` only. `bytes` are refused too: the mirror's
`_id` would become a BSON binary that never equals the text key Upstash stores,
so the same key would have two spellings. Values are what the API documents:
anything JSON represents without changing it (None, bool, int, finite float,
str, lists/tuples of those, dicts with `str` keys). Counts and seconds are
`int` (not `bool`). Anything else is a `TypeError` naming the method and what
was refused, so a MongoDB query document (`{"$regex": ...}`) can never be
used as a key.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from lastgood.kv.codec import dumps

MAX_DEPTH = 100  # nesting allowed inside a value (a self-referencing list is refused, not recursed)


def _refuse(method: str, what: str, got: str) -> TypeError:
    return TypeError(f"kv.{method}: {what}, got {got}; refused before any I/O")


def _describe(value: object) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text[:60]}{'…' if len(text) > 60 else ''}"


def key(method: str, value: object, *, what: str = "key") -> str:
    """`value` if it is a str key (or hash field name), else TypeError."""
    if not isinstance(value, str):
        raise _refuse(method, f"the {what} must be a str", _describe(value))
    return value


def _json_problem(value: object, depth: int = 0) -> str | None:
    """Why `value` would not round-trip through JSON unchanged (None when it does)."""
    if depth > MAX_DEPTH:
        return f"nesting deeper than {MAX_DEPTH} levels"
    if value is None or isinstance(value, bool | int | str):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else f"the float {value!r} (JSON has no NaN or Infinity)"
    if isinstance(value, list | tuple):
        for item in value:
            problem = _json_problem(item, depth + 1)
            if problem is not None:
                return problem
        return None
    if isinstance(value, dict):
        for name, item in value.items():
            if not isinstance(name, str):
                return f"a {type(name).__name__} object key (JSON object keys are str)"
            problem = _json_problem(item, depth + 1)
            if problem is not None:
                return problem
        return None
    return f"a {type(value).__name__}"


def json_text(method: str, value: object) -> str:
    """The JSON text stored for a value, or TypeError when JSON cannot hold it unchanged."""
    problem = _json_problem(value)
    if problem is not None:
        raise _refuse(method, "values must be JSON (None, bool, int, float, str, list, dict)", problem)
    return dumps(value)


def fields(method: str, values: object) -> Mapping[str, Any]:
    """A hash's field → value mapping with str names and JSON values."""
    if not isinstance(values, Mapping):
        raise _refuse(method, "the fields must be a mapping of str names to values", _describe(values))
    for name, item in values.items():
        key(method, name, what="field name")
        json_text(method, item)
    return values


def integer(method: str, value: object, *, what: str) -> int:
    """An int argument (a bool is refused: `incr(key, True)` is a bug, not 1)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise _refuse(method, f"{what} must be an int", _describe(value))
    return value
