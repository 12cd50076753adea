"""`lastgood prune` — retention with reasons, dry-run, guards; `--simulate FILE` explains a policy."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from typing import Any

COUNT_FLAGS = ("last", "hourly", "daily", "weekly", "monthly", "yearly")
WITHIN_BUCKETS = ("hourly", "daily", "weekly", "monthly", "yearly")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "prune",
        help="apply the retention policy (restic forget semantics): kept with reasons, removed",
        description=(
            "Plan and apply retention per source. --keep-* flags replace the configured policy. "
            "Refuses an empty policy, a plan removing every complete backup, or more than "
            "PRUNE_MAX_REMOVE_SHARE (0.5) of them at once unless --force (any count; a run removing at "
            "most one backup is exempt). A suspect backup satisfies no rule: the newest good backup "
            "before it is kept (see `lastgood accept`). --simulate FILE prints the "
            "plan for one ISO-8601 UTC time per line (- for stdin) without touching any bucket. "
            "Exit 0 ok, 2 bad input, 9 refused (bad or empty policy, guard) or partially failed."
        ),
    )
    p.add_argument("--source", help="one source (default: every configured source)")
    p.add_argument("--dry-run", action="store_true", help="print the plan, delete nothing")
    p.add_argument("--json", action="store_true")
    p.add_argument("--force", action="store_true", help="allow removing more than the max share at once")
    for rule in COUNT_FLAGS:
        p.add_argument(
            f"--keep-{rule}",
            type=int,
            metavar="N",
            help="keep the N newest backups (-1: all)"
            if rule == "last"
            else f"keep the newest backup of each of the N newest {rule} buckets (UTC; -1: all)",
        )
    p.add_argument(
        "--keep-within",
        metavar="DURATION",
        help="keep everything within DURATION of the newest (2d, 36h, 1y6m)",
    )
    for rule in WITHIN_BUCKETS:
        p.add_argument(
            f"--keep-within-{rule}",
            metavar="DURATION",
            help=f"keep the newest backup of every {rule} bucket within DURATION of the newest backup",
        )
    # --- cross-region replica: the same prune on the replica bucket with [replica].retention ---
    p.add_argument(
        "--from",
        dest="origin",
        choices=("primary", "replica"),
        default="primary",
        help="prune the primary backup bucket (default) or the cross-region replica with its own policy",
    )
    p.add_argument("--simulate", metavar="FILE", help="timestamps file (or -) to explain the policy for")
    p.add_argument("--now", help="ISO time for --simulate (default: now)")
    p.set_defaults(func=run)


def _policy_flags(args: argparse.Namespace) -> dict[str, Any] | None:
    flags: dict[str, Any] = {f"keep_{r}": getattr(args, f"keep_{r}") for r in COUNT_FLAGS}
    flags["keep_within"] = args.keep_within
    for rule in WITHIN_BUCKETS:
        flags[f"keep_within_{rule}"] = getattr(args, f"keep_within_{rule}")
    given = {k: v for k, v in flags.items() if v is not None}
    return given or None


def _parse_time(text: str, where: str) -> datetime:
    from lastgood.core.errors import ConfigError

    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"{where}: not an ISO-8601 time: {text.strip()!r}") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _print_plan(source: str, decisions: list[Any], dry_run: bool) -> None:
    kept = [d for d in decisions if d.keep]
    removed = [d for d in decisions if not d.keep]
    sys.stdout.write(f"{source}: keep {len(kept)}, remove {len(removed)}{' (dry run)' if dry_run else ''}\n")
    width = max((len(d.backup.backup_id) for d in decisions), default=0)
    sys.stdout.write(f"  {'ACTION':<6} {'BACKUP':<{width}} {'TIME':<20}  WHY\n")
    for d in decisions:
        mark = "keep" if d.keep else "remove"
        why = ", ".join(d.reasons) if d.keep else (d.removal or "")
        sys.stdout.write(f"  {mark:<6} {d.backup.backup_id:<{width}} {d.as_dict()['time']:<20}  {why}\n")


def run(args: argparse.Namespace) -> int:
    from lastgood.backups.retention import RetentionPolicy
    from lastgood.cli.backup import logs_to_stderr

    logs_to_stderr()
    flags = _policy_flags(args)
    if args.simulate:
        from lastgood.backups.prune import simulate
        from lastgood.core.errors import RetentionError

        if args.source:  # that source's configured policy, unless --keep-* flags replace it
            from lastgood.backups.prune import policy_for

            policy = policy_for(args.source, flags)
        elif not flags:
            raise RetentionError("--simulate needs --keep-* flags or --source NAME (the policy to explain)")
        else:
            policy = RetentionPolicy.from_dict(flags)
        if args.simulate == "-":
            text = sys.stdin.read()
        else:
            from pathlib import Path

            try:
                text = Path(args.simulate).read_text(encoding="utf-8")
            except OSError as exc:
                raise RetentionError(f"--simulate {args.simulate}: {exc.strerror}") from None
        name = "stdin" if args.simulate == "-" else args.simulate
        times = [
            _parse_time(line, f"{name} line {number}")
            for number, line in enumerate(text.splitlines(), 1)
            if line.strip()
        ]
        now = _parse_time(args.now, "--now") if args.now else datetime.now(UTC)
        simulated = simulate(times, policy, now)
        by_index = {int(d.backup.backup_id[1:]) - 1: d for d in simulated.decisions}
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

    from lastgood.backups.prune import policy_for, prune_source
    from lastgood.core.config import get_config
    from lastgood.core.errors import LastgoodError

    sources = [args.source] if args.source else [s.name for s in get_config().sources]
    results = []
    failures: list[LastgoodError] = []
    on_replica = getattr(args, "origin", "primary") == "replica"
    for name in sources:
        try:
            if on_replica:
                from lastgood.backups.replica import prune_replica, replica_policy
                from lastgood.backups.retention import RetentionPolicy as Policy

                policy = Policy.from_dict(flags) if flags else replica_policy()
                result = prune_replica(name, policy=policy, dry_run=args.dry_run, force=args.force)
            else:
                policy = policy_for(name, flags)
                result = prune_source(name, policy=policy, dry_run=args.dry_run, force=args.force)
        except LastgoodError as exc:
            # one source's refusal must not stop the others; the exit code still says it failed
            if len(sources) == 1:
                raise
            message = str(exc)
            prefix = "" if message.startswith(f"prune {name}:") else f"prune {name}: "
            sys.stderr.write(f"lastgood: error: {prefix}{message}\n")
            failures.append(exc)
            continue
        results.append(result)
        if not args.json:
            sys.stdout.write(f"policy {policy.describe()}\n")
            _print_plan(name, result.plan.decisions, args.dry_run)
            if result.refused:
                sys.stdout.write(f"  a real run would be REFUSED: {result.refused}\n")
            for backup_id, why in sorted(result.unreadable.items()):
                sys.stdout.write(f"  keep   {backup_id}  unreadable manifest, never pruned: {why}\n")
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
    return max((exc.exit_code for exc in failures), default=0)
