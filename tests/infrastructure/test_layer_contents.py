"""The shared layer ships exactly what runs in Lambda: the handlers' imports and the application API."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import grimp

from tests.helpers.template import ROOT

# What applications import from the layer (DESIGN: the fallback loader and ResilientKV).
APPLICATION_API = ["lastgood.site.loader", "lastgood.kv"]


def _needed() -> set[str]:
    sys.path[:0] = [str(ROOT / "shared"), str(ROOT)]
    graph = grimp.build_graph("lastgood", "functions", include_external_packages=False)
    roots = [m for m in graph.modules if m.startswith("functions.") and m.endswith(".app")] + APPLICATION_API
    needed: set[str] = set()
    for root in roots:
        needed |= {root, *graph.find_upstream_modules(root)}
    needed = {m for m in needed if m.startswith("lastgood")}
    # a module needs every package above it
    for module in list(needed):
        parts = module.split(".")
        needed |= {".".join(parts[:i]) for i in range(1, len(parts))}
    return needed


def _shipped(tmp_path: Path) -> set[str]:
    made = _make_layer(tmp_path, "package")
    assert made.returncode == 0, made.stderr
    base = tmp_path / "python"
    modules = set()
    for path in base.joinpath("lastgood").rglob("*.py"):
        rel = path.relative_to(base).with_suffix("")
        parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
        modules.add(".".join(parts))
    return modules


def test_the_layer_ships_no_cli_no_invoker_and_nothing_only_the_cli_uses(tmp_path: Path) -> None:
    # Given the layer's package tree as `sam build` makes it
    shipped = _shipped(tmp_path)
    # Then it holds exactly the modules the handlers and the application API import (transitively)
    needed = _needed()
    assert not {m for m in shipped if m.startswith("lastgood.cli")}, "the CLI / local invoker is in the layer"
    assert shipped - needed == set(), f"shipped but never imported at run time: {sorted(shipped - needed)}"
    assert needed - shipped == set(), f"imported at run time but not shipped: {sorted(needed - shipped)}"
    # And the project's config and bundled folder are there (the demo's sample data is not)
    assert (tmp_path / "python/lastgood/lastgood.toml").read_bytes() == (ROOT / "lastgood.toml").read_bytes()
    assert (tmp_path / "python/lastgood/bundled").is_dir()
    assert not (tmp_path / "python/lastgood/config").exists()


def _make_layer(
    tmp_path: Path, *targets: str, python: str = sys.executable
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            "make",
            "-s",
            "-C",
            str(ROOT / "layers/shared"),
            *targets,
            f"ARTIFACTS_DIR={tmp_path}",
            f"PYTHON={python}",
        ],
        capture_output=True,
        text=True,
    )


def test_the_layer_ships_bytecode_the_runtime_uses_without_reading_the_sources(tmp_path: Path) -> None:
    # Given the layer's tree compiled the way build-SharedLayer compiles it (/opt is read-only in
    # Lambda: what the layer does not hold compiled is compiled again at every cold start)
    assert _make_layer(tmp_path, "package", "bytecode").returncode == 0
    base = tmp_path / "python"
    sources = sorted(base.rglob("*.py"))
    assert len(sources) > 50
    # Then every module has Python 3.13 bytecode, hash-based and unchecked (flags 0b01): the zip's
    # timestamps cannot make the runtime ignore it
    for source in sources:
        header = Path(importlib.util.cache_from_source(str(source))).read_bytes()[:8]
        assert header[:4] == importlib.util.MAGIC_NUMBER, source
        assert int.from_bytes(header[4:8], "little") == 0b01, source
    # And a fresh interpreter runs the bytecode even when a source says otherwise: it never compiles
    (base / "lastgood/core/errors.py").write_text('raise SystemExit("the source was compiled")\n')
    env = {**os.environ, "PYTHONPATH": str(base), "PYTHONDONTWRITEBYTECODE": "1"}
    child = subprocess.run(
        [
            sys.executable,
            "-c",
            "import lastgood.core.errors as e; print(e.__file__, e.LastgoodError.__name__)",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert child.returncode == 0, child.stderr
    assert child.stdout.split() == [str(base / "lastgood/core/errors.py"), "LastgoodError"]


def test_bytecode_from_another_python_than_the_runtime_is_refused_with_what_to_run(tmp_path: Path) -> None:
    # Given an interpreter that is not Python 3.13 (its .pyc would never be loaded by the runtime)
    other = tmp_path / "python3.11"
    other.write_text("#!/bin/sh\nexit 1\n")
    other.chmod(0o755)
    # When the layer's bytecode is built with it
    run = _make_layer(tmp_path / "out", "package", "bytecode", python=str(other))
    # Then the build stops, saying which Python it needs and how to give it one
    assert run.returncode != 0
    assert "must be compiled by Python 3.13" in run.stderr and "PYTHON=<a python3.13>" in run.stderr
    assert "Traceback" not in run.stderr


def test_the_layer_sam_builds_holds_bytecode_for_the_package_and_its_dependencies(tmp_path: Path) -> None:
    # Given a team's config staged the way `make build` stages it
    config = ROOT / "tests/fixtures/config/one-fargate-one-lambda.toml"
    stage = tmp_path / "stage"
    staged = subprocess.run(
        ["make", "-s", "-C", str(ROOT / "layers/shared"), "stage", f"CONFIG={config}", f"STAGE_DIR={stage}"],
        capture_output=True,
        text=True,
    )
    assert staged.returncode == 0, staged.stderr
    # When SAM's recipe runs in the staged copy (pip replaced by `true`: no download here; what it
    # installs is compiled by the same step as the package, checked above)
    recipe = ["make", "-s", "-C", str(stage), "build-SharedLayer"]
    built = subprocess.run(
        [*recipe, f"ARTIFACTS_DIR={tmp_path / 'art'}", "PIP=true", f"PYTHON={sys.executable}"],
        capture_output=True,
        text=True,
    )
    assert built.returncode == 0, built.stderr
    # Then every module of the package it ships has its bytecode beside it
    sources = sorted((tmp_path / "art/python/lastgood").rglob("*.py"))
    assert sources
    missing = [s for s in sources if not Path(importlib.util.cache_from_source(str(s))).is_file()]
    assert missing == []
