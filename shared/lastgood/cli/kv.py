"""`lastgood kv status|resync|get KEY|set KEY VALUE [--ttl S]`: the resilient KV by hand."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "kv",
        help="resilient KV (Upstash + MongoDB mirror): status, resync, get, set",
        description=(
            "The resilient KV: Upstash primary, MongoDB mirror and fallback. `status` shows the mode "
            "(kv | mongodb | fallback); `resync` copies keys written during an outage back to KV and "
            "repairs dirty mirror documents. Exit codes: 0 ok, 1 resync incomplete, 10 KV unavailable."
        ),
    )
    commands = parser.add_subparsers(dest="kv_command", metavar="ACTION", required=True)

    status = commands.add_parser("status", help="mode, breaker state, dirty and pending keys")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(func=run_status)

    resync = commands.add_parser(
        "resync", help="copy outage writes MongoDB → KV, repair dirty keys KV → MongoDB"
    )
    resync.add_argument("--json", action="store_true", help="machine-readable output")
    resync.set_defaults(func=run_resync)

    get = commands.add_parser("get", help="read a key (JSON value)")
    get.add_argument("key")
    get.set_defaults(func=run_get)

    put = commands.add_parser("set", help="write a key; VALUE is parsed as JSON, else taken as a string")
    put.add_argument("key")
    put.add_argument("value")
    put.add_argument("--ttl", type=int, metavar="S", help="expire after S seconds")
    put.set_defaults(func=run_set)


def logs_to_stderr() -> None:
    """Keep stdout for results (`--json` must parse): the structured logs go to stderr."""
    import logging

    from lastgood.core.observability import logger

    handler = logger.registered_handler
    if isinstance(handler, logging.StreamHandler) and handler.stream is sys.stdout:
        handler.setStream(sys.stderr)


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def run_status(args: argparse.Namespace) -> int:
    logs_to_stderr()
    from lastgood.kv.client import get_kv

    status = get_kv().status()
    if args.json:
        sys.stdout.write(json.dumps(status, indent=2, default=str) + "\n")
        return 0
    kv, mongo = status["kv"], status["mongodb"]
    circuit = kv["circuit"]
    sys.stdout.write(
        f"mode: {status['status']}\n"
        f"kv: configured={kv['configured']} available={kv['available']} circuit={circuit['state']}"
        + (
            f" open for {circuit['open_age_s']}s ({circuit['reason']})"
            if circuit["open_age_s"] is not None
            else ""
        )
        + "\n"
        f"mongodb: configured={mongo['configured']} available={mongo['available']}\n"
        f"dirty keys: {status['dirty_keys']}  pending resync: {status['pending_resync']}\n"
    )
    return 0


def run_resync(args: argparse.Namespace) -> int:
    logs_to_stderr()
    from lastgood.kv.client import get_kv
    from lastgood.storage import audit

    report = get_kv().resync()
    audit.record(
        "kv-resync", result="ok" if report.ok and report.complete else "incomplete", **report.as_dict()
    )
    if args.json:
        sys.stdout.write(json.dumps(report.as_dict(), indent=2) + "\n")
    else:
        sys.stdout.write(
            f"synced {len(report.synced)} key(s) MongoDB → KV, removed {len(report.removed)}, "
            f"repaired {len(report.repaired)} dirty mirror key(s), skipped {len(report.skipped)}"
            f" in {report.duration_s:.2f}s\n"
        )
        if report.error:
            sys.stderr.write(f"lastgood: resync incomplete: {report.error}\n")
    return 0 if report.ok and report.complete else 1


def run_get(args: argparse.Namespace) -> int:
    logs_to_stderr()
    from lastgood.kv.client import get_kv

    kv = get_kv()
    value = kv.get(args.key)
    if value is None and not kv.exists(args.key):
        sys.stderr.write(f"lastgood: key {args.key!r} not found\n")
        return 1
    sys.stdout.write(json.dumps(value, ensure_ascii=False) + "\n")
    return 0


def run_set(args: argparse.Namespace) -> int:
    logs_to_stderr()
    from lastgood.kv.client import get_kv

    kv = get_kv()
    kv.set(args.key, _parse_value(args.value), ttl=args.ttl)
    sys.stdout.write(f"OK (mode {kv.mode})\n")
    return 0
