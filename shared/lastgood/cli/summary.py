"""`lastgood summary [--publish] [--json]`: the daily summary, printed (and sent when asked)."""

from __future__ import annotations

import argparse
import json
import sys


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "summary",
        help="daily summary: last backup per source vs RPO, drills, dataset freshness, fallbacks (24 h)",
        description=(
            "Build the daily summary the scheduled `summary` function publishes. Printed only, unless "
            "--publish (then also sent to ALERT_TOPIC_ARN). Exit code 0 even when it reports issues: "
            "the summary is a report, alarms are the alerts."
        ),
    )
    parser.add_argument("--publish", action="store_true", help="also publish it to the alert topic")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lastgood.cli.kv import logs_to_stderr

    logs_to_stderr()
    from lastgood.monitoring import summary

    result = summary.run(publish=args.publish)
    if args.json:
        sys.stdout.write(json.dumps(result, indent=2, default=str) + "\n")
        return 0
    sys.stdout.write(f"Subject: {result['subject']}\n\n{result['message']}")
    if result.get("published"):
        sys.stdout.write(f"\npublished as SNS message {result['message_id']}\n")
    return 0
