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


@pytest.fixture(scope="module")
def second_stack(tmp_path_factory):
    """A stack of its own (not the session's), brought up once through the CLI."""
    state_dir = tmp_path_factory.mktemp("second-stack")
    up = _cli(state_dir, "up")
    assert up.returncode == 0, up.stderr
    assert "devstack up in" in up.stdout  # the start-up time is reported
    yield state_dir
    _cli(state_dir, "down")  # whatever the tests did, nothing stays up


def _pids(state_dir: Path) -> dict[str, int]:
    return {name: entry["pid"] for name, entry in json.loads((state_dir / "pids.json").read_text()).items()}


def test_cli_up_again_only_reports_the_running_stack(second_stack):
    # Given a running stack
    pids = _pids(second_stack)

    # When `up` runs again
    again = _cli(second_stack, "up")

    # Then it says so and starts nothing new
    assert again.returncode == 0
    assert "already up" in again.stdout
    assert _pids(second_stack) == pids
    assert set(pids) == {"moto", "postgres", "valkey", "upstash", "mongodb"}
    assert (second_stack / "env").is_file()


def test_cli_stop_and_start_one_service_keeps_its_port(second_stack):
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


def test_cli_restarting_moto_recreates_the_template_resources(second_stack):
    import boto3

    # When moto (which keeps no state) is stopped and started again
    assert _cli(second_stack, "stop", "moto").returncode == 0
    assert _cli(second_stack, "start", "moto").returncode == 0

    # Then the env file names resources that exist again
    env = dict(
        line.split("=", 1)
        for line in (second_stack / "env").read_text().splitlines()
        if not line.startswith("#")
    )
    session = boto3.session.Session(
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        region_name=env["AWS_REGION"],
    )
    s3 = session.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"])
    kms = session.client("kms", endpoint_url=env["AWS_ENDPOINT_URL"])
    assert {b["Name"] for b in s3.list_buckets()["Buckets"]} >= {env["BACKUP_BUCKET"], env["SITE_BUCKET"]}
    assert kms.describe_key(KeyId=env["KMS_KEY_ID"])["KeyMetadata"]["Arn"] == env["KMS_KEY_ID"]


def test_cli_rejects_an_unknown_service(second_stack):
    result = _cli(second_stack, "stop", "nosuch")
    assert result.returncode == 2
    assert "invalid choice" in result.stderr


def test_cli_down_leaves_nothing_running(second_stack):
    # Given the stack's processes
    pids = _pids(second_stack)
    assert all(_alive(pid) for pid in pids.values())

    # When everything is stopped
    down = _cli(second_stack, "down")

    # Then every process it started is gone and status says so
    assert down.returncode == 0, down.stderr
    assert not any(_alive(pid) for pid in pids.values())
    status = _cli(second_stack, "status", "--json")
    assert status.returncode == 3
    assert not any(s["running"] for s in json.loads(status.stdout).values())
