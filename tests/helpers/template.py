"""template.yaml as plain data for the infrastructure tests.

cfn-lint's decoder understands the short CloudFormation tags (`!Ref`, `!Sub`, `!If`…) and
turns them into their long form (`{"Ref": ...}`), so assertions read like the template.
`template()` is the template as CloudFormation sees it after AWS::LanguageExtensions: the
`Fn::ForEach` loops expanded and `Fn::FindInMap` over literal keys resolved (`expand`), so a
per-source resource is asserted by its logical id (`BackupLateAlarmPostgres`).
"""

from __future__ import annotations

import copy
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
SOURCES = ("postgres", "mongodb", "upstash")  # the packaged demo config's sources


def load(path: Path) -> dict[str, Any]:
    """A template file (YAML with short tags, or JSON) as plain long-form data."""
    import json

    from cfnlint.decode import cfn_json, cfn_yaml

    loader = cfn_json if path.suffix == ".json" else cfn_yaml
    data: dict[str, Any] = json.loads(json.dumps(loader.load(str(path))))
    return data


@functools.cache
def _load() -> dict[str, Any]:
    return load(TEMPLATE_PATH)


@functools.cache
def _expanded() -> dict[str, Any]:
    return expand(_load())


def raw_template() -> dict[str, Any]:
    """template.yaml as written (loops not expanded)."""
    return _load()


def template() -> dict[str, Any]:
    return _expanded()


def _substitute(node: Any, identifier: str, value: str) -> Any:
    """One Fn::ForEach iteration: `${id}` / `&{id}` in keys and strings, `Ref: id` → value."""
    alnum = re.sub(r"[^A-Za-z0-9]", "", value)
    if isinstance(node, str):
        return node.replace("${" + identifier + "}", value).replace("&{" + identifier + "}", alnum)
    if isinstance(node, list):
        return [_substitute(child, identifier, value) for child in node]
    if isinstance(node, dict):
        if node == {"Ref": identifier}:
            return value
        return {
            _substitute(key, identifier, value): _substitute(child, identifier, value)
            for key, child in node.items()
        }
    return node


def _expand_loops(section: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in section.items():
        if key.startswith("Fn::ForEach::"):
            identifier, collection, fragment = value
            assert isinstance(collection, list), f"{key}: collection must be a literal list here"
            for item in collection:
                out.update(_expand_loops(_substitute(copy.deepcopy(fragment), identifier, item)))
        else:
            assert key not in out, f"duplicate key {key} after expanding Fn::ForEach"
            out[key] = value
    return out


def _resolve_find_in_map(node: Any, mappings: dict[str, Any]) -> Any:
    if isinstance(node, list):
        return [_resolve_find_in_map(child, mappings) for child in node]
    if isinstance(node, dict):
        resolved = {k: _resolve_find_in_map(v, mappings) for k, v in node.items()}
        args = resolved.get("Fn::FindInMap")
        if len(resolved) == 1 and isinstance(args, list) and all(isinstance(a, str) for a in args[:3]):
            name, top, second = args[:3]
            return mappings[name][top][second]
        return resolved
    return node


def expand(data: dict[str, Any]) -> dict[str, Any]:
    """The AWS::LanguageExtensions subset template.yaml uses, as CloudFormation applies it."""
    out = copy.deepcopy(data)
    for section in ("Conditions", "Resources", "Outputs"):
        if section in out:
            out[section] = _expand_loops(out[section])
    mappings = out.get("Mappings", {})
    for section in ("Resources", "Outputs", "Conditions"):
        if section in out:
            out[section] = _resolve_find_in_map(out[section], mappings)
    return out


def schedules(template_data: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """Logical id → properties of every AWS::Scheduler::Schedule."""
    data = template_data or template()
    return {
        k: v["Properties"] for k, v in data["Resources"].items() if v["Type"] == "AWS::Scheduler::Schedule"
    }


def schedule_input(properties: dict[str, Any]) -> dict[str, Any]:
    """The JSON a schedule sends, with its `!Sub` variables filled in."""
    import json

    body = properties["Target"]["Input"]
    if isinstance(body, dict) and "Fn::Sub" in body:
        text, variables = body["Fn::Sub"]
        for name, value in variables.items():
            text = text.replace("${" + name + "}", value)
        body = text
    parsed: dict[str, Any] = json.loads(body)
    return parsed


def target_function(properties: dict[str, Any]) -> str | None:
    found = getatt(properties["Target"]["Arn"])
    return found[0] if found else None


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
            for item in body if isinstance(body, list) else [body]:
                if isinstance(item, dict) and "Fn::If" in item:  # a conditional statement: either branch
                    statements.extend(b for b in item["Fn::If"][1:] if isinstance(b, dict) and "Effect" in b)
                else:
                    statements.append(item)
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
