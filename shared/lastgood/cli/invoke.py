"""`lastgood invoke FUNCTION --event events/FILE.json` — run a handler locally (like `sam local invoke`)."""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from pathlib import Path


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "invoke",
        help="run a function's handler in-process with an event (reads template.yaml)",
        description=(
            "Reads template.yaml (handler, environment, layers) and calls the function's handler with the "
            "event and a LambdaContext, like `sam local invoke`. The process environment (and .devstack/env) "
            "overrides template values. Prints the return value as JSON; logs and metrics go to stderr. "
            "Exit 0 on return, 1 if the handler raised, 2 for an unknown function/event."
        ),
    )
    parser.add_argument("function", help="function name (the folder under functions/)")
    parser.add_argument("--event", required=True, type=Path, help="event JSON file (events/...)")
    parser.add_argument("--template", type=Path, help="SAM template (default: template.yaml here or above)")
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE", help="extra environment")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lastgood.cli.invoker import prepare
    from lastgood.core.errors import ConfigError

    overrides = {}
    for item in args.env:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"--env expects KEY=VALUE, got {item!r}")
        overrides[key] = value
    call = prepare(args.function, args.event, template_path=args.template, overrides=overrides)
    try:
        result = call()
    except Exception as exc:  # the handler raised: report like Lambda does (errorType / errorMessage)
        error = {
            "errorType": type(exc).__name__,
            "errorMessage": str(exc),
            "stackTrace": traceback.format_exception(exc)[-3:],
        }
        sys.stdout.write(json.dumps(error, indent=2) + "\n")
        return 1
    sys.stdout.write(json.dumps(result, indent=2, default=str, ensure_ascii=False) + "\n")
    return 0
