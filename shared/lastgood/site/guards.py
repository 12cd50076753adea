"""Publishing guards: bad data is never published (pure: no I/O).

Checked in this order, the first failure wins:

1. shape — the dataset is a JSON array;
2. never empty — zero items is refused whatever `min_count` says;
3. `min_count` — at least this many items;
4. `max_shrink` — no drop of more than this fraction against the baseline:
   the largest count published within the dataset's `shrink_window`, at least
   the last good count (0.5: 296 → 147 is refused, 296 → 148 passes; 1.0
   allows any drop except to empty). Regenerate computes the baseline
   (`site.history`); a series of small drops is measured against the largest;
5. item schema — every item matches the dataset's schema.

The loader applies `validate_items` (1, 2, 3, 5) to every layer's answer, so
a corrupt or truncated copy is skipped exactly like regenerate refuses one.

Item schemas use a small subset of JSON Schema, enough for "these fields
exist and have these types": `type` (a name or a list of names: object,
array, string, integer, number, boolean, null), `required`, `properties`
(recursive), `items`, `enum`, `minLength`, `minimum`, `maximum`,
`additionalProperties: false`; `title`, `description`, `$schema`, `$comment`
are ignored. Any other keyword is a config error (`check_schema`), so a
schema is never silently half-applied. Kept in-house rather than depending on
`jsonschema`: one small pure function, no extra cold-import cost in every
function that loads data.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from lastgood.core.errors import ConfigError, GuardRejected

TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "null": (type(None),),
}
KEYWORDS = {
    "type",
    "required",
    "properties",
    "items",
    "enum",
    "minLength",
    "minimum",
    "maximum",
    "additionalProperties",
}
ANNOTATIONS = {"title", "description", "$schema", "$comment"}
MAX_REPORTED = 3  # problems named in a rejection reason (the total is always given)


def check_schema(schema: Any, path: str = "schema") -> None:
    """Refuse keywords this validator does not implement (ConfigError names the path)."""
    if not isinstance(schema, dict):
        raise ConfigError(f"{path}: a schema must be an object, got {type(schema).__name__}")
    unknown = set(schema) - KEYWORDS - ANNOTATIONS
    if unknown:
        raise ConfigError(
            f"{path}: unsupported schema keyword(s) {sorted(unknown)}; supported: {sorted(KEYWORDS)}"
        )
    names = schema.get("type")
    for name in names if isinstance(names, list) else [names] if names is not None else []:
        if name not in TYPES:
            raise ConfigError(f"{path}.type: unknown type {name!r}; expected one of {sorted(TYPES)}")
    required = schema.get("required", [])
    if not isinstance(required, list) or not all(isinstance(k, str) for k in required):
        raise ConfigError(f"{path}.required: expected a list of property names")
    ap = schema.get("additionalProperties", True)
    if not isinstance(ap, bool):
        raise ConfigError(f"{path}.additionalProperties: only true/false are supported")
    for key, sub in (schema.get("properties") or {}).items():
        check_schema(sub, f"{path}.properties.{key}")
    if "items" in schema:
        check_schema(schema["items"], f"{path}.items")


def _is_type(value: Any, name: str) -> bool:
    if isinstance(value, bool) and name in ("integer", "number"):
        return False  # JSON booleans are not numbers (Python's bool is an int)
    if name == "integer" and isinstance(value, float):
        return value.is_integer()
    return isinstance(value, TYPES[name])


def schema_errors(value: Any, schema: dict[str, Any], path: str = "$") -> list[str]:
    """Every way `value` fails `schema` (empty list: valid)."""
    wanted = schema.get("type")
    if wanted is not None:
        names = wanted if isinstance(wanted, list) else [wanted]
        if not any(_is_type(value, n) for n in names):
            return [f"{path}: expected {'/'.join(names)}, got {_json_type(value)}"]
    errors: list[str] = []
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{path}: {value!r} is not one of {schema['enum']}")
    if isinstance(value, str) and "minLength" in schema and len(value) < schema["minLength"]:
        errors.append(f"{path}: shorter than minLength {schema['minLength']}")
    if isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            errors.append(f"{path}: {value} is below minimum {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            errors.append(f"{path}: {value} is above maximum {schema['maximum']}")
    if isinstance(value, dict):
        properties = schema.get("properties") or {}
        for key in schema.get("required", []):
            if key not in value:
                errors.append(f"{path}: missing required {key!r}")
        for key, sub in properties.items():
            if key in value:
                errors.extend(schema_errors(value[key], sub, f"{path}.{key}"))
        if schema.get("additionalProperties") is False:
            extra = sorted(set(value) - set(properties))
            if extra:
                errors.append(f"{path}: unexpected properties {extra}")
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        for index, element in enumerate(value):
            errors.extend(schema_errors(element, schema["items"], f"{path}[{index}]"))
    return errors


def _json_type(value: Any) -> str:
    for name in ("null", "boolean", "integer", "number", "string", "array", "object"):
        if _is_type(value, name):
            return name
    return type(value).__name__


def compile_check(schema: dict[str, Any]) -> Callable[[Any], bool]:
    """A fast yes/no validator equivalent to `schema_errors(value, schema) == []`.

    Datasets have up to ~100k items: the detailed `schema_errors` runs only for
    the few items this rejects (to name the problems).
    """
    checks: list[Callable[[Any], bool]] = []
    wanted = schema.get("type")
    if wanted is not None:
        names = list(wanted) if isinstance(wanted, list) else [wanted]
        simple = {"string": str, "object": dict, "array": list}
        if len(names) == 1 and names[0] in simple:
            kind = simple[names[0]]
            checks.append(lambda v: isinstance(v, kind))
        else:
            checks.append(lambda v: any(_is_type(v, n) for n in names))
    if "enum" in schema:
        allowed = schema["enum"]
        checks.append(lambda v: v in allowed)
    if "minLength" in schema:
        min_length = schema["minLength"]
        checks.append(lambda v: not isinstance(v, str) or len(v) >= min_length)
    if "minimum" in schema:
        low = schema["minimum"]
        checks.append(lambda v: not isinstance(v, int | float) or isinstance(v, bool) or v >= low)
    if "maximum" in schema:
        high = schema["maximum"]
        checks.append(lambda v: not isinstance(v, int | float) or isinstance(v, bool) or v <= high)
    required = list(schema.get("required", []))
    properties = {k: compile_check(sub) for k, sub in (schema.get("properties") or {}).items()}
    closed = schema.get("additionalProperties") is False
    if required or properties or closed:

        def check_object(v: Any) -> bool:
            if not isinstance(v, dict):
                return True
            for key in required:
                if key not in v:
                    return False
            for key, sub in properties.items():
                if key in v and not sub(v[key]):
                    return False
            return not (closed and not set(v) <= properties.keys())

        checks.append(check_object)
    if isinstance(schema.get("items"), dict):
        element = compile_check(schema["items"])
        checks.append(lambda v: not isinstance(v, list) or all(element(e) for e in v))
    if not checks:
        return lambda v: True
    if len(checks) == 1:
        return checks[0]
    return lambda v: all(c(v) for c in checks)


def items_problem(items: Any, *, min_count: int, schema: dict[str, Any] | None) -> str | None:
    """Why `items` is not a publishable/servable dataset (None: it is). Guards 1, 2, 3, 5."""
    if not isinstance(items, list):
        return f"expected a JSON array of items, got {_json_type(items)}"
    if not items:
        return "empty result: an empty dataset is never published or served"
    if len(items) < min_count:
        return f"{len(items)} items is below min_count {min_count}"
    if schema:
        valid = compile_check(schema)
        bad = [index for index, item in enumerate(items) if not valid(item)]
        if bad:
            problems: list[str] = []
            for index in bad:
                problems.extend(schema_errors(items[index], schema, f"$[{index}]"))
                if len(problems) >= MAX_REPORTED:
                    break
            shown = "; ".join(problems[:MAX_REPORTED])
            return f"{len(bad)} of {len(items)} items fail the schema: {shown}"
    return None


def shrink_problem(
    count: int, previous_count: int | None, max_shrink: float, baseline: str = "the last good"
) -> str | None:
    """Guard 4: a sudden drop against the baseline count (None: acceptable or no baseline).

    `baseline` names where `previous_count` comes from in the reason.
    """
    if previous_count is None or previous_count <= 0:
        return None
    floor = previous_count * (1 - max_shrink)
    if count < floor:
        drop = 1 - count / previous_count
        return (
            f"{count} items is a {drop:.0%} drop from {baseline} {previous_count} "
            f"(max_shrink {max_shrink:.0%} allows at least {_ceil(floor)})"
        )
    return None


def _ceil(value: float) -> int:
    whole = int(value)
    return whole if whole == value else whole + 1


def evaluate(
    items: Any,
    *,
    min_count: int,
    max_shrink: float,
    previous_count: int | None,
    schema: dict[str, Any] | None,
    baseline: str = "the last good",
) -> str | None:
    """All guards in order; the first reason to refuse, or None."""
    reason = items_problem(items, min_count=min_count, schema=schema)
    if reason is None:
        reason = shrink_problem(len(items), previous_count, max_shrink, baseline)
    return reason


def guard(
    dataset: Any, items: Sequence[Any] | Any, previous_count: int | None, baseline: str = "the last good"
) -> None:
    """`evaluate` for a `DatasetConfig`; raises `GuardRejected(dataset, reason)`."""
    reason = evaluate(
        items,
        min_count=dataset.min_count,
        max_shrink=dataset.max_shrink,
        previous_count=previous_count,
        schema=dataset.item_schema,
        baseline=baseline,
    )
    if reason is not None:
        raise GuardRejected(dataset.name, reason)
