"""Alerts against the devstack: SNS publish shows in the alert queue; the Slack relay never raises."""

from __future__ import annotations

import logging
import os

import pytest
from lastgood.cli import main
from lastgood.core.settings import reset_settings
from lastgood.monitoring import alerts

from tests.helpers.kv_alerts import closed_port_url, drain_queue, webhook_server

pytestmark = pytest.mark.devstack


def test_alerts_test_command_publishes_a_test_alert_to_the_topic(capsys: pytest.CaptureFixture[str]) -> None:
    # Given an empty alert queue
    drain_queue(wait_s=0)
    # When a user runs `lastgood alerts test`
    code = main(["--no-env-file", "alerts", "test"])
    # Then it exits 0 and the test alert arrives through SNS → SQS
    assert code == 0
    assert "published test alert" in capsys.readouterr().out
    received = drain_queue()
    assert any("This is a test alert from lastgood" in m["message"] for m in received)


def test_publish_carries_subject_and_severity() -> None:
    drain_queue(wait_s=0)
    message_id = alerts.publish("[lastgood] disk\nfilling", "storage above 80%", severity="warning")
    assert message_id
    received = drain_queue()
    match = [m for m in received if m["message"] == "storage above 80%"]
    assert match
    if match[0]["subject"] is not None:  # SNS envelope (raw delivery carries no subject)
        assert match[0]["subject"] == "[lastgood] disk filling"


def test_unknown_severity_is_refused() -> None:
    with pytest.raises(ValueError, match="severity"):
        alerts.publish("s", "m", severity="urgent")  # type: ignore[arg-type]


def test_slack_relay_posts_the_alert_to_the_webhook(monkeypatch: pytest.MonkeyPatch) -> None:
    with webhook_server(200) as (url, received):
        monkeypatch.setenv("SLACK_WEBHOOK_URL", url)
        reset_settings()
        result = alerts.post_to_slack("[lastgood] Daily summary: OK", "all good")
    assert result.posted and result.status == 200
    assert received == [{"text": ":information_source: *[lastgood] Daily summary: OK*\nall good"}]


@pytest.mark.parametrize("failure", ["http-500", "closed-port"])
def test_a_failing_slack_webhook_is_logged_and_never_raises(
    failure: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    if failure == "http-500":
        with webhook_server(500) as (url, _received):
            monkeypatch.setenv("SLACK_WEBHOOK_URL", url)
            reset_settings()
            result = alerts.post_to_slack("s", "m")
        assert result.status == 500
    else:
        monkeypatch.setenv("SLACK_WEBHOOK_URL", closed_port_url())
        reset_settings()
        result = alerts.post_to_slack("s", "m", timeout_s=2)
        assert "ConnectError" in str(result.error)
        assert os.environ["SLACK_WEBHOOK_URL"].split("//")[1] not in str(result.error)  # URL redacted
    assert not result.posted
    assert "Slack notification failed" in caplog.messages
