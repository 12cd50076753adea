"""The Fargate runner's state machine definition and container image definition, as data."""

from __future__ import annotations

import json
import re
from typing import Any

from tests.helpers.template import ROOT

ASL_PATH = ROOT / "statemachine" / "backup.asl.json"
DOCKERFILE = ROOT / "Dockerfile"


def asl() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(ASL_PATH.read_text(encoding="utf-8"))
    return data


def scopes(machine: dict[str, Any]) -> list[dict[str, Any]]:
    """The machine and every Map/Parallel body inside it (each has its own StartAt/States)."""
    found = [machine]
    for state in machine["States"].values():
        for body in [state.get("ItemProcessor"), state.get("Iterator"), *state.get("Branches", [])]:
            if body:
                found.extend(scopes(body))
    return found


def transitions(state: dict[str, Any]) -> list[str]:
    nexts = [state[k] for k in ("Next", "Default") if k in state]
    nexts += [choice["Next"] for choice in state.get("Choices", [])]
    nexts += [catch["Next"] for catch in state.get("Catch", [])]
    return nexts


def tasks() -> dict[str, dict[str, Any]]:
    return {
        name: state
        for scope in scopes(asl())
        for name, state in scope["States"].items()
        if state["Type"] == "Task"
    }


def ecs_tasks() -> dict[str, dict[str, Any]]:
    return {n: s for n, s in tasks().items() if s["Resource"].endswith(":states:::ecs:runTask.sync")}


def _split_args(text: str) -> list[str]:
    """The top-level arguments of an intrinsic call (commas inside quotes or calls kept)."""
    args, depth, quoted, start, i = [], 0, False, 0, 0
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            i += 2
            continue
        if ch == "'":
            quoted = not quoted
        elif not quoted and ch == "(":
            depth += 1
        elif not quoted and ch == ")":
            depth -= 1
        elif not quoted and depth == 0 and ch == ",":
            args.append(text[start:i].strip())
            start = i + 1
        i += 1
    tail = text[start:].strip()
    return [*args, tail] if tail else args


def _path(data: Any, path: str) -> Any:
    value = data
    for part in re.findall(r"\.(\w+)|\[(\d+)\]", path):
        value = value[part[0]] if part[0] else value[int(part[1])]
    return value


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def evaluate(expression: str, data: dict[str, Any], item_value: Any = None) -> Any:
    """A JSONPath or the intrinsic functions this definition uses, as Step Functions evaluates them
    (`$$.Map.Item.Value`: `item_value`). Anything else fails the test."""
    expr = expression.strip()
    if expr.startswith("'"):
        return re.sub(r"\\(.)", r"\1", expr[1:-1])
    if re.fullmatch(r"-?\d+", expr):
        return int(expr)
    if expr == "$$.Map.Item.Value":
        return item_value
    if expr.startswith("$."):
        return _path(data, expr[1:])
    match = re.fullmatch(r"(States\.\w+)\((.*)\)", expr, re.S)
    assert match, f"cannot evaluate {expr!r}"
    args = [evaluate(a, data, item_value) for a in _split_args(match[2])]
    if match[1] == "States.Array":
        return args
    if match[1] == "States.ArrayLength":
        return len(args[0])
    if match[1] == "States.Format":
        template, *values = args
        pieces = template.split("{}")
        assert len(pieces) == len(values) + 1, expr
        out = pieces[0]
        for value, piece in zip(values, pieces[1:], strict=True):
            out += _text(value) + piece
        return out
    raise AssertionError(f"{match[1]} is not evaluated by this helper")


def select(parameters: dict[str, Any], data: dict[str, Any], item_value: Any = None) -> dict[str, Any]:
    """A Parameters / ItemSelector block evaluated: keys ending in `.$` are expressions."""
    out: dict[str, Any] = {}
    for key, value in parameters.items():
        if key.endswith(".$"):
            out[key[:-2]] = evaluate(value, data, item_value)
        else:
            out[key] = select(value, data, item_value) if isinstance(value, dict) else value
    return out


def choose(state: dict[str, Any], data: dict[str, Any]) -> str:
    """The state a Choice goes to for `data` (the rules this definition uses)."""
    for rule in state["Choices"]:
        try:
            value, present = _path(data, rule["Variable"][1:]), True
        except (KeyError, IndexError):
            value, present = None, False
        if "IsPresent" in rule and present is rule["IsPresent"]:
            return str(rule["Next"])
        if "BooleanEquals" in rule and present and value is rule["BooleanEquals"]:
            return str(rule["Next"])
    return str(state["Default"])


def container_command(state: dict[str, Any], item: dict[str, Any]) -> list[str]:
    """The command a task passes to the container for its input (`States.Array(...)` evaluated);
    ECS takes only strings."""
    (override,) = state["Parameters"]["Overrides"]["ContainerOverrides"]
    expression = override["Command.$"]
    assert re.fullmatch(r"States\.Array\((.*)\)", expression, re.S), expression
    command = evaluate(expression, item)
    assert all(isinstance(arg, str) for arg in command), command
    return list(command)


def map_of(task: str) -> dict[str, Any] | None:
    """The Map inside a per-source body whose own body holds `task` (a shard task: that Map
    catches for it); None for a task of the per-source body itself."""
    machine = asl()
    for source_map in (s for s in machine["States"].values() if s["Type"] == "Map"):
        for state in source_map["ItemProcessor"]["States"].values():
            if state["Type"] == "Map" and task in state["ItemProcessor"]["States"]:
                return dict(state)
    return None


def dockerfile_entrypoint() -> list[str]:
    (line,) = [x for x in DOCKERFILE.read_text(encoding="utf-8").splitlines() if x.startswith("ENTRYPOINT")]
    entry: list[str] = json.loads(line.removeprefix("ENTRYPOINT"))
    return entry
