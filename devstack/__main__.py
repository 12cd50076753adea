"""`python -m devstack up|down|status|stop NAME|start NAME|seed|demo|fault MODE|env`.

State lives in `.devstack/` at the repository root (override with `DEVSTACK_DIR`);
`.devstack/env` is what the `lastgood` CLI reads.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from devstack.stack import REPO_ROOT, SERVICES, Devstack, DevstackError


def state_dir() -> Path:
    return Path(os.environ.get("DEVSTACK_DIR") or REPO_ROOT / ".devstack")


def _out(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def cmd_up(stack: Devstack, _args: argparse.Namespace) -> int:
    if stack.all_running():
        _out(f"devstack is already up; env: {stack.env_file}")
        return 0
    timings = stack.up()
    _out(
        "devstack up in {:.2f}s ({})".format(
            stack.startup_seconds or 0.0,
            ", ".join(f"{n} {t:.2f}s" for n, t in sorted(timings.items(), key=lambda kv: kv[0])),
        )
    )
    for name, info in stack.status().items():
        where = "external (MONGODB_URI)" if info.get("external") else f"127.0.0.1:{info['port']}"
        _out(f"  {name:<9} {where}")
    _out(
        f"env: {stack.env_file}   (`set -a; . {stack.env_file}; set +a` in a shell; the lastgood CLI reads it)"
    )
    _out("stop everything with `make down` (python -m devstack down)")
    return 0


def cmd_down(stack: Devstack, _args: argparse.Namespace) -> int:
    stopped = stack.down()
    _out(f"stopped: {', '.join(stopped)}" if stopped else "devstack was not running")
    return 0


def cmd_status(stack: Devstack, args: argparse.Namespace) -> int:
    status = stack.status()
    if args.json:
        _out(json.dumps(status, indent=2))
    else:
        for name, info in status.items():
            if info.get("external"):
                _out(f"{name:<9} external (MONGODB_URI)")
            else:
                state = f"running pid {info['pid']}" if info["running"] else "stopped"
                _out(f"{name:<9} {state:<20} port {info['port']}")
        if stack.env_file.exists():
            _out(f"env: {stack.env_file}")
        if stack.state.get("startup_seconds") is not None:
            _out(f"last start-up took {stack.state['startup_seconds']:.2f}s")
    return 0 if all(i["running"] for i in status.values()) else 3


def cmd_stop(stack: Devstack, args: argparse.Namespace) -> int:
    stack.stop(args.name)
    _out(f"{args.name} stopped")
    return 0


def cmd_start(stack: Devstack, args: argparse.Namespace) -> int:
    stack.start(args.name)
    _out(f"{args.name} started on port {stack.port(args.name)}")
    return 0


def cmd_seed(stack: Devstack, _args: argparse.Namespace) -> int:
    if not stack.all_running():
        _out("devstack is not up: run `make up` first")
        return 3
    counts = stack.seed(progress=_out)
    _out("seeded: " + json.dumps(counts, sort_keys=True))
    return 0


def cmd_fault(stack: Devstack, args: argparse.Namespace) -> int:
    stack.fault(args.mode)
    _out(f"upstash front mode: {args.mode}")
    return 0


def cmd_env(stack: Devstack, _args: argparse.Namespace) -> int:
    if not stack.env_file.exists():
        _out("devstack is not up: run `make up` first")
        return 3
    sys.stdout.write(stack.env_file.read_text())
    return 0


def cmd_demo(stack: Devstack, _args: argparse.Namespace) -> int:
    from devstack.demo import run_demo

    return run_demo(stack)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack", description="lastgood local services")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("up", help="start every service (idempotent), write .devstack/env").set_defaults(
        func=cmd_up
    )
    sub.add_parser("down", help="stop every service by pid").set_defaults(func=cmd_down)
    status = sub.add_parser("status", help="services, pids and ports (exit 3 if any is down)")
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=cmd_status)
    for verb, func in (("stop", cmd_stop), ("start", cmd_start)):
        p = sub.add_parser(verb, help=f"{verb} one service (data and port are kept)")
        p.add_argument("name", choices=SERVICES)
        p.set_defaults(func=func)
    sub.add_parser("seed", help="load the sample data (idempotent)").set_defaults(func=cmd_seed)
    sub.add_parser("demo", help="start, seed, run every demo step, print a summary").set_defaults(
        func=cmd_demo
    )
    fault = sub.add_parser("fault", help="make the Upstash front misbehave (ok|429|500|hang)")
    fault.add_argument("mode", choices=("ok", "429", "500", "hang"))
    fault.set_defaults(func=cmd_fault)
    sub.add_parser("env", help="print the env file").set_defaults(func=cmd_env)
    args = parser.parse_args(argv)
    stack = Devstack(state_dir())
    try:
        return int(args.func(stack, args))
    except DevstackError as exc:
        sys.stderr.write(f"devstack: error: {exc}\n")
        return 1
    except KeyboardInterrupt:
        sys.stderr.write("devstack: interrupted\n")
        return 130


if __name__ == "__main__":
    sys.exit(main())
