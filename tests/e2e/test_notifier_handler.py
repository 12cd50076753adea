"""The Slack notifier Lambda with its SNS event: relays alarms; a failing webhook never raises."""

from __future__ import annotations

import logging

import pytest
from lastgood.core.settings import reset_settings

from tests.helpers.events import load_event
from tests.helpers.kv_alerts import closed_port_url, load_handler, webhook_server

pytestmark = pytest.mark.devstack


def test_alarm_from_sns_is_posted_to_slack(lambda_context, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a webhook that accepts posts
    with webhook_server(200) as (url, received):
        monkeypatch.setenv("SLACK_WEBHOOK_URL", url)
        reset_settings()
        # When the alarm notification is delivered
        result = load_handler("notifier")(load_event("notifier-sns.json"), lambda_context)
    # Then one Slack message names the alarm and its state
    assert result["delivered"] == 1
    assert len(received) == 1
    assert received[0]["text"].startswith(":rotating_light: *lastgood-backup-late-postgres* is *ALARM*")


@pytest.mark.parametrize("webhook", ["answers-500", "closed-port"])
def test_failing_webhook_is_logged_and_the_handler_still_succeeds(
    webhook: str, lambda_context, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    if webhook == "answers-500":
        with webhook_server(500) as (url, _received):
            monkeypatch.setenv("SLACK_WEBHOOK_URL", url)
            reset_settings()
            result = load_handler("notifier")(load_event("notifier-sns.json"), lambda_context)
    else:
        monkeypatch.setenv("SLACK_WEBHOOK_URL", closed_port_url())
        reset_settings()
        result = load_handler("notifier")(load_event("notifier-sns.json"), lambda_context)
    # No exception (SNS would retry, e-mail is a separate subscription); the failure is in the log
    assert result["delivered"] == 0
    assert result["results"][0]["error"]
    assert "Slack notification failed" in caplog.messages


def test_without_a_webhook_configured_the_notifier_skips_quietly(lambda_context, monkeypatch) -> None:
    monkeypatch.delenv("SLACK_WEBHOOK_URL", raising=False)
    reset_settings()
    result = load_handler("notifier")(load_event("notifier-sns.json"), lambda_context)
    assert result == {
        "delivered": 0,
        "results": [
            {"message_id": "95df01b4-ee98-5cb9-9903-4c221d41eb5e", "posted": False, "error": "not configured"}
        ],
    }
