"""Issue 15, config part: `lastgood config check` as a user runs it, and a suite that never reads
the user's lastgood.toml (items 2 and 6)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "config"
CONFIG_VARS = ("LASTGOOD_CONFIG", "LASTGOOD_BUNDLED_DIR")


def lastgood(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    child = {k: v for k, v in os.environ.items() if k not in CONFIG_VARS}
    child.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "lastgood.cli", "--no-env-file", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=child,
        timeout=120,
    )


def test_case_2_config_check_passes_the_issues_setup_with_a_one_line_summary(tmp_path):
    # Given the new user's file: two PostgreSQL databases and one MongoDB, no Upstash
    path = FIXTURES / "two-postgres-one-mongodb.toml"
    # When checked without any of its secrets in the environment
    env = {"DATABASE_URL": "", "MONGODB_URI": "", "SCRATCH_DATABASE_URL": ""}
    result = lastgood("config", "check", str(path), cwd=tmp_path, env=env)
    # Then exit 0 and one summary line naming exactly those three sources
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("\n") == 1
    assert "3 sources: app (postgres), billing (postgres), catalog (mongodb)" in result.stdout
    assert "upstash" not in result.stdout.replace(str(path), "")  # the checkout path may say upstash
    # And the unset secrets are warnings naming each variable and its line (deploy-time parameters)
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning: ")]
    assert f"warning: {path}:22: sources[1].url_secret: BILLING_DATABASE_URL is not set" in "\n".join(
        warnings
    )
    assert "Traceback" not in result.stderr


def test_case_2_config_check_refuses_bad_input_with_exit_2_and_one_line_per_problem(tmp_path):
    # Given a lastgood.toml in the working directory with several bad inputs
    (tmp_path / "lastgood.toml").write_text(
        textwrap.dedent(
            """\
            [[sources]]
            name = "app"
            engine = "postgres"
            url_secret = "DATABASE_URL"
            schedule = "cron(0 7 * * *)"
            retention = { keep_daily = 0 }

            [[sources]]
            name = "cache"
            engine = "memcached"
            url_secret = "CACHE_URL"

            [[datasets]]
            name = "products"
            collection = ""
            """
        )
    )
    # When `lastgood config check` runs with no PATH (the project's file in the working directory)
    result = lastgood("config", "check", cwd=tmp_path)
    # Then exit 2, each problem as FILE:LINE: WHERE: WHY, no traceback
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert [line.split(": ")[:2] for line in lines[:-1]] == [
        ["lastgood.toml:5", "sources[0].schedule"],
        ["lastgood.toml:6", "sources[0].retention"],
        ["lastgood.toml:10", "sources[1].engine"],
        ["lastgood.toml:15", "datasets[0].collection"],
    ]
    assert lines[-1] == "lastgood: error: lastgood.toml is invalid (4 problems)"
    assert result.stdout == "" and "Traceback" not in result.stderr


def test_case_2_a_syntax_error_fails_config_check_with_its_line(tmp_path):
    (tmp_path / "lastgood.toml").write_text('[[sources]]\nname = "app"\nengine = postgres\n')
    result = lastgood("config", "check", "lastgood.toml", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.splitlines()[0] == "lastgood.toml:3: TOML syntax error: Invalid value (column 10)"


def test_case_2_a_missing_file_is_exit_2_naming_it(tmp_path):
    result = lastgood("config", "check", "nope.toml", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.splitlines()[0].startswith("nope.toml: config file does not exist")


def _copy_project(target: Path) -> None:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache")
    for name in ("shared", "tests", "devstack", "functions", "events"):
        shutil.copytree(ROOT / name, target / name, ignore=ignore)
    for name in ("pyproject.toml", "template.yaml", "lastgood.example.toml"):
        shutil.copy2(ROOT / name, target / name)


def test_case_6_the_suite_uses_its_fixture_config_whatever_the_projects_lastgood_toml_holds(tmp_path):
    # Given a copy of the project whose root lastgood.toml declares a different setup (one
    # PostgreSQL source `billing`, no datasets), and a shell with the user's own config variables
    project = tmp_path / "project"
    _copy_project(project)
    (project / "lastgood.toml").write_text(
        '[[sources]]\nname = "billing"\nengine = "postgres"\nurl_secret = "BILLING_DATABASE_URL"\n'
    )
    env = {
        **{k: v for k, v in os.environ.items() if k not in CONFIG_VARS},
        "PYTHONPATH": os.pathsep.join([str(project / "shared"), str(project)]),
        "LASTGOOD_CONFIG": str(project / "lastgood.toml"),
        "LASTGOOD_BUNDLED_DIR": str(tmp_path / "nowhere"),
    }
    # When the user-facing default is asked for (from another directory) / Then it is that root file
    check = lastgood("config", "check", cwd=tmp_path, env={"PYTHONPATH": env["PYTHONPATH"]})
    assert check.returncode == 0, check.stderr
    assert check.stdout.startswith("project/lastgood.toml: valid — 1 sources: billing (postgres)")
    # When tests that assert the demo's names (sources postgres/mongodb/upstash, datasets
    # prompts/patterns/learning, bundled copies) run in that project
    tests = ["tests/unit/test_config_validation.py", "tests/unit/test_loader_chain.py"]
    tests += ["tests/unit/test_health_probes.py", "tests/unit/test_config_toml.py"]
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests],
        capture_output=True,
        text=True,
        cwd=project,
        env=env,
        timeout=300,
    )
    # Then they pass: the suite's config is the fixture's, not the project's
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and "failed" not in result.stdout
