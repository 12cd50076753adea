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


def container_command(state: dict[str, Any], item: dict[str, str]) -> list[str]:
    """The command a task passes to the container for one Map item (`States.Array(...)` evaluated)."""
    (override,) = state["Parameters"]["Overrides"]["ContainerOverrides"]
    expression = override["Command.$"]
    match = re.fullmatch(r"States\.Array\((.*)\)", expression)
    assert match, expression
    command = []
    for arg in (a.strip() for a in match[1].split(",")):
        if arg.startswith("'"):
            command.append(arg.strip("'"))
        else:
            assert arg.startswith("$."), arg
            command.append(item[arg[2:]])
    return command


def dockerfile_entrypoint() -> list[str]:
    (line,) = [x for x in DOCKERFILE.read_text(encoding="utf-8").splitlines() if x.startswith("ENTRYPOINT")]
    entry: list[str] = json.loads(line.removeprefix("ENTRYPOINT"))
    return entry
