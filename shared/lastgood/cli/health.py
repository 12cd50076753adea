"""`lastgood health [--json]` — probe every dependency and check freshness, like /health/details."""

from __future__ import annotations

import argparse
import json
import sys


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "health",
        help="probe MongoDB, PostgreSQL, Upstash and S3; check backup age, datasets and KV mode",
        description="Exit 0 when healthy or degraded, 1 when unhealthy (a configured dependency is down).",
    )
    parser.add_argument("--json", action="store_true", help="the /health/details JSON")
    parser.add_argument("--scheduled", action="store_true", help="also run the scheduled work (KV resync)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lastgood.cli.backup import logs_to_stderr
    from lastgood.monitoring.health import run_checks

    logs_to_stderr()
    report = run_checks(details=True, scheduled=args.scheduled)
    details = report.details()
    if args.json:
        sys.stdout.write(json.dumps(details, indent=2, default=str) + "\n")
    else:
        sys.stdout.write(f"status: {report.status}\n")
        for name, dep in details["dependencies"].items():
            if not dep.get("configured", True):
                sys.stdout.write(f"  {name:<9} not configured\n")
                continue
            mark = "ok  " if dep.get("ok") else "DOWN"
            err = f"  {dep.get('error')}" if dep.get("error") else ""
            sys.stdout.write(f"  {name:<9} {mark} {dep.get('latency_ms', 0):>8.1f} ms{err}\n")
        for name, check in report.checks.items():
            mark = "ok" if check.get("ok") else "NOT OK"
            extra = f" (mode {check.get('status')})" if name == "kv" else ""
            sys.stdout.write(f"  check {name:<9} {mark}{extra}\n")
    return 1 if report.status == "unhealthy" else 0
