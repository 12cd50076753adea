"""Local invoker: run a function from template.yaml in-process, like `sam local invoke`.

Docker is not available on the development machines, so this reads the SAM
template the same way SAM does — the function's CodeUri and Handler, the
environment from Globals and the function (a `!Ref` resolves to the
parameter's default; values that need a deployed stack are dropped) — and
calls the handler with the event and a LambdaContext. The process environment
(which includes `.devstack/env`, loaded by the CLI) overrides template values,
so the same handler runs against the devstack.

Event files may contain `${VAR}` placeholders, expanded from the environment
(e.g. `events/health-details.json` carries `"x-admin-key": "${ADMIN_KEY}"`).

The handler's logs and EMF metrics go to stderr; stdout gets only the
handler's return value as JSON (so scripts and tests can parse it).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lastgood.core.errors import ConfigError

_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass
class FunctionSpec:
    name: str  # functions/<name>/
    logical_id: str
    code_dir: Path
    handler: str
    timeout_s: int
    memory_mb: int
    environment: dict[str, str]


class LocalContext:
    """The LambdaContext attributes handlers and Powertools read."""

    def __init__(self, spec: FunctionSpec) -> None:
        self.function_name = f"lastgood-{spec.name}"
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = spec.memory_mb
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self.log_stream_name = "local"
        self._deadline = time.monotonic() + spec.timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def find_template(start: Path | None = None) -> Path:
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / "template.yaml"
        if candidate.is_file():
            return candidate
    raise ConfigError("template.yaml not found in this directory or its parents (use --template PATH)")


def load_template(path: Path) -> dict[str, Any]:
    try:
        import yaml
    except ImportError:  # pragma: no cover - dev dependency
        raise ConfigError(
            "the local invoker needs PyYAML: pip install 'lastgood[invoke]' (or the dev install)"
        ) from None

    class CfnLoader(yaml.SafeLoader):  # type: ignore[misc]
        pass

    def construct(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
        name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
        value: Any
        if isinstance(node, yaml.ScalarNode):
            value = loader.construct_scalar(node)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
        if name == "Fn::GetAtt" and isinstance(value, str):
            value = value.split(".", 1)
        return {name: value}

    CfnLoader.add_multi_constructor("!", construct)
    if not path.is_file():
        raise ConfigError(f"template {path} does not exist (use --template PATH)")
    try:
        doc = yaml.load(path.read_text(encoding="utf-8"), Loader=CfnLoader)  # noqa: S506 - SafeLoader subclass
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from None
    if not isinstance(doc, dict):
        raise ConfigError(f"{path} is not a SAM template")
    return doc


def _resolve(value: Any, parameters: dict[str, Any]) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    if isinstance(value, dict) and set(value) == {"Ref"}:
        param = parameters.get(str(value["Ref"]))
        if isinstance(param, dict) and param.get("Default") not in (None, ""):
            return str(param["Default"])
    return None  # needs a deployed stack (GetAtt, Sub of resources…): the environment must supply it


def functions(template: dict[str, Any], template_path: Path) -> dict[str, FunctionSpec]:
    root = template_path.parent
    parameters = template.get("Parameters") or {}
    globals_fn = (template.get("Globals") or {}).get("Function") or {}
    global_env = ((globals_fn.get("Environment") or {}).get("Variables")) or {}
    specs: dict[str, FunctionSpec] = {}
    for logical_id, resource in (template.get("Resources") or {}).items():
        if not isinstance(resource, dict) or resource.get("Type") != "AWS::Serverless::Function":
            continue
        props = resource.get("Properties") or {}
        code_uri = props.get("CodeUri") or globals_fn.get("CodeUri")
        if not isinstance(code_uri, str):
            continue
        env_vars = {**global_env, **(((props.get("Environment") or {}).get("Variables")) or {})}
        # A path inside the layers (/opt/…, e.g. LASTGOOD_CONFIG) exists only in Lambda: locally
        # the process's own setting (or the default config path) applies.
        environment = {
            k: v
            for k, v in ((k, _resolve(v, parameters)) for k, v in env_vars.items())
            if v is not None and not v.startswith("/opt/")
        }
        code_dir = (root / code_uri).resolve()
        name = code_dir.name
        timeout = props.get("Timeout", globals_fn.get("Timeout", 3))
        memory = props.get("MemorySize", globals_fn.get("MemorySize", 128))
        specs[name] = FunctionSpec(
            name=name,
            logical_id=logical_id,
            code_dir=code_dir,
            handler=str(props.get("Handler") or globals_fn.get("Handler") or "app.lambda_handler"),
            timeout_s=int(timeout) if isinstance(timeout, int | str) and str(timeout).isdigit() else 900,
            memory_mb=int(memory) if isinstance(memory, int | str) and str(memory).isdigit() else 1024,
            environment=environment,
        )
    return specs


def expand_placeholders(value: Any, environ: dict[str, str]) -> Any:
    if isinstance(value, str):
        return _PLACEHOLDER.sub(lambda m: environ.get(m.group(1), m.group(0)), value)
    if isinstance(value, list):
        return [expand_placeholders(v, environ) for v in value]
    if isinstance(value, dict):
        return {k: expand_placeholders(v, environ) for k, v in value.items()}
    return value


def load_event(path: Path, events_dir: Path) -> Any:
    if not path.is_file():
        names = sorted(p.name for p in events_dir.glob("*.json")) if events_dir.is_dir() else []
        raise ConfigError(
            f"event file {path} does not exist; events available: {', '.join(names) or '(none)'}"
        )
    try:
        event = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"event file {path} is not valid JSON: {exc}") from None
    return expand_placeholders(event, dict(os.environ))


def _reset_caches() -> None:
    from lastgood.core import aws
    from lastgood.core.config import reset_config
    from lastgood.core.settings import reset_settings

    reset_settings()
    reset_config()
    aws.reset_clients()


def _logs_to_stderr() -> None:
    import logging

    from lastgood.core.observability import logger

    handler = logger.registered_handler
    if isinstance(handler, logging.StreamHandler) and handler.stream is sys.stdout:
        handler.setStream(sys.stderr)


@dataclass
class Prepared:
    """A handler ready to call: invoker problems (bad name, bad event) are raised before this."""

    spec: FunctionSpec
    handler: Any
    event: Any

    def __call__(self) -> Any:
        """Call the handler like Lambda: its logs and EMF go to stderr; its exceptions propagate."""
        _logs_to_stderr()
        sys.path.insert(0, str(self.spec.code_dir))
        try:
            with contextlib.redirect_stdout(sys.stderr):  # EMF metrics are printed; stdout is the result
                return self.handler(self.event, LocalContext(self.spec))
        finally:
            with contextlib.suppress(ValueError):
                sys.path.remove(str(self.spec.code_dir))


def prepare(
    function: str,
    event_path: Path,
    *,
    template_path: Path | None = None,
    overrides: dict[str, str] | None = None,
) -> Prepared:
    """Resolve the function, apply its environment, load the event and import the handler."""
    template_file = template_path or find_template()
    specs = functions(load_template(template_file), template_file)
    if function not in specs:
        raise ConfigError(
            f"unknown function {function!r}; functions in {template_file.name}: {', '.join(sorted(specs))}"
        )
    spec = specs[function]
    for key, value in spec.environment.items():
        os.environ.setdefault(key, value)  # the process environment wins over the template
    os.environ.update(overrides or {})
    event = load_event(event_path, template_file.parent / "events")
    module_name, _, attr = spec.handler.rpartition(".")
    module_file = spec.code_dir / (module_name.replace(".", "/") + ".py")
    if not module_file.is_file():
        raise ConfigError(f"handler {spec.handler} of {function}: {module_file} does not exist")
    _reset_caches()
    sys.path.insert(0, str(spec.code_dir))
    try:
        loaded = importlib.util.spec_from_file_location(
            f"lastgood_local_{function}_{module_name}", module_file
        )
        assert loaded is not None and loaded.loader is not None
        module = importlib.util.module_from_spec(loaded)
        with contextlib.redirect_stdout(sys.stderr):  # import-time output is not the result either
            loaded.loader.exec_module(module)
    finally:
        with contextlib.suppress(ValueError):
            sys.path.remove(str(spec.code_dir))
    return Prepared(spec, getattr(module, attr), event)


def invoke(
    function: str,
    event_path: Path,
    *,
    template_path: Path | None = None,
    overrides: dict[str, str] | None = None,
) -> Any:
    """Run `function`'s handler with the event; returns what it returned (its exceptions propagate)."""
    return prepare(function, event_path, template_path=template_path, overrides=overrides)()
