"""`lastgood replicate` — copy committed backups to the replica bucket (the S3 Replication stand-in)."""

from __future__ import annotations

import argparse
import json
import sys


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "replicate",
        help="copy committed backups to the cross-region replica (where S3 Replication does not run)",
        description=(
            "Copy every committed backup of --source (default: every configured source) that the "
            "replica bucket ([replica] in the config) lacks, with the backup commit protocol: each "
            "object streamed and its SHA-256 checked against the manifest, conditional creates only, "
            "pin records before the manifest, manifest.json last. In AWS, S3 Replication does this "
            "(docs/cross-region.md); this is its stand-in for the devstack and S3-compatible stores. "
            "Exit 0 when everything is in the replica, 5 when a copy failed or conflicted."
        ),
    )
    p.add_argument("--source", help="one source (default: every configured source)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lastgood.backups.replica import replica_store, require_replica
    from lastgood.backups.replicate import replicate
    from lastgood.backups.store import BackupStore
    from lastgood.cli.backup import logs_to_stderr
    from lastgood.core.config import get_config

    logs_to_stderr()
    require_replica()
    config = get_config()
    names = [config.source(args.source).name] if args.source else [s.name for s in config.sources]
    results = replicate(names, primary=BackupStore.from_settings(), replica=replica_store())
    if args.json:
        sys.stdout.write(json.dumps([r.as_dict() for r in results.values()], indent=2) + "\n")
    else:
        for name, r in results.items():
            sys.stdout.write(
                f"{name}: copied {len(r.copied)} backup(s) ({r.bytes_copied} bytes, {r.records_copied} "
                f"record(s)), {len(r.already)} already in the replica\n"
            )
            for backup_id, why in {**r.conflicts, **r.failed}.items():
                sys.stdout.write(f"  NOT COPIED {backup_id}: {why}\n")
    return 0 if all(r.ok for r in results.values()) else 5
