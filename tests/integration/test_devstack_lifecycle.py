"""The devstack CLI starts, reports, stops and restarts services, and leaves nothing running."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _cli(state_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "MONGODB_URI"}  # a stack of its own
    env["DEVSTACK_DIR"] = str(state_dir)
    return subprocess.run(
        [sys.executable, "-m", "devstack", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
    )


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


@pytest.fixture
def second_stack(tmp_path):
    state_dir = tmp_path / "stack"
    yield state_dir
    _cli(state_dir, "down")  # whatever the test did, nothing stays up


def test_cli_up_is_idempotent_and_down_leaves_nothing_running(second_stack):
    # Given a fresh state directory
    # When the stack is brought up twice
    first = _cli(second_stack, "up")
    assert first.returncode == 0, first.stderr
    pids = {
        name: entry["pid"] for name, entry in json.loads((second_stack / "pids.json").read_text()).items()
    }
    second = _cli(second_stack, "up")

    # Then the second run only reports it, and the start-up time was printed
    assert "devstack up in" in first.stdout
    assert "already up" in second.stdout
    assert set(pids) == {"moto", "postgres", "valkey", "upstash", "mongodb"}
    assert all(_alive(pid) for pid in pids.values())
    assert (second_stack / "env").is_file()

    # When everything is stopped
    down = _cli(second_stack, "down")

    # Then every process it started is gone and status says so
    assert down.returncode == 0, down.stderr
    assert not any(_alive(pid) for pid in pids.values())
    status = _cli(second_stack, "status", "--json")
    assert status.returncode == 3
    assert not any(s["running"] for s in json.loads(status.stdout).values())


def test_cli_stop_and_start_one_service_keeps_its_port(second_stack):
    assert _cli(second_stack, "up").returncode == 0
    before = json.loads(_cli(second_stack, "status", "--json").stdout)

    # When Valkey alone is stopped
    assert _cli(second_stack, "stop", "valkey").returncode == 0
    during = _cli(second_stack, "status", "--json")

    # Then only Valkey is down
    assert during.returncode == 3
    states = {name: s["running"] for name, s in json.loads(during.stdout).items()}
    assert states == {"moto": True, "postgres": True, "valkey": False, "upstash": True, "mongodb": True}

    # When it is started again, it is back on the same port
    assert _cli(second_stack, "start", "valkey").returncode == 0
    after = json.loads(_cli(second_stack, "status", "--json").stdout)
    assert after["valkey"]["running"]
    assert after["valkey"]["port"] == before["valkey"]["port"]


def test_cli_rejects_an_unknown_service(second_stack):
    result = _cli(second_stack, "stop", "nosuch")
    assert result.returncode == 2
    assert "invalid choice" in result.stderr
