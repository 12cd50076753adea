"""The Fargate runner's state machine definition and container image definition, as data."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

from tests.helpers.template import ROOT, props, raw_template

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


def item_commands(execution_input: dict[str, Any]) -> list[list[str]]:
    """The container commands one source's Map item runs, in order, evaluated state by state from
    the execution input (the definition's own Choices, Passes, ItemSelectors and commands)."""
    machine = asl()
    states, data = machine["States"], dict(execution_input)
    name = machine["StartAt"]
    while states[name]["Type"] != "Map":  # the defaults before the fan-out
        state = states[name]
        if state["Type"] == "Choice":
            name = choose(state, data)
        else:
            data[state["ResultPath"][2:]] = state["Result"]
            name = state["Next"]
    each = states[name]
    (source,) = data[each["ItemsPath"][2:]]
    item = select(each["ItemSelector"], data, source)
    body, commands = each["ItemProcessor"]["States"], []
    name = each["ItemProcessor"]["StartAt"]
    while body[name]["Type"] != "Pass" or "Parameters" in body[name]:
        state = body[name]
        if state["Type"] == "Choice":
            name = choose(state, item)
            continue
        if state["Type"] == "Pass":
            item = select(state["Parameters"], item)
        elif state["Type"] == "Map":
            inner = state["ItemProcessor"]
            for value in item[state["ItemsPath"][2:]]:
                shard_item = select(state["ItemSelector"], item, value)
                commands.append(container_command(inner["States"][inner["StartAt"]], shard_item))
        else:
            commands.append(container_command(state, item))
        name = state["Next"]
    assert body[name] == {"Type": "Pass", "Result": "ok", "End": True}
    return commands


# ----------------------------------------------------------------------------- the container as a process

# What the task role and the deployment's secrets stand for locally (never in the task definition).
PROVIDED_BY_AWS = (
    "AWS_ENDPOINT_URL",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_DEFAULT_REGION",
    "DATABASE_URL",
    "MONGODB_URI",
    "SCRATCH_MONGODB_URI",
    "PG_BIN_DIR",
)


def _value(name: str, value: Any) -> str:
    """A task-definition environment value: literals as written, references as the devstack has them."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Ref" in value and value["Ref"] in raw_template()["Parameters"]:
        return str(raw_template()["Parameters"][value["Ref"]]["Default"])
    if isinstance(value, dict) and "Fn::Sub" in value:
        return str(value["Fn::Sub"]).replace("${AWS::StackName}", "lastgood-e2e")
    return os.environ[name]  # BACKUP_BUCKET, KMS_KEY_ID, ALERT_TOPIC_ARN, AWS_REGION: the devstack's


def task_environment() -> dict[str, str]:
    (container,) = props("FargateBackupTaskDefinition")["ContainerDefinitions"]
    env = {e["Name"]: _value(e["Name"], e["Value"]) for e in container["Environment"]}
    env |= {name: os.environ[name] for name in PROVIDED_BY_AWS if name in os.environ}
    env["PATH"] = os.environ["PATH"]
    env["LASTGOOD_CONFIG"] = os.environ["LASTGOOD_CONFIG"]  # the image's ENV (its copy of the config)
    return env


def container_process(
    command: list[str], tmp_path: Path, *, config: Path | None = None
) -> subprocess.Popen[str]:
    """The container as a started process: the Dockerfile's entry point + `command`, with the task
    definition's environment (`config`: the image's LASTGOOD_CONFIG, else the suite's)."""
    entry = dockerfile_entrypoint()
    executable = shutil.which(entry[0], path=str(ROOT / ".venv" / "bin"))
    assert executable, "the lastgood command is installed"
    env = task_environment() | ({"LASTGOOD_CONFIG": str(config)} if config else {})
    return subprocess.Popen(
        [executable, *entry[1:], *command],
        env=env,
        cwd=tmp_path,  # the image's WORKDIR is /tmp: no project files around
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finished(process: subprocess.Popen[str]) -> subprocess.CompletedProcess[str]:
    out, err = process.communicate(timeout=300)
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def run_container(
    command: list[str], tmp_path: Path, *, config: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """`container_process` run to its end."""
    return finished(container_process(command, tmp_path, config=config))


def emf_metrics(stdout: str) -> dict[tuple[str, str], float]:
    """(source dimension, metric name) → value, from the EMF JSON lines among the CLI's output."""
    found: dict[tuple[str, str], float] = {}
    for line in stdout.splitlines():
        if not line.startswith("{"):
            continue
        record = json.loads(line)
        if "_aws" not in record:
            continue
        (directive,) = record["_aws"]["CloudWatchMetrics"]
        assert directive["Namespace"] == "lastgood"
        for metric in directive["Metrics"]:
            value = record[metric["Name"]]
            found[(record.get("source", ""), metric["Name"])] = value[0] if isinstance(value, list) else value
    return found
