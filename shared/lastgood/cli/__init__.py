"""`lastgood` command line.

Each module in this package that defines `register(subparsers)` adds its
sub-commands; `register` returns nothing and sets `func` (args -> exit code) via
`set_defaults`. Commands print results to stdout (JSON with `--json`), progress
and diagnostics to stderr, and exit non-zero with a meaningful code on failure.

Environment: the process environment wins over `.devstack/env` (loaded when
present in the working directory, or from `LASTGOOD_ENV_FILE`), which wins over
the defaults in template.yaml (applied by `lastgood invoke`).
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
from collections.abc import Sequence
from pathlib import Path

from lastgood.core.errors import LastgoodError


def load_env_file(path: Path) -> dict[str, str]:
    """Parse shell-sourceable `KEY=value` lines (optionally `export`ed, optionally quoted)."""
    values: dict[str, str] = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :]
        key, sep, value = line.partition("=")
        if not sep:
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def apply_devstack_env() -> Path | None:
    """Fill unset variables from the devstack env file; returns the file used.

    A variable the shell already has wins; when it differs from the file (a shell that
    sourced the env of a devstack since restarted on new ports), say so once.
    """
    candidate = os.environ.get("LASTGOOD_ENV_FILE")
    path = Path(candidate) if candidate else Path.cwd() / ".devstack" / "env"
    if not path.is_file():
        return None
    stale = []
    for key, value in load_env_file(path).items():
        current = os.environ.setdefault(key, value)
        if current != value and key.endswith(("_URL", "_URI", "_PORT")):
            stale.append(key)
    if stale:
        sys.stderr.write(
            f"lastgood: warning: {', '.join(sorted(stale))} in your environment differ from {path} "
            "(written when the devstack last started); the environment wins. If the devstack was "
            f"restarted, re-read it: set -a; . {path}; set +a\n"
        )
    return path


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lastgood",
        description="Keep a product's data served and recoverable: publish, back up, restore, prune, probe.",
    )
    parser.add_argument("--no-env-file", action="store_true", help="do not read .devstack/env")
    parser.add_argument("--quiet", "-q", action="store_true", help="log warnings and errors only")
    parser.add_argument("--debug", action="store_true", help="debug logs, and a traceback on any failure")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if "--no-env-file" not in args_list:
        apply_devstack_env()
    parser = build_parser()
    args = parser.parse_args(args_list)
    if args.command != "invoke":
        # EMF metrics are printed to stdout, which is the CLI's result channel; a local
        # command has no CloudWatch agent to read them. `invoke` behaves like Lambda.
        os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    from lastgood.cli.output import describe_failure, setup_logging

    setup_logging(quiet=args.quiet, debug=args.debug)
    try:
        code = int(args.func(args))
        sys.stdout.flush()
    except KeyboardInterrupt:
        sys.stderr.write("lastgood: interrupted\n")
        return 130
    except BrokenPipeError:  # `lastgood list | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:
        known = describe_failure(exc)
        if args.debug or (known is None and not isinstance(exc, LastgoodError)):
            if args.debug:
                raise
            sys.stderr.write(
                f"lastgood: unexpected error: {type(exc).__name__}: {str(exc)[:300]} "
                "(this is a bug; run again with --debug for the traceback)\n"
            )
            return 1
        message, exit_code = known or (str(exc), 1)
        sys.stderr.write(f"lastgood: error: {message}\n")
        return exit_code
    return code


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
