"""`lastgood prune` — retention with reasons, dry-run, guards; `--simulate FILE` explains a policy."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from typing import Any


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "prune",
        help="apply the retention policy (restic forget semantics): kept with reasons, removed",
        description=(
            "Plan and apply retention per source. --keep-* flags replace the configured policy. "
            "Refuses an empty policy, a plan removing every complete backup, or more than "
            "PRUNE_MAX_REMOVE_SHARE (0.5) of them at once unless --force. --simulate FILE prints the "
            "plan for one ISO-8601 UTC time per line (- for stdin) without touching any bucket. "
            "Exit 0 ok, 9 refused or partially failed."
        ),
    )
    p.add_argument("--source", help="one source (default: every configured source)")
    p.add_argument("--dry-run", action="store_true", help="print the plan, delete nothing")
    p.add_argument("--json", action="store_true")
    p.add_argument("--force", action="store_true", help="allow removing more than the max share at once")
    for rule in ("last", "hourly", "daily", "weekly", "monthly", "yearly"):
        p.add_argument(
            f"--keep-{rule}", type=int, metavar="N", help=f"keep the newest of N {rule} buckets (-1: all)"
        )
    p.add_argument(
        "--keep-within",
        metavar="DURATION",
        help="keep everything within DURATION of the newest (2d, 36h, 1y6m)",
    )
    p.add_argument("--simulate", metavar="FILE", help="timestamps file (or -) to explain the policy for")
    p.add_argument("--now", help="ISO time for --simulate (default: now)")
    p.set_defaults(func=run)


def _policy_flags(args: argparse.Namespace) -> dict[str, Any] | None:
    flags = {
        f"keep_{r}": getattr(args, f"keep_{r}")
        for r in ("last", "hourly", "daily", "weekly", "monthly", "yearly")
    }
    flags["keep_within"] = args.keep_within
    given = {k: v for k, v in flags.items() if v is not None}
    return given or None


def _parse_time(text: str) -> datetime:
    from lastgood.errors import ConfigError

    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"not an ISO-8601 time: {text.strip()!r}") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _print_plan(source: str, decisions: list[Any], dry_run: bool) -> None:
    kept = [d for d in decisions if d.keep]
    removed = [d for d in decisions if not d.keep]
    sys.stdout.write(f"{source}: keep {len(kept)}, remove {len(removed)}{' (dry run)' if dry_run else ''}\n")
    for d in decisions:
        mark = "keep  " if d.keep else "remove"
        sys.stdout.write(f"  {mark} {d.backup.backup_id:<26} {d.as_dict()['time']}  {', '.join(d.reasons)}\n")


def run(args: argparse.Namespace) -> int:
    from lastgood.cli.backup import logs_to_stderr
    from lastgood.retention import RetentionPolicy

    logs_to_stderr()
    flags = _policy_flags(args)
    if args.simulate:
        from lastgood.errors import RetentionError
        from lastgood.prune import simulate

        if not flags:
            raise RetentionError("--simulate needs --keep-* flags (the policy to explain)")
        policy = RetentionPolicy.from_dict(flags)
        if args.simulate == "-":
            text = sys.stdin.read()
        else:
            from pathlib import Path

            try:
                text = Path(args.simulate).read_text(encoding="utf-8")
            except OSError as exc:
                raise RetentionError(f"--simulate {args.simulate}: {exc.strerror}") from None
        times = [_parse_time(line) for line in text.splitlines() if line.strip()]
        now = _parse_time(args.now) if args.now else datetime.now(UTC)
        simulated = simulate(times, policy, now)
        by_index = {int(d.backup.backup_id[1:]): d for d in simulated.decisions}
        if args.json:
            doc = [
                {
                    "time": by_index[i].as_dict()["time"],
                    "keep": by_index[i].keep,
                    "reasons": by_index[i].reasons,
                }
                for i in range(len(times))
            ]
            sys.stdout.write(json.dumps(doc, indent=1) + "\n")
        else:
            sys.stdout.write(f"policy {policy.describe()}\n")
            _print_plan("simulation", simulated.decisions, True)
        return 0

    from lastgood.config import get_config
    from lastgood.prune import policy_for, prune_source

    sources = [args.source] if args.source else [s.name for s in get_config().sources]
    results = []
    for name in sources:
        policy = policy_for(name, flags)
        result = prune_source(name, policy=policy, dry_run=args.dry_run, force=args.force)
        results.append(result)
        if not args.json:
            sys.stdout.write(f"policy {policy.describe()}\n")
            _print_plan(name, result.plan.decisions, args.dry_run)
            if result.locked_backups:
                sys.stdout.write(f"  skipped (Object Lock): {', '.join(result.locked_backups)}\n")
            if not args.dry_run:
                sys.stdout.write(
                    f"  deleted {result.deleted_keys} object(s) in {result.requests} request(s)"
                    + (f"; {len(result.locked)} locked by Object Lock, skipped" if result.locked else "")
                    + "\n"
                )
    if args.json:
        sys.stdout.write(json.dumps([r.as_dict() for r in results], indent=2) + "\n")
    return 0
