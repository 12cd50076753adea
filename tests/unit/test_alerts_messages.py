"""Alert subjects and the Slack relay's message formatting: pure rules."""

from __future__ import annotations

import json

from lastgood.monitoring.alerts import clean_subject, describe_message, slack_payload

from tests.helpers.events import load_event


def test_subject_is_made_valid_for_sns() -> None:
    assert clean_subject("a\nb  c") == "a b c"
    assert clean_subject("résumé") == "r?sum?"
    long = clean_subject("x" * 300)
    assert len(long) == 100 and long.endswith("~")
    assert clean_subject("   ") == "lastgood alert"


def test_cloudwatch_alarm_json_is_summarized_for_slack() -> None:
    # Given the SNS event a CloudWatch alarm delivers
    record = load_event("notifier-sns.json")["Records"][0]["Sns"]
    # When it is described for Slack
    text, severity = describe_message(record["Subject"], record["Message"])
    # Then the alarm name, state and reason are in the text and ALARM is critical
    assert text.startswith("*lastgood-backup-late-postgres* is *ALARM*")
    assert "treated as [Breaching]" in text
    assert severity == "critical"


def test_plain_messages_pass_through_with_their_subject() -> None:
    text, severity = describe_message("[lastgood] Daily summary: OK", "all good")
    assert text == "*[lastgood] Daily summary: OK*\nall good"
    assert severity == "info"
    ok_alarm = json.dumps({"AlarmName": "a", "NewStateValue": "OK", "NewStateReason": "back"})
    assert describe_message(None, ok_alarm)[1] == "info"


def test_slack_payload_is_bounded() -> None:
    payload = slack_payload("s", "y" * 10000, "warning")
    assert payload["text"].startswith(":warning: *s*")
    assert len(payload["text"]) < 3700
