"""`lastgood bundle [--dataset NAME] [--json]`: refresh the bundled copies from last-good."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "bundle",
        help="refresh the bundled dataset copies (the loader's last layer) from last-good",
        description=(
            "Copies last-good/data/<name>.json into the project's bundled folder (bundled_dir in "
            "lastgood.toml, default bundled/ next to it; LASTGOOD_BUNDLED_DIR overrides it), which make build "
            "ships, when it is a valid, non-empty dataset; an empty or invalid last-good never "
            "overwrites a bundled copy. Exit 0 when every dataset was updated or unchanged, 1 when any "
            "bundled copy had to be kept as it was."
        ),
    )
    parser.add_argument("--dataset", action="append", metavar="NAME", help="only this dataset (repeatable)")
    parser.add_argument(
        "--dir", type=Path, help="bundled folder to write (default: the project's bundled_dir)"
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lastgood.cli.backup import logs_to_stderr
    from lastgood.site.bundle import refresh

    logs_to_stderr()
    results = refresh(args.dataset, target=args.dir)
    if args.json:
        sys.stdout.write(json.dumps([r.as_dict() for r in results], indent=2) + "\n")
    else:
        for r in results:
            count = "" if r.count is None else f" {r.count} items"
            reason = f" — {r.reason}" if r.reason else ""
            sys.stdout.write(f"{r.dataset:<12} {r.status}{count}{reason}\n")
    return 1 if any(r.status == "kept" for r in results) else 0
