"""Alerts: publish to the SNS alert topic, and the optional Slack relay (seeds 002, 004).

Everything that must reach a person goes to the topic `ALERT_TOPIC_ARN`:
CloudWatch alarms (wired in template.yaml), the daily summary and
`lastgood alerts test`. E-mail is a subscription of the topic; Slack is the
`notifier` function, also subscribed, which relays each message to the webhook
URL in the secret `SLACK_WEBHOOK_URL`. A Slack failure is logged and swallowed
so it can never block or fail the e-mail path.
"""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from lastgood.core.observability import logger

Severity = Literal["info", "warning", "critical"]
SEVERITIES: tuple[str, ...] = ("info", "warning", "critical")
SUBJECT_MAX = 100  # SNS limit (ASCII, no newlines)
MESSAGE_MAX = 256 * 1024
_SLACK_TEXT_MAX = 3500
_EMOJI = {"info": ":information_source:", "warning": ":warning:", "critical": ":rotating_light:"}


def clean_subject(subject: str) -> str:
    """An SNS-valid subject: one line, printable ASCII, at most 100 characters."""
    text = " ".join(subject.split())
    text = "".join(ch if 32 <= ord(ch) < 127 else "?" for ch in text)
    if len(text) > SUBJECT_MAX:
        text = text[: SUBJECT_MAX - 1] + "~"
    return text or "lastgood alert"


def publish(
    subject: str,
    message: str,
    *,
    severity: Severity = "info",
    topic_arn: str | None = None,
    attributes: dict[str, str] | None = None,
) -> str:
    """Publish one alert to the topic; returns the SNS MessageId (raises on failure)."""
    from lastgood.core import aws
    from lastgood.core.settings import get_settings

    if severity not in SEVERITIES:
        raise ValueError(f"severity must be one of {', '.join(SEVERITIES)}, got {severity!r}")
    arn = topic_arn or get_settings().require("alert_topic_arn")
    body = message if len(message.encode("utf-8")) <= MESSAGE_MAX else message[: MESSAGE_MAX // 4] + "\n…"
    message_attributes = {
        "severity": {"DataType": "String", "StringValue": severity},
        "product": {"DataType": "String", "StringValue": "lastgood"},
    }
    for name, value in (attributes or {}).items():
        message_attributes[name] = {"DataType": "String", "StringValue": value}
    response = aws.client("sns").publish(
        TopicArn=arn, Subject=clean_subject(subject), Message=body, MessageAttributes=message_attributes
    )
    message_id = str(response.get("MessageId", ""))
    logger.info(
        "alert published", extra={"subject": clean_subject(subject), "severity": severity, "id": message_id}
    )
    return message_id


def test_alert(*, now: datetime | None = None) -> tuple[str, str, str]:
    """Publish the delivery check of seed 002's checklist; returns (message id, subject, message)."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    stamp = moment.strftime("%Y-%m-%d %H:%M:%S UTC")
    subject = f"[lastgood] Test alert {stamp}"
    message = (
        f"This is a test alert from lastgood, sent {stamp} by `lastgood alerts test`.\n"
        "If you read this by e-mail (and in Slack when configured), alert delivery works.\n"
        f"Host: {socket.gethostname()}"
    )
    return publish(subject, message, severity="info", attributes={"kind": "test"}), subject, message


# --------------------------------------------------------------------------- Slack relay


@dataclass
class SlackResult:
    posted: bool
    status: int | None = None
    error: str | None = None


def describe_message(subject: str | None, message: str) -> tuple[str, Severity]:
    """Slack text for an SNS message: CloudWatch alarm JSON is summarized, anything else passed through."""
    try:
        alarm = json.loads(message)
    except ValueError:
        alarm = None
    if isinstance(alarm, dict) and "AlarmName" in alarm:
        state = str(alarm.get("NewStateValue", "?"))
        severity: Severity = "critical" if state == "ALARM" else "info"
        lines = [
            f"*{alarm.get('AlarmName')}* is *{state}*",
            str(alarm.get("NewStateReason", "")),
        ]
        if alarm.get("AlarmDescription"):
            lines.append(str(alarm["AlarmDescription"]))
        return "\n".join(line for line in lines if line), severity
    head = f"*{subject}*\n" if subject else ""
    lowered = (subject or "").lower()
    severity = "critical" if "fail" in lowered or "critical" in lowered else "info"
    return head + message, severity


def slack_payload(subject: str | None, message: str, severity: Severity | None = None) -> dict[str, Any]:
    text, guessed = describe_message(subject, message)
    level = severity or guessed
    if len(text) > _SLACK_TEXT_MAX:
        text = text[:_SLACK_TEXT_MAX] + "\n…(truncated; the e-mail has the full message)"
    return {"text": f"{_EMOJI[level]} {text}"}


def post_to_slack(
    subject: str | None, message: str, *, severity: Severity | None = None, timeout_s: float = 5.0
) -> SlackResult:
    """Relay one message to the Slack webhook; never raises (a failure is logged and returned)."""
    from lastgood.core.settings import get_secret

    try:
        url = get_secret("SLACK_WEBHOOK_URL", required=False)
    except Exception as exc:  # a secret that cannot be read must not break the e-mail path
        logger.error("Slack notification failed", extra={"error": f"secret: {type(exc).__name__}"})
        return SlackResult(False, error=f"secret: {type(exc).__name__}")
    if not url:
        logger.info("Slack notification skipped: SLACK_WEBHOOK_URL is not configured")
        return SlackResult(False, error="not configured")
    import httpx

    from lastgood.core.redact import redact_text

    try:
        response = httpx.post(url, json=slack_payload(subject, message, severity), timeout=timeout_s)
    except httpx.HTTPError as exc:
        error = redact_text(f"{type(exc).__name__}: {exc}", (url,))[:300]
        logger.error("Slack notification failed", extra={"error": error})
        return SlackResult(False, error=error)
    if response.status_code >= 300:
        logger.error("Slack notification failed", extra={"status": response.status_code})
        return SlackResult(False, status=response.status_code, error=f"HTTP {response.status_code}")
    logger.info("Slack notification sent", extra={"status": response.status_code})
    return SlackResult(True, status=response.status_code)
