"""`lastgood list [--source NAME] [--json]`: backups newest first.

(The module is not named `list.py`: a submodule attribute `list` on the `lastgood.cli`
package would shadow the builtin inside `cli/__init__.py`.)
"""

from __future__ import annotations

import argparse
import json
import sys


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "list",
        help="list backups newest first (time, size, status, pinned, suspect)",
        description=(
            "List backups newest first. Status: complete, incomplete (no manifest: never restored), "
            "verified. SUSPECT: yes (why) for a backup that shrank sharply (see `lastgood accept`), "
            "accepted once a person accepted it."
        ),
    )
    parser.add_argument("--source", help="only this source")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument(  # cross-region replica (lastgood.backups.replica)
        "--from",
        dest="origin",
        choices=("primary", "replica"),
        default="primary",
        help="list the primary backup bucket (default) or the cross-region replica",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lastgood.cli.backup import logs_to_stderr
    from lastgood.core.timefmt import human_bytes, iso_z

    logs_to_stderr()
    if args.source:
        from lastgood.core.config import get_config

        get_config().source(args.source)  # an unknown name is an error, not an empty list
    from lastgood.backups.replica import store_for

    listings = store_for(getattr(args, "origin", "primary")).list_backups(args.source)
    if args.json:
        sys.stdout.write(json.dumps([item.as_dict() for item in listings], indent=2) + "\n")
        return 0
    if not listings:
        sys.stdout.write("no backups\n")
        return 0
    sys.stdout.write(
        f"{'SOURCE':<12} {'BACKUP ID':<24} {'TIME':<21} {'SIZE':>10} {'STATUS':<10} {'PINNED':<8} SUSPECT\n"
    )
    for item in listings:
        pinned = f"yes ({item.pin_reason})" if item.pinned else "-"
        reason = item.manifest.suspect_reason if item.manifest else None
        suspect = f"yes ({reason})" if item.suspect else "accepted" if item.accepted else "-"
        sys.stdout.write(
            f"{item.source:<12} {item.backup_id:<24} {iso_z(item.created_at):<21} "
            f"{human_bytes(item.size):>10} {item.status:<10} {pinned:<8} {suspect}\n"
        )
    return 0
