"""The shared layer ships exactly what runs in Lambda: the handlers' imports and the application API."""

from __future__ import annotations

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
    subprocess.run(
        ["make", "-s", "-C", str(ROOT / "layers/shared"), "package", f"ARTIFACTS_DIR={tmp_path}"],
        check=True,
        capture_output=True,
    )
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
