"""`lastgood health [--json]` against the devstack: a readable table or the details JSON,
exit 0 when healthy, 12 when degraded, 4 when a dependency is down (README exit codes)."""

from __future__ import annotations

import json

import pytest
from lastgood.cli import main

pytestmark = pytest.mark.devstack


def test_the_table_lists_every_dependency_with_its_latency(capsys, devstack):
    code = main(["--no-env-file", "health"])
    out, _ = capsys.readouterr()
    assert out.splitlines()[0] in {"status: healthy", "status: degraded"}
    assert code == {"status: healthy": 0, "status: degraded": 12}[out.splitlines()[0]]
    for name in ("mongodb", "postgres", "upstash", "s3"):
        line = next(line for line in out.splitlines() if line.strip().startswith(name))
        assert " ok " in line and line.rstrip().endswith("ms"), line


def test_json_is_the_details_report_and_postgres_down_exits_4(capsys, devstack, stopped):
    # Given PostgreSQL stopped
    with stopped("postgres"):
        # When `lastgood health --json` runs
        code = main(["--no-env-file", "health", "--json"])
    out, _ = capsys.readouterr()
    report = json.loads(out)
    # Then exit 4, unhealthy, postgres not ok with its error class, the seed-001 flags
    assert code == 4
    assert report["status"] == "unhealthy"
    assert report["dependencies"]["postgres"]["ok"] is False
    assert report["dependencies"]["postgres"]["error"].startswith("OperationalError")
    assert report["health"]["postgres"] is False and report["health"]["mongodb"] is True
