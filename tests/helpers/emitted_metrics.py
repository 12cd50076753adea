"""The metric names the code emits, read from the source (no code is run).

Every metric reaches CloudWatch through `lastgood.core.observability.emit_metrics`, whose
argument maps a metric name to `(MetricUnit name, value)`. So a metric name is any key of a
dict literal, or any subscript assignment, whose value is a tuple starting with a MetricUnit
name, in shared/lastgood/ or functions/. Keys written through a constant are resolved
(module constants, `from lastgood.x import NAME`, and `MAPPING[...]` over a module-level
dict of names); a key this reader cannot resolve is an error, never silently skipped.
"""

from __future__ import annotations

import ast
import functools
import re
from dataclasses import dataclass, field
from pathlib import Path

from aws_lambda_powertools.metrics import MetricUnit

from tests.helpers.template import METRICS_DOC, ROOT

UNITS = frozenset(unit.name for unit in MetricUnit)
DOC_ROW = re.compile(r"^\|\s*(?P<names>`[A-Z][^|]*?)\s*\|\s*[^|]*\|\s*(?P<dims>[^|]*)\|", re.M)


@dataclass
class _Module:
    path: Path
    tree: ast.Module
    constants: dict[str, str] = field(default_factory=dict)
    mappings: dict[str, list[str]] = field(default_factory=dict)
    imports: dict[str, tuple[str, str]] = field(default_factory=dict)  # local name -> (module, name)


def _module_name(path: Path) -> str:
    relative = (
        path.relative_to(ROOT / "shared") if path.is_relative_to(ROOT / "shared") else path.relative_to(ROOT)
    )
    return ".".join(relative.with_suffix("").parts)


def _parse(path: Path) -> _Module:
    module = _Module(path, ast.parse(path.read_text(encoding="utf-8"), str(path)))
    for node in module.tree.body:
        target, value = None, None
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            target, value = node.targets[0].id, node.value
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            target, value = node.target.id, node.value
        if target is None or value is None:
            continue
        if isinstance(value, ast.Constant) and isinstance(value.value, str):
            module.constants[target] = value.value
        elif isinstance(value, ast.Dict):
            names = [
                v.value for v in value.values if isinstance(v, ast.Constant) and isinstance(v.value, str)
            ]
            names += [
                module.constants[v.id]
                for v in value.values
                if isinstance(v, ast.Name) and v.id in module.constants
            ]
            module.mappings[target] = names
    for node in ast.walk(module.tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                module.imports[alias.asname or alias.name] = (node.module, alias.name)
    return module


def _is_metric_value(node: ast.AST | None) -> bool:
    return (
        isinstance(node, ast.Tuple)
        and len(node.elts) == 2
        and isinstance(node.elts[0], ast.Constant)
        and node.elts[0].value in UNITS
    )


@functools.cache
def emitted_metric_names() -> frozenset[str]:
    files = sorted((ROOT / "shared" / "lastgood").rglob("*.py")) + sorted((ROOT / "functions").rglob("*.py"))
    modules = {_module_name(path): _parse(path) for path in files}

    def constant(module: _Module, name: str) -> str | None:
        if name in module.constants:
            return module.constants[name]
        origin = module.imports.get(name)
        if origin and origin[0] in modules:
            return constant(modules[origin[0]], origin[1])
        return None

    def resolve(module: _Module, key: ast.AST | None) -> list[str]:
        if isinstance(key, ast.Constant) and isinstance(key.value, str):
            return [key.value]
        if isinstance(key, ast.Name) and (value := constant(module, key.id)) is not None:
            return [value]
        if (
            isinstance(key, ast.Subscript)
            and isinstance(key.value, ast.Name)
            and key.value.id in module.mappings
        ):
            return module.mappings[key.value.id]
        where = f"{module.path.relative_to(ROOT)}:{getattr(key, 'lineno', '?')}"
        raise AssertionError(
            f"{where}: a metric name this reader cannot resolve: {ast.dump(key) if key else key}"
        )

    found: set[str] = set()
    for module in modules.values():
        for node in ast.walk(module.tree):
            if isinstance(node, ast.Dict):
                for key, value in zip(node.keys, node.values, strict=True):
                    if _is_metric_value(value):
                        found.update(resolve(module, key))
            elif isinstance(node, ast.Assign) and _is_metric_value(node.value):
                for target in node.targets:
                    if isinstance(target, ast.Subscript):
                        found.update(resolve(module, target.slice))
    return frozenset(found)


@functools.cache
def documented_dimensions() -> dict[str, frozenset[frozenset[str]]]:
    """docs/metrics.md's contract: metric name -> the dimension sets it is emitted with."""
    out: dict[str, set[frozenset[str]]] = {}
    for row in DOC_ROW.finditer(METRICS_DOC.read_text(encoding="utf-8")):
        names = re.findall(r"`([A-Z][A-Za-z0-9]+)`", row["names"])
        cell = re.sub(r"\([^)]*\)", "", row["dims"])  # "dependency (each source by name)" -> "dependency"
        dims = frozenset(part.strip().split(" ")[0] for part in cell.split(",") if part.strip())
        if not dims or not all(re.fullmatch(r"[a-z_]+", d) for d in dims):
            continue  # a table whose third column is not dimensions
        for name in names:
            out.setdefault(name, set()).add(dims)
    return {name: frozenset(sets) for name, sets in out.items()}
