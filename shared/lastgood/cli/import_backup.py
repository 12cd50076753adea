"""`lastgood import --source NAME PATH [--db NAME] [--pin --reason TEXT] [--json]`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "import",
        help="bring a mongodump directory or a pg_dump -Fc file into the catalog as a backup",
        description=(
            "Upload a backup made by the database's own tool (a mongodump directory, --gzip or not; a "
            "pg_dump -Fc file) as a backup of a configured source, so it is listed, verified, drilled, "
            "pruned and restored like the others. Nothing is committed unless every file is understood."
        ),
    )
    parser.add_argument("path", type=Path, help="mongodump output folder, or a pg_dump -Fc file")
    parser.add_argument("--source", required=True, help="configured source the backup belongs to")
    parser.add_argument("--db", help="PostgreSQL: database name of the dump (default: the file name)")
    parser.add_argument("--pin", action="store_true", help="keep it regardless of retention")
    parser.add_argument("--reason", help="why it is pinned (required with --pin)")
    parser.add_argument("--json", action="store_true", help="print the manifest as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lastgood.backups.importer import import_backup
    from lastgood.cli.backup import logs_to_stderr

    logs_to_stderr()
    manifest = import_backup(args.source, args.path, database=args.db, pin=args.pin, reason=args.reason)
    if args.json:
        sys.stdout.write(json.dumps(manifest.to_dict(), indent=2, ensure_ascii=False) + "\n")
    else:
        sys.stdout.write(f"imported {args.path} as {manifest.summary()}\n")
    return 0
