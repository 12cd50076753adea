"""`lastgood alerts test|publish`: check that alerts reach people (seed 002's checklist)."""

from __future__ import annotations

import argparse
import json
import sys


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "alerts",
        help="publish a test alert (or any alert) to the SNS alert topic",
        description="Publish to ALERT_TOPIC_ARN: e-mail subscribers and the Slack notifier receive it.",
    )
    commands = parser.add_subparsers(dest="alerts_command", metavar="ACTION", required=True)

    test = commands.add_parser("test", help="publish a test alert to check delivery")
    test.add_argument("--json", action="store_true", help="machine-readable output")
    test.set_defaults(func=run_test)

    publish = commands.add_parser("publish", help="publish an alert with your own subject and message")
    publish.add_argument("--subject", required=True)
    publish.add_argument("--message", required=True)
    publish.add_argument("--severity", choices=["info", "warning", "critical"], default="info")
    publish.add_argument("--json", action="store_true", help="machine-readable output")
    publish.set_defaults(func=run_publish)


def run_test(args: argparse.Namespace) -> int:
    from lastgood.cli.kv import logs_to_stderr

    logs_to_stderr()
    from lastgood.core.settings import get_settings
    from lastgood.monitoring import alerts

    message_id, subject, message = alerts.test_alert()
    topic = get_settings().alert_topic_arn
    if args.json:
        sys.stdout.write(
            json.dumps({"message_id": message_id, "topic_arn": topic, "subject": subject}) + "\n"
        )
    else:
        sys.stdout.write(f"published test alert {message_id} to {topic}\nsubject: {subject}\n{message}\n")
    return 0


def run_publish(args: argparse.Namespace) -> int:
    from lastgood.cli.kv import logs_to_stderr

    logs_to_stderr()
    from lastgood.monitoring import alerts

    message_id = alerts.publish(args.subject, args.message, severity=args.severity)
    if args.json:
        sys.stdout.write(json.dumps({"message_id": message_id}) + "\n")
    else:
        sys.stdout.write(f"published {message_id}\n")
    return 0
