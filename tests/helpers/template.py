"""template.yaml as plain data for the infrastructure tests.

cfn-lint's decoder understands the short CloudFormation tags (`!Ref`, `!Sub`, `!If`…) and
turns them into their long form (`{"Ref": ...}`), so assertions read like the template.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = ROOT / "template.yaml"
METRICS_DOC = ROOT / "docs" / "metrics.md"

FUNCTION_TYPE = "AWS::Serverless::Function"
ALARM_TYPE = "AWS::CloudWatch::Alarm"
SOURCES = ("postgres", "mongodb", "upstash")


@functools.cache
def _load() -> dict[str, Any]:
    from cfnlint.decode import cfn_yaml

    data: dict[str, Any] = cfn_yaml.load(str(TEMPLATE_PATH))
    return data


def template() -> dict[str, Any]:
    return _load()


def resources(type_: str | None = None) -> dict[str, dict[str, Any]]:
    """Logical id → resource, optionally only those of one type."""
    all_resources: dict[str, dict[str, Any]] = template()["Resources"]
    return {k: v for k, v in all_resources.items() if type_ is None or v["Type"] == type_}


def resource(logical_id: str) -> dict[str, Any]:
    found = resources().get(logical_id)
    assert found is not None, f"template.yaml has no resource {logical_id}"
    return found


def props(logical_id: str) -> dict[str, Any]:
    properties: dict[str, Any] = resource(logical_id).get("Properties", {})
    return properties


def functions() -> dict[str, dict[str, Any]]:
    return resources(FUNCTION_TYPE)


def globals_function() -> dict[str, Any]:
    section: dict[str, Any] = template()["Globals"]["Function"]
    return section


def function_setting(logical_id: str, key: str) -> Any:
    """A function property, falling back to Globals.Function (how SAM merges them)."""
    own = props(logical_id)
    return own[key] if key in own else globals_function().get(key)


def events(logical_id: str, type_: str | None = None) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = props(logical_id).get("Events", {})
    return {k: v for k, v in found.items() if type_ is None or v["Type"] == type_}


def ref(value: Any) -> str | None:
    """The logical id/parameter a `{"Ref": X}` points to, else None."""
    return value.get("Ref") if isinstance(value, dict) and set(value) == {"Ref"} else None


def getatt(value: Any) -> tuple[str, str] | None:
    if isinstance(value, dict) and set(value) == {"Fn::GetAtt"}:
        target = value["Fn::GetAtt"]
        if isinstance(target, str):
            logical_id, _, attribute = target.partition(".")
            return logical_id, attribute
        return target[0], target[1]
    return None


def sub_text(value: Any) -> str | None:
    """The format string of a `!Sub` (either form), else None."""
    if isinstance(value, dict) and set(value) == {"Fn::Sub"}:
        body = value["Fn::Sub"]
        return body if isinstance(body, str) else body[0]
    return None


def walk(node: Any) -> Iterator[Any]:
    """Every dict/list/scalar below `node`, depth first."""
    yield node
    if isinstance(node, dict):
        for child in node.values():
            yield from walk(child)
    elif isinstance(node, list):
        for child in node:
            yield from walk(child)


def inline_statements(logical_id: str) -> list[dict[str, Any]]:
    """IAM statements written inline in a function's Policies (through any `!If`)."""
    statements: list[dict[str, Any]] = []
    for node in walk(props(logical_id).get("Policies", [])):
        if isinstance(node, dict) and "Statement" in node:
            body = node["Statement"]
            statements.extend(body if isinstance(body, list) else [body])
    return statements


def policy_templates(logical_id: str) -> list[tuple[str, dict[str, Any]]]:
    """SAM policy templates (`- SomePolicy: {...}`) in a function's Policies, through `!If`."""
    found: list[tuple[str, dict[str, Any]]] = []
    for node in walk(props(logical_id).get("Policies", [])):
        if isinstance(node, dict) and len(node) == 1:
            (name, value) = next(iter(node.items()))
            if re.fullmatch(r"[A-Z][A-Za-z0-9]+Policy", name) and isinstance(value, dict):
                found.append((name, value))
    return found


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def metric_names_documented() -> set[str]:
    """Metric names written in backticks in docs/metrics.md."""
    return set(re.findall(r"`([A-Z][A-Za-z0-9]+)`", METRICS_DOC.read_text(encoding="utf-8")))
