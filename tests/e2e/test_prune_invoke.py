"""Prune through the local invoker and the CLI, against the devstack."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
from lastgood.cli import main

from tests.helpers.events import event_path

pytestmark = pytest.mark.devstack


def test_the_scheduled_prune_plans_every_configured_source(capsys, devstack):
    # Given a real backup of the postgres source
    from lastgood.backups.run import run_backup

    run_backup("postgres", on_demand=True)
    capsys.readouterr()  # drop the backup's own metrics output
    # When the daily schedule's dry-run event is invoked like sam local invoke
    code = main(["--no-env-file", "invoke", "prune", "--event", str(event_path("prune-postgres-dry-run"))])
    result = json.loads(capsys.readouterr().out)
    # Then the plan is reported and nothing was removed
    assert code == 0
    assert result["sources"]["postgres"]["dry_run"] is True
    assert result["sources"]["postgres"]["removed"] == 0


def test_a_malformed_prune_event_is_a_clear_error(capsys, devstack, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"source": "nope"}')
    code = main(["--no-env-file", "invoke", "prune", "--event", str(bad)])
    out = json.loads(capsys.readouterr().out)
    assert code == 1
    assert "unknown source 'nope'" in out["errorMessage"]


def test_simulate_prints_json_in_input_order_without_any_bucket(tmp_path):
    # Given timestamps out of order and no AWS endpoint at all
    times = [datetime(2026, 1, 1, tzinfo=UTC) + timedelta(hours=h) for h in (5, 1, 30, 29)]
    text = "".join(f"{t:%Y-%m-%dT%H:%M:%SZ}\n" for t in times)
    env = {"PATH": "/usr/bin:/bin", "AWS_ENDPOINT_URL": "http://127.0.0.1:9"}
    # When simulated with --keep-daily 3 (two days have backups: one count is left for the oldest)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "lastgood.cli",
            "--no-env-file",
            "prune",
            "--simulate",
            "-",
            "--keep-daily",
            "3",
            "--json",
        ],
        input=text,
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    # Then one entry per input line, in input order, keep + reasons
    assert proc.returncode == 0, proc.stderr
    plan = json.loads(proc.stdout)
    assert [p["time"] for p in plan] == [f"{t:%Y-%m-%dT%H:%M:%SZ}" for t in times]
    assert [p["keep"] for p in plan] == [True, True, True, False]
    assert plan[2]["reasons"] == ["daily snapshot"]
    assert plan[0]["reasons"] == ["daily snapshot"]
    assert plan[1]["reasons"] == ["oldest daily snapshot"]
