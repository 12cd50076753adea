"""Publishing guards: bad data is never published (pure, no I/O).

Checked in order: the result is a list, not empty, has at least `min_count`
items, has not shrunk by more than `max_shrink` against the last good count,
and every item matches the dataset's item schema. The loader applies the same
`validate_items` to every layer's answer.
"""

from __future__ import annotations

from typing import Any

from lastgood.config import DatasetConfig
from lastgood.errors import GuardRejected

_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "null": (type(None),),
}


def schema_errors(item: Any, schema: dict[str, Any], path: str = "$") -> list[str]:
    """The subset of JSON Schema the dataset configs use: type (or list of types), required,
    properties (recursively), items, enum, minLength, minimum."""
    errors: list[str] = []
    wanted = schema.get("type")
    if wanted is not None:
        names = wanted if isinstance(wanted, list) else [wanted]
        ok = False
        for name in names:
            kinds = _TYPES.get(name, ())
            if isinstance(item, bool) and name in ("integer", "number"):
                continue
            if isinstance(item, kinds):
                ok = True
        if not ok:
            return [f"{path}: expected {'/'.join(names)}, got {type(item).__name__}"]
    if "enum" in schema and item not in schema["enum"]:
        errors.append(f"{path}: {item!r} not one of {schema['enum']}")
    if isinstance(item, str) and len(item) < int(schema.get("minLength", 0)):
        errors.append(f"{path}: shorter than {schema['minLength']}")
    numeric = isinstance(item, int | float) and not isinstance(item, bool)
    if numeric and "minimum" in schema and item < schema["minimum"]:
        errors.append(f"{path}: {item} < minimum {schema['minimum']}")
    if isinstance(item, dict):
        for key in schema.get("required", []):
            if key not in item:
                errors.append(f"{path}: missing required {key!r}")
        for key, sub in (schema.get("properties") or {}).items():
            if key in item:
                errors.extend(schema_errors(item[key], sub, f"{path}.{key}"))
    if isinstance(item, list) and isinstance(schema.get("items"), dict):
        for index, element in enumerate(item):
            errors.extend(schema_errors(element, schema["items"], f"{path}[{index}]"))
    return errors


def validate_items(dataset: DatasetConfig, items: Any) -> list[Any]:
    """Shape, non-empty, min_count and schema; raises GuardRejected naming the first problems."""
    if not isinstance(items, list):
        raise GuardRejected(dataset.name, f"expected a JSON array of items, got {type(items).__name__}")
    if not items:
        raise GuardRejected(dataset.name, "empty result: never publish an empty dataset")
    if len(items) < dataset.min_count:
        raise GuardRejected(dataset.name, f"{len(items)} items, below min_count {dataset.min_count}")
    if dataset.item_schema:
        problems: list[str] = []
        bad = 0
        for index, item in enumerate(items):
            errs = schema_errors(item, dataset.item_schema, f"$[{index}]")
            if errs:
                bad += 1
                problems.extend(errs[:2])
        if bad:
            raise GuardRejected(
                dataset.name, f"{bad} of {len(items)} items fail the schema: {'; '.join(problems[:3])}"
            )
    return items


def check_shrink(dataset: DatasetConfig, count: int, previous_count: int | None) -> None:
    """Refuse a sudden drop: more than `max_shrink` (a fraction) below the last good count."""
    if previous_count is None or previous_count <= 0:
        return
    floor = previous_count * (1 - dataset.max_shrink)
    if count < floor:
        drop = 1 - count / previous_count
        raise GuardRejected(
            dataset.name,
            f"{count} items is a {drop:.0%} drop from the last good {previous_count} "
            f"(max_shrink {dataset.max_shrink:.0%})",
        )


def check(dataset: DatasetConfig, items: Any, previous_count: int | None) -> list[Any]:
    validate_items(dataset, items)
    check_shrink(dataset, len(items), previous_count)
    return list(items)
