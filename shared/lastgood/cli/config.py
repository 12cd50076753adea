"""`lastgood config check [PATH]`: validate the project's lastgood.toml, line by line."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "config",
        help="check the config file (lastgood.toml): the only place sources and datasets are declared",
    )
    commands = parser.add_subparsers(dest="config_command", metavar="SUBCOMMAND", required=True)
    check = commands.add_parser(
        "check",
        help="validate lastgood.toml with line-precise messages (exit 0 valid, 2 invalid)",
        description=(
            "Validates the config file whole: TOML syntax, types, unknown keys, schedules (EventBridge "
            "Scheduler rate()/cron()/at()), secret names (a variable name, a Secrets Manager ARN or an SSM "
            "parameter), retention policies (one that keeps nothing is refused), duplicate names. Each "
            "problem is printed as `FILE:LINE: WHERE: WHAT`. Warnings (secrets not set in this "
            "environment — they are deploy-time parameters —, datasets without a bundled copy, sources "
            "without retention) do not fail the check. Whether a dataset's collection exists is for the "
            "database to say: health and regenerate report it. PATH defaults to LASTGOOD_CONFIG, else "
            "lastgood.toml at the project root. Exit 0 valid (one-line summary), 2 invalid."
        ),
    )
    check.add_argument("path", nargs="?", type=Path, help="config file (default: the one lastgood uses)")
    check.add_argument("--json", action="store_true", help="print the result as JSON")
    check.set_defaults(func=run_check)


def run_check(args: argparse.Namespace) -> int:
    from lastgood.core.config import ConfigProblem, check_config_file, default_config_path, line_of
    from lastgood.site.loader import missing_bundled_copies

    path: Path = args.path or default_config_path()
    if path.is_absolute() and path.is_relative_to(Path.cwd()):
        path = path.relative_to(Path.cwd())  # messages name the file as a person types it
    check = check_config_file(path, environ=os.environ)
    config = check.config
    if config is not None:
        folder = path.resolve().parent / config.bundled_dir
        names = [d.name for d in config.datasets]
        for name in missing_bundled_copies(folder, config):
            index = names.index(name)
            check.warnings.append(
                ConfigProblem(
                    str(path),
                    line_of(check.lines, ("datasets", index)),
                    f"datasets[{index}]",
                    f"dataset {name!r} has no bundled copy in {folder} yet (first deploy: run `lastgood "
                    "bundle` once it is published; health reports it until then)",
                )
            )
    if args.json:
        document = {
            "file": str(path),
            "valid": not check.errors,
            "errors": [str(p) for p in check.errors],
            "warnings": [str(p) for p in check.warnings],
            "sources": [s.name for s in config.sources] if config else [],
            "datasets": [d.name for d in config.datasets] if config else [],
        }
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
        return 2 if check.errors else 0
    for problem in check.errors:
        sys.stderr.write(f"{problem}\n")
    for problem in check.warnings:
        sys.stderr.write(f"warning: {problem}\n")
    if check.errors or config is None:
        count = len(check.errors)
        sys.stderr.write(f"lastgood: error: {path} is invalid ({count} problem{'s' if count != 1 else ''})\n")
        return 2
    sources = ", ".join(f"{s.name} ({s.engine})" for s in config.sources) or "none"
    datasets = ", ".join(d.name for d in config.datasets) or "none"
    warned = (
        f"; {len(check.warnings)} warning{'s' if len(check.warnings) != 1 else ''}" if check.warnings else ""
    )
    sys.stdout.write(
        f"{path}: valid — {len(config.sources)} sources: {sources}; "
        f"{len(config.datasets)} datasets: {datasets}{warned}\n"
    )
    return 0
