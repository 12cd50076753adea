"""The CLI as a person at 3 a.m. meets it: one line per expected failure, README's exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.restore import backup_now, run_cli

pytestmark = pytest.mark.devstack

ROOT = Path(__file__).resolve().parents[2]


def _one_clear_line(result, *needles: str) -> None:
    assert "Traceback" not in result.err, result.err
    lines = [line for line in result.err.splitlines() if line.startswith("lastgood: error:")]
    assert len(lines) == 1, result.err
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_s3_unreachable_is_one_line_exit_4(monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    for args in (("list",), ("restore", "--latest", "--source", "postgres", "--target", "postgresql://x/y")):
        result = run_cli(*args)
        assert result.code == 4, (args, result.err)
        _one_clear_line(result, "AWS is unreachable", "AWS_ENDPOINT_URL")


def test_a_bucket_that_does_not_exist_is_named_exit_2(monkeypatch):
    monkeypatch.setenv("BACKUP_BUCKET", "no-such-bucket-here")
    result = run_cli("list")
    assert result.code == 2
    _one_clear_line(result, "no-such-bucket-here", "BACKUP_BUCKET")


def test_a_typo_in_source_lists_the_valid_names_not_no_backup(devstack):
    result = run_cli("restore", "--latest", "--source", "postgress", "--target", "postgresql://x/y")
    assert result.code == 2
    _one_clear_line(result, "unknown source 'postgress'", "postgres")
    assert "no complete backup" not in result.err


@pytest.mark.parametrize(
    "args",
    [
        (
            "restore",
            "20250101T000000Z-abcdef",
            "--latest",
            "--source",
            "postgres",
            "--target",
            "postgresql://x/y",
        ),
        ("restore", "--latest", "--target", "postgresql://x/y"),
        ("verify", "--latest", "--source", "postgres", "--drill", "--restore-to", "postgresql://x/y"),
        ("restore", "--latest", "--source", "postgres", "--target", "postgresql://x/y", "--wipe-first"),
    ],
)
def test_arguments_that_do_not_go_together_are_usage_errors_exit_2(devstack, args):
    result = run_cli(*args)
    assert result.code == 2, result.err
    _one_clear_line(result)


def test_a_source_outage_during_a_backup_exits_4(devstack, stopped):
    with stopped("postgres"):
        result = run_cli("backup", "--source", "postgres")
    assert result.code == 4, result.err
    _one_clear_line(result, "unavailable")


def test_list_into_a_closed_pipe_ends_quietly(devstack):
    backup_now("upstash")
    backup_now("upstash")
    proc = subprocess.run(
        f"{sys.executable} -m lastgood.cli --no-env-file list | head -1",
        shell=True,
        capture_output=True,
        text=True,
        env=os.environ,
        cwd=ROOT,
    )
    assert "BrokenPipe" not in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stdout.strip()


def test_list_size_is_the_backups_size_and_does_not_grow_after_a_verify(devstack):
    backup_id = backup_now("postgres")

    def row() -> dict:
        rows = json.loads(run_cli("list", "--source", "postgres", "--json").out)
        return next(r for r in rows if r["backup_id"] == backup_id)

    manifest = json.loads(run_cli("verify", backup_id, "--json").out)
    before = row()
    assert run_cli("verify", backup_id).code == 0
    after = row()
    assert before["size"] == after["size"] == manifest["integrity"]["bytes"]


def test_load_has_json_output(devstack):
    devstack.seed()
    assert run_cli("regenerate", "--dataset", "prompts").code in (0, 1)
    result = run_cli("load", "prompts", "--json")
    assert result.code == 0, result.err
    doc = json.loads(result.out)
    assert doc["dataset"] == "prompts" and doc["count"] == len(doc["items"]) > 0 and doc["layer"]


def test_prune_simulate_with_a_source_uses_that_sources_configured_policy(devstack, tmp_path):
    from lastgood.core.config import get_config

    times = tmp_path / "times.txt"
    times.write_text("\n".join(f"2025-01-{day:02d}T03:00:00Z" for day in range(1, 29)) + "\n")
    result = run_cli(
        "prune", "--simulate", str(times), "--source", "postgres", "--now", "2025-01-29T00:00:00Z"
    )
    assert result.code == 0, result.err
    policy = get_config().source("postgres").retention
    described = result.out.splitlines()[0]
    for key, value in policy.items():
        assert f"{key.removeprefix('keep_').replace('_', '-')}" in described or str(value) in described, (
            described
        )


def test_a_refused_prune_names_the_source_once(devstack):
    for _ in range(3):
        backup_now("mongodb")
    result = run_cli("prune", "--keep-last", "1")
    failing = [line for line in result.err.splitlines() if "prune mongodb" in line]
    assert failing and all(line.count("prune mongodb:") == 1 for line in failing), result.err


def test_a_shell_with_an_old_devstack_env_is_told(devstack, monkeypatch, tmp_path):
    env_file = tmp_path / "env"
    env_file.write_text(f"AWS_ENDPOINT_URL={os.environ['AWS_ENDPOINT_URL']}\n")
    monkeypatch.setenv("LASTGOOD_ENV_FILE", str(env_file))
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    import contextlib
    import io

    from lastgood.cli import main

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(["list"])
    assert code == 4
    assert "AWS_ENDPOINT_URL in your environment differ" in err.getvalue() and str(env_file) in err.getvalue()


def test_on_a_terminal_logs_are_human_lines_not_json(devstack):
    proc = subprocess.run(
        [
            "script",
            "-qec",
            f"{sys.executable} -m lastgood.cli --no-env-file backup --source upstash",
            "/dev/null",
        ],
        capture_output=True,
        text=True,
        env=os.environ,
        cwd=ROOT,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout
    assert "backup committed" in proc.stdout
    assert not [line for line in proc.stdout.splitlines() if line.lstrip().startswith('{"level"')], (
        proc.stdout
    )


def test_a_long_backup_on_a_terminal_shows_progress_and_no_json_lines(devstack):
    from tests.helpers.backup import drop_table, fill_random_table

    # Given a source big enough that its backup takes a few seconds
    url = os.environ["DATABASE_URL"]
    fill_random_table(url, "progress_filler", 48)
    try:
        # When it is backed up on a pseudo-terminal
        proc = subprocess.run(
            [
                "script",
                "-qec",
                f"{sys.executable} -m lastgood.cli --no-env-file backup --source postgres",
                "/dev/null",
            ],
            capture_output=True,
            text=True,
            env=os.environ,
            cwd=ROOT,
            timeout=300,
        )
    finally:
        drop_table(url, "progress_filler")
    # Then a progress bar with bytes and rate was drawn, and no JSON log line printed
    assert proc.returncode == 0, proc.stdout
    assert "backup postgres" in proc.stdout and "B/s" in proc.stdout, proc.stdout[-2000:]
    assert not [line for line in proc.stdout.splitlines() if line.lstrip().startswith('{"level"')]


def test_pin_and_unpin_have_json_output(devstack):
    backup_id = backup_now("upstash")
    pinned = run_cli("pin", backup_id, "--reason", "before migration 9", "--json")
    assert pinned.code == 0, pinned.err
    doc = json.loads(pinned.out)
    assert (
        doc["backup_id"] == backup_id and doc["pinned"] is True and doc["pin_reason"] == "before migration 9"
    )
    unpinned = json.loads(run_cli("unpin", backup_id, "--json").out)
    assert unpinned["pinned"] is False
