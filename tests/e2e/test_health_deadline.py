"""Issue 14 must-show: with S3's endpoint accepting connections and never answering,
`lastgood invoke health --event events/health-details.json` answers within the configured
deadline + 2 s, with S3 named as failing."""

from __future__ import annotations

import json
import time

import pytest
from lastgood.cli import main
from lastgood.cli.invoker import functions, load_template

from tests.helpers.events import event_path
from tests.helpers.health import ROOT, blackhole_server

pytestmark = pytest.mark.devstack


def test_details_answer_within_the_deadline_while_s3_hangs(capsys, devstack, monkeypatch):
    # Given the deadline the template configures (its default, 10 s) and S3 hanging
    spec = functions(load_template(ROOT / "template.yaml"), ROOT / "template.yaml")["health"]
    deadline = float(spec.environment["HEALTH_DEADLINE_S"])
    assert deadline == 10
    monkeypatch.delenv("HEALTH_DEADLINE_S", raising=False)
    with blackhole_server() as s3_url:
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_url)
        # When the details are invoked through the local invoker
        started = time.perf_counter()
        code = main(["--no-env-file", "invoke", "health", "--event", str(event_path("health-details"))])
        elapsed = time.perf_counter() - started
    out, _ = capsys.readouterr()
    result = json.loads(out)
    body = json.loads(result["body"])
    # Then it answered within the deadline + 2 s, 503, with S3 named as failing and why
    assert code == 0
    assert elapsed < deadline + 2, f"answered after {elapsed:.1f}s"
    assert result["statusCode"] == 503
    assert body["dependencies"]["s3"]["ok"] is False
    assert any(reason.startswith("s3: ") for reason in body["reasons"]), body["reasons"]
    # And the other dependencies still answered
    assert body["dependencies"]["postgres"]["ok"] is True
