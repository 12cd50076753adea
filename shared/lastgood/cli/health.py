"""`lastgood health [--json]` — probe every configured dependency and check freshness, like /health/details.

Exit codes (README): 0 healthy, 12 degraded (dependencies up, a check failed), 4 unhealthy
(a configured dependency is down or timed out). The text output names each failing
dependency and check and why; `status: degraded` always comes with its reasons.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lastgood.monitoring.health import HealthReport

EXIT_CODES = {"healthy": 0, "degraded": 12, "unhealthy": 4}


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "health",
        help="probe every configured source and S3; check backup age, datasets and KV mode",
        description=(
            "Exit 0 when healthy, 12 when degraded (every dependency up, a check failed), "
            "4 when unhealthy (a configured dependency is down or timed out)."
        ),
    )
    parser.add_argument("--json", action="store_true", help="the /health/details JSON")
    parser.add_argument("--scheduled", action="store_true", help="also run the scheduled work (KV resync)")
    parser.set_defaults(func=run)


def _dependency_line(name: str, dep: dict[str, Any]) -> str:
    if not dep.get("configured", True):
        reason = f" ({dep['reason']})" if dep.get("reason") else ""
        return f"  {name:<9} not configured{reason}"
    mark = "ok  " if dep.get("ok") else "TIMEOUT" if dep.get("status") == "timeout" else "DOWN"
    err = f"  {dep.get('error')}" if dep.get("error") else ""
    return f"  {name:<9} {mark:<4} {dep.get('latency_ms', 0):>8.1f} ms{err}"


def _check_line(name: str, check: dict[str, Any]) -> str:
    mark = "TIMEOUT" if check.get("status") == "timeout" else "ok" if check.get("ok") else "NOT OK"
    extra = f" (mode {check.get('status')})" if name == "kv" and check.get("status") != "timeout" else ""
    if check.get("configured") is False:
        extra = " (not configured)"
    return f"  check {name:<9} {mark}{extra}"


def format_text(report: HealthReport) -> str:
    """The status, one line per dependency and check, then every reason (when not healthy)."""
    lines = [f"status: {report.status}"]
    lines += [_dependency_line(name, dep) for name, dep in report.dependencies.items()]
    lines += [_check_line(name, check) for name, check in report.checks.items()]
    reasons = report.reasons()
    if reasons:
        lines.append("reasons:")
        lines += [f"  - {reason}" for reason in reasons]
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    from lastgood.cli.backup import logs_to_stderr
    from lastgood.monitoring.health import run_checks

    logs_to_stderr()
    report = run_checks(details=True, scheduled=args.scheduled)
    if args.json:
        sys.stdout.write(json.dumps(report.details(), indent=2, default=str) + "\n")
    else:
        sys.stdout.write(format_text(report))
    return EXIT_CODES[report.status]
