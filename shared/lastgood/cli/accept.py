"""`lastgood accept BACKUP_ID [--note TEXT]`: a suspect backup's new size is expected; count it as normal."""

from __future__ import annotations

import argparse
import getpass
import json
import sys


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "accept",
        help="accept a suspect backup (it shrank sharply on purpose): it counts as a normal backup again",
        description=(
            "A backup that shrank sharply against its source's recent median (or is empty) is committed "
            "as suspect: it satisfies no retention rule, the newest good backup before it is kept, and "
            "restore --latest skips it. Accepting it records accepted.json next to it (the manifest is "
            "never rewritten); from then on it is a normal backup. Exit 0 accepted (or already), 2 not "
            "suspect, 6 unreadable/incomplete, 7 unknown id."
        ),
    )
    parser.add_argument("backup_id", help="the suspect backup's id (see `lastgood list`)")
    parser.add_argument("--note", help="why the new size is expected (kept in the record)")
    parser.add_argument("--json", action="store_true")
    parser.set_defaults(func=run)


def _who() -> str | None:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no user name in this environment: the record says so by omission
        return None


def run(args: argparse.Namespace) -> int:
    from lastgood.backups.acceptance import accept_backup
    from lastgood.cli.backup import logs_to_stderr

    logs_to_stderr()
    record, written = accept_backup(args.backup_id, by=_who(), note=args.note)
    if args.json:
        sys.stdout.write(json.dumps({**record.to_dict(), "written": written}, indent=2) + "\n")
        return 0
    when = record.to_dict()["accepted_at"]
    state = "accepted" if written else f"already accepted at {when}"
    sys.stdout.write(
        f"{record.source}/{record.backup_id}: {state} (was suspect: {record.suspect_reason}); "
        "it now counts as a normal backup for retention and restore --latest\n"
    )
    return 0
