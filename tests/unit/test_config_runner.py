"""A source's `runner` ("lambda" | "fargate", default lambda): typed, and refused with its line."""

from __future__ import annotations

import subprocess
from pathlib import Path

from lastgood.core.config import load_config_file

ROOT = Path(__file__).resolve().parents[2]
SOURCE = '[[sources]]\nname = "pg"\nengine = "postgres"\nurl_secret = "DATABASE_URL"\n'


def test_runner_defaults_to_lambda_and_accepts_fargate(tmp_path: Path) -> None:
    path = tmp_path / "lastgood.toml"
    path.write_text(
        SOURCE + '\n[[sources]]\nname = "big"\nengine = "postgres"\nurl_secret = "X"\nrunner = "fargate"\n'
    )
    config = load_config_file(path)
    assert [s.runner for s in config.sources] == ["lambda", "fargate"]


def test_config_check_refuses_another_runner_naming_the_file_and_line(tmp_path: Path) -> None:
    # Given runner = "ecs" on line 5
    path = tmp_path / "lastgood.toml"
    path.write_text(SOURCE + 'runner = "ecs"\n')
    result = subprocess.run(
        [str(ROOT / ".venv/bin/lastgood"), "--no-env-file", "config", "check", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    # Then config check exits 2 with FILE:LINE: WHERE: WHY, no traceback
    assert result.returncode == 2
    output = result.stdout + result.stderr
    assert f"{path}:5: sources[0].runner:" in output and "'lambda' or 'fargate'" in output
    assert "Traceback" not in output
