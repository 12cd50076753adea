"""`lastgood backup --source NAME [--json] [--pin --reason TEXT] [--slot TIME]`
and `lastgood backup --estimate --source NAME [--json]` (size, expected duration and memory, Fargate or not);
`--slot T --shard I/N` / `--slot T --commit-shards N`: a MongoDB backup fanned out over Fargate tasks
(`lastgood.backups.shard`)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lastgood.backups.store import BackupStore


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "backup",
        help="back up one source now (stream a snapshot to S3, manifest written last)",
        description=(
            "Back up one configured source. Without --slot this is an on-demand backup; with --slot "
            "it behaves like the scheduled run for that slot (skipped only if the slot's backup is "
            "committed; exit 11 while another run holds the slot within its lease). Exit 0 on "
            "success or skip, non-zero on failure (nothing committed). A backup that shrank sharply "
            "or is empty is committed as SUSPECT: exit 0 with a WARNING line (it satisfies no "
            "retention rule and restore --latest skips it until `lastgood accept ID`)."
        ),
    )
    parser.add_argument("--source", required=True, help="source name from the config (e.g. postgres)")
    parser.add_argument("--json", action="store_true", help="print the manifest (or the skip result) as JSON")
    parser.add_argument("--pin", action="store_true", help="keep this backup regardless of retention")
    parser.add_argument("--reason", help="why it is pinned (required with --pin)")
    parser.add_argument("--slot", help="ISO time of the schedule slot to run (idempotent per slot)")
    parser.add_argument(
        "--estimate",
        action="store_true",
        help="take no backup: the source's size now, the expected duration and peak memory from the last "
        "runs' manifests, and whether it should move to Fargate (docs/limits.md)",
    )
    parser.add_argument(
        "--shard",
        metavar="I/N",
        help='with --slot (MongoDB, runner = "fargate"): dump shard I of N of the collections into the '
        "slot's sharded backup and record it; nothing is restorable before --commit-shards",
    )
    parser.add_argument(
        "--commit-shards",
        metavar="N",
        type=int,
        help="with --slot: commit the slot's sharded backup from its N shard records (refused, nothing "
        "committed, while one is missing)",
    )
    parser.set_defaults(func=run)


def logs_to_stderr() -> None:
    """Keep stdout for results (`--json` must parse): the structured logs go to stderr."""
    import logging

    from lastgood.core.observability import logger

    handler = logger.registered_handler
    if isinstance(handler, logging.StreamHandler) and handler.stream is sys.stdout:
        handler.setStream(sys.stderr)


def run(args: argparse.Namespace) -> int:
    from lastgood.backups.run import run_backup

    logs_to_stderr()
    if args.estimate:
        return estimate(args)
    if args.shard is not None or args.commit_shards is not None:
        return sharded(args)

    from lastgood.backups.store import BackupStore
    from lastgood.cli.output import byte_progress

    store = BackupStore.from_settings()
    with byte_progress(
        f"backup {args.source}", lambda: _expected_bytes(store, args.source), quiet=args.json
    ) as on_bytes:
        store.on_bytes = on_bytes
        if _is_pitr(args.source) and not args.pin:  # a base on a new slot's snapshot (lastgood.pitr)
            from lastgood.pitr.base import take_base

            result = take_base(args.source, slot=args.slot, on_demand=args.slot is None, store=store)
        else:
            result = run_backup(
                args.source,
                slot=args.slot,
                on_demand=args.slot is None,
                pin=args.pin,
                reason=args.reason,
                store=store,
            )
    if args.json:
        doc = result.manifest.to_dict() if result.manifest else result.as_dict()
        sys.stdout.write(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    else:
        sys.stdout.write(result.message + "\n")
        if result.manifest:
            for obj in result.manifest.objects:
                count = f", {obj.count} records" if obj.count is not None else ""
                sys.stdout.write(f"  {obj.key}: {obj.bytes} bytes{count}, sha256 {obj.sha256[:16]}…\n")
    if result.manifest is not None and result.manifest.suspect:
        warning = (
            f"WARNING: {result.source}/{result.backup_id} was committed as SUSPECT: "
            f"{result.manifest.suspect_reason}. Retention keeps the last good backup and restore --latest "
            f"skips this one; if the new size is expected, run `lastgood accept {result.backup_id}`."
        )
        (sys.stderr if args.json else sys.stdout).write(warning + "\n")
    return 0


def sharded(args: argparse.Namespace) -> int:
    """`--shard I/N` or `--commit-shards N` (the Fargate state machine's fan-out of one source)."""
    from lastgood.backups.shard import parse_shard, run_shard
    from lastgood.backups.shard_commit import commit_shards
    from lastgood.core.errors import UsageError

    if args.shard is not None and args.commit_shards is not None:
        raise UsageError("--shard and --commit-shards do not go together: run each shard, then the commit")
    if args.slot is None or args.pin or args.reason or args.estimate:
        raise UsageError("--shard / --commit-shards need --slot and take no --pin, --reason or --estimate")
    if args.shard is not None:
        index, count = parse_shard(args.shard)
        result = run_shard(args.source, slot=args.slot, shard=index, of=count)
    else:
        result = commit_shards(args.source, slot=args.slot, of=args.commit_shards)
    if args.json:
        sys.stdout.write(json.dumps(result.as_dict(), indent=2, ensure_ascii=False) + "\n")
    else:
        sys.stdout.write(result.message + "\n")
    if result.manifest is not None and result.manifest.suspect:
        sys.stderr.write(
            f"WARNING: {result.source}/{result.backup_id} was committed as SUSPECT: "
            f"{result.manifest.suspect_reason}\n"
        )
    return 0


def _expected_bytes(store: BackupStore, source: str) -> int | None:
    """The previous backup's size: the progress bar's total (so it can show an ETA)."""
    from botocore.exceptions import BotoCoreError, ClientError

    from lastgood.core.errors import LastgoodError

    try:
        newest = store.latest_backup(source)
    except (ClientError, BotoCoreError, LastgoodError):  # no estimate: the bar shows bytes and rate
        return None
    return newest.size if newest is not None and newest.size > 0 else None


def _is_pitr(source: str) -> bool:
    from lastgood.core.config import get_config

    return get_config().source(source).pitr


def estimate(args: argparse.Namespace) -> int:
    from lastgood.backups.estimate import estimate_backup
    from lastgood.core.errors import UsageError

    if args.pin or args.reason or args.slot:
        raise UsageError("--estimate takes no backup: it does not go with --pin, --reason or --slot")
    result = estimate_backup(args.source)
    if args.json:
        sys.stdout.write(json.dumps(result.as_dict(), indent=2) + "\n")
    else:
        sys.stdout.write("\n".join(result.lines()) + "\n")
    return 0
