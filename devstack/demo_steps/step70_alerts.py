"""Demo step 70: a test alert and the daily summary reach the alert topic (seen in the devstack's SQS queue)."""

from __future__ import annotations

import json
from typing import Any

from devstack.demo import DemoContext, StepFailed


def _queued(ctx: DemoContext) -> list[str]:
    """Subjects (or first lines) of everything in the alert queue, which is then emptied."""
    sqs = ctx.stack.boto3_client("sqs")
    url = ctx.stack.env["ALERT_QUEUE_URL"]
    seen: list[str] = []
    for _ in range(5):
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get(
            "Messages", []
        )
        if not messages:
            break
        for message in messages:
            body: Any = message["Body"]
            try:
                envelope = json.loads(body)
            except ValueError:
                envelope = None
            if isinstance(envelope, dict) and envelope.get("Type") == "Notification":
                seen.append(str(envelope.get("Subject") or envelope.get("Message", "")).splitlines()[0])
            else:
                seen.append(str(body).splitlines()[0] if body else "")
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return seen


def run(ctx: DemoContext) -> None:
    ctx.section("Alerts: test alert and daily summary → SNS topic")
    _queued(ctx)  # start from an empty queue
    test = ctx.lastgood("alerts", "test")
    ctx.say("   " + test.stdout.strip().splitlines()[0])

    commands = ctx.lastgood("--help", echo=False).stdout
    if " invoke " in commands or "\n    invoke" in commands:
        result = ctx.invoke("summary", "events/summary-schedule.json")
    else:  # the local invoker is not installed: the CLI runs the same code path
        result = json.loads(ctx.lastgood("summary", "--publish", "--json").stdout)
    message = str(result.get("message", ""))
    ctx.say("   " + message.strip().replace("\n", "\n   "))
    ctx.summary(f"daily summary: {result.get('subject')}")

    queued = _queued(ctx)
    ctx.summary(f"alert queue (SNS → SQS) received {len(queued)} message(s): " + " | ".join(queued))
    if not any("Test alert" in line or "test alert" in line for line in queued):
        raise StepFailed("the test alert did not arrive in the alert queue")
    if not any("summary" in line.lower() for line in queued):
        raise StepFailed("the daily summary did not arrive in the alert queue")
