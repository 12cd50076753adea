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
    """Fill unset variables from the devstack env file; returns the file used."""
    candidate = os.environ.get("LASTGOOD_ENV_FILE")
    path = Path(candidate) if candidate else Path.cwd() / ".devstack" / "env"
    if not path.is_file():
        return None
    for key, value in load_env_file(path).items():
        os.environ.setdefault(key, value)
    return path


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lastgood",
        description="Keep a product's data served and recoverable: publish, back up, restore, prune, probe.",
    )
    parser.add_argument("--no-env-file", action="store_true", help="do not read .devstack/env")
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
    try:
        code = int(args.func(args))
    except LastgoodError as exc:
        sys.stderr.write(f"lastgood: error: {exc}\n")
        return exc.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("lastgood: interrupted\n")
        return 130
    return code


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
