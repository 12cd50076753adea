"""`lastgood restore`, `lastgood verify`, `lastgood pin/unpin`, `lastgood migrate`."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lastgood.backups.manifest import BackupManifest
    from lastgood.backups.selection import Skipped


def _progress(message: str) -> None:
    sys.stderr.write(f"… {message}\n")
    sys.stderr.flush()


def _logs_to_stderr() -> None:
    from lastgood.cli.backup import logs_to_stderr

    logs_to_stderr()


def _out(doc: Any) -> None:
    sys.stdout.write(json.dumps(doc, indent=2, ensure_ascii=False, default=str) + "\n")


_DB_HELP = (
    "database to restore into when the target URL names none (a MongoDB target must name one: "
    "the backup's object keys never choose it)"
)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "restore",
        help="restore a complete backup into a database (integrity checked first)",
        description=(
            "Restore BACKUP_ID (or --latest --source NAME) into --target URL with the engine's native "
            "path. Every object's SHA-256 is verified before the target is touched; a non-empty target "
            "is refused unless --force, and then first gets a pinned safety backup (the output says how "
            "to undo); a target that is a configured production source (by server identity, not URL) "
            "also needs --yes. Exit 0 when restored counts match the manifest."
        ),
    )
    p.add_argument("backup_id", nargs="?", help="backup id, e.g. 20250129T020000Z-3f9a1c")
    p.add_argument(
        "--latest",
        action="store_true",
        help="the newest good backup of --source (skips, and names, damaged and suspect ones)",
    )
    p.add_argument("--source", help="source name (needed with --latest)")
    p.add_argument(
        "--target", required=True, help="target URL (postgresql://, mongodb://, redis://, https://)"
    )
    p.add_argument(
        "--target-token-env",
        help="env var/secret holding the https target's own Upstash REST token (never the source's)",
    )
    p.add_argument("--db", metavar="NAME", help=_DB_HELP)
    p.add_argument("--only", nargs="+", metavar="NAME", help="only these db.coll / schema.table")
    p.add_argument("--force", action="store_true", help="restore into a non-empty target")
    p.add_argument(
        "--yes", action="store_true", help="the target is a configured production source: restore into it"
    )
    p.add_argument(
        "--wipe-first",
        action="store_true",
        help="empty the target before restoring (objects the backup does not hold go too; with --force)",
    )
    p.add_argument(
        "--no-safety-backup",
        action="store_true",
        help="do not take the pinned safety backup of a non-empty target first (no undo)",
    )
    p.add_argument(
        "--allow-suspect", action="store_true", help="with --latest: a suspect backup may be chosen"
    )
    p.add_argument(
        "--to-time", metavar="T", help="PITR: the state at time T (ISO 8601 UTC, or latest); with --source"
    )
    p.add_argument(
        "--to-lsn", metavar="LSN", help="PITR: the state after every transaction committed at or before LSN"
    )
    p.add_argument("--json", action="store_true")
    _from_argument(p)
    p.set_defaults(func=run_restore)

    v = subparsers.add_parser(
        "verify",
        help="re-hash a backup against its manifest; optionally restore-drill it into a scratch target",
        description=(
            "Integrity: re-read every object and compare size + SHA-256 with the manifest (exit 6 naming "
            "each bad object). With --restore-to URL: restore into that scratch target, compare counts, "
            "measure the recovery time, then wipe the scratch data. Writes verification.json. A target "
            "that is a production database (the backup's source or any configured source, by server "
            "identity) or that cannot be identified is refused before anything is wiped."
        ),
    )
    v.add_argument("backup_id", nargs="?")
    v.add_argument("--latest", action="store_true")
    v.add_argument("--source")
    v.add_argument("--restore-to", metavar="URL", help="scratch target for the restore drill (wiped!)")
    v.add_argument(
        "--target-token-env", help="env var/secret holding an https scratch target's own Upstash REST token"
    )
    v.add_argument(
        "--drill",
        action="store_true",
        help="restore drill into the source's configured scratch target (scratch_url_secret)",
    )
    v.add_argument("--db", metavar="NAME", help=_DB_HELP)
    v.add_argument(
        "--allow-suspect", action="store_true", help="with --latest and a drill: may drill a suspect backup"
    )
    v.add_argument("--to-time", metavar="T", help="PITR: with --drill --source, drill a restore to time T")
    v.add_argument("--json", action="store_true")
    _from_argument(v)
    v.set_defaults(func=run_verify)

    for name, pinned in (("pin", True), ("unpin", False)):
        q = subparsers.add_parser(
            name,
            help=f"{name} a backup ({'kept by every retention policy' if pinned else 'retention applies again'})",
        )
        q.add_argument("backup_id")
        if pinned:
            q.add_argument("--reason", required=True)
        q.add_argument("--json", action="store_true", help="print the resulting pin state as JSON")
        q.set_defaults(func=run_pin, pinned=pinned)

    m = subparsers.add_parser(
        "migrate",
        help="pinned backup → run a migration command → roll back if it fails",
        description="Example: lastgood migrate --source postgres -- psql -f migrations/005.sql",
    )
    m.add_argument("--source", required=True)
    m.add_argument("--yes", action="store_true", help="roll back without asking when the migration fails")
    m.add_argument("--reason", help="pin reason for the safety backup")
    m.add_argument("--json", action="store_true")
    m.add_argument("migration", nargs=argparse.REMAINDER, help="-- COMMAND ARGS…")
    m.set_defaults(func=run_migrate)


# --- cross-region replica: `--from replica` reads the replica bucket (lastgood.backups.replica) ---
def _from_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--from",
        dest="origin",
        choices=("primary", "replica"),
        default="primary",
        help="read the backup from the primary backup bucket (default) or the cross-region replica "
        "([replica] in the config: its bucket, region and KMS key); works when the primary is gone",
    )


def _store(args: argparse.Namespace) -> Any:
    from lastgood.backups.replica import store_for

    return store_for(getattr(args, "origin", "primary"))


def run_restore(args: argparse.Namespace) -> int:
    from lastgood.backups.restore import find_backup, known_source, restore_backup
    from lastgood.backups.target_db import with_database
    from lastgood.backups.targets import target_token
    from lastgood.core.errors import UsageError

    _logs_to_stderr()
    if args.wipe_first and not args.force:
        raise UsageError("--wipe-first empties the target: it needs --force")
    target_url = with_database(args.target, args.db)
    if args.to_time or args.to_lsn:  # point-in-time recovery: base + change log (lastgood.pitr)
        from lastgood.cli.pitr import run_pitr_restore

        return run_pitr_restore(args, target_url)
    token = target_token(args.target, args.target_token_env)  # the target's own, never the source's
    store = _store(args)
    if args.source:
        known_source(store, args.source)
    skipped: list[Skipped] = []
    manifest = find_backup(
        store,
        args.backup_id,
        source=args.source,
        latest=args.latest,
        allow_suspect=args.allow_suspect,
        skipped=skipped,
    )
    if not args.json:
        _say_skipped(skipped, manifest)
    report = restore_backup(
        manifest.backup_id,
        source=manifest.source,
        target_url=target_url,
        token=token,
        only=args.only,
        force=args.force,
        wipe_first=args.wipe_first,
        store=store,
        progress=_progress,
        yes=args.yes,
        safety_backup=not args.no_safety_backup,
    )
    if args.json:
        _out({**report.as_dict(), "skipped": [s.line() for s in skipped], "suspect": manifest.suspect})
    else:
        sys.stdout.write(
            f"restored {report.source}/{report.backup_id} into {report.target} in "
            f"{report.total_seconds:.2f}s (verify {report.verify_seconds:.2f}s + restore {report.restore_seconds:.2f}s)\n"
        )
        _print_checks(report.checks, indent=2)
        if report.safety_backup_id:
            sys.stdout.write(
                f"what the target held is in the pinned safety backup {report.safety_backup_id}; "
                f"to undo: {report.undo}\n"
            )
    return 0 if report.ok else 1


def _say_skipped(skipped: list[Skipped], manifest: BackupManifest) -> None:
    for item in skipped:
        sys.stdout.write(item.line() + "\n")
    if manifest.suspect:
        sys.stdout.write(
            f"note: {manifest.source}/{manifest.backup_id} is a suspect backup ({manifest.suspect_reason})\n"
        )


def run_verify(args: argparse.Namespace) -> int:
    from lastgood.backups.restore import find_backup, known_source
    from lastgood.backups.targets import target_token
    from lastgood.backups.verify import scratch_target, verify_backup
    from lastgood.core.errors import UsageError

    _logs_to_stderr()
    if args.to_time:  # a point-in-time restore drill (lastgood.pitr)
        from lastgood.cli.pitr import run_pitr_drill

        return run_pitr_drill(args)
    if args.drill and args.restore_to:
        raise UsageError("give either --drill (the configured scratch target) or --restore-to URL")
    if args.target_token_env and not args.restore_to:
        raise UsageError("--target-token-env goes with --restore-to URL")
    scratch = args.restore_to
    token = target_token(scratch, args.target_token_env) if scratch else None  # never the source's
    store = _store(args)
    if args.source:
        known_source(store, args.source)
    drill = bool(args.drill or args.restore_to)
    skipped: list[Skipped] = []
    # a drill of --latest picks like restore --latest; an integrity check looks at the newest itself
    manifest = find_backup(
        store,
        args.backup_id,
        source=args.source,
        latest=args.latest,
        allow_suspect=args.allow_suspect or not drill,
        check_integrity=drill,
        skipped=skipped,
    )
    if skipped:
        from lastgood.backups.verify import record_damaged

        record_damaged(store, skipped)
    if not args.json:
        _say_skipped(skipped, manifest)
    rto = None
    if args.drill:
        scratch, token = scratch_target(manifest.source)
    if scratch:
        from lastgood.backups.target_db import with_database

        scratch = with_database(scratch, args.db)
    try:
        from lastgood.core.config import get_config

        rto = get_config().source(manifest.source).rto_seconds
    except Exception:  # a backup whose source left the config can still be verified
        rto = None
    result = verify_backup(
        store, manifest, scratch_url=scratch, token=token, rto_seconds=rto, progress=_progress
    )
    if args.json:
        _out(result.as_dict())
    else:
        verdict = "PASSED" if result.passed else "FAILED"
        sys.stdout.write(
            f"{manifest.source}/{manifest.backup_id}: {verdict} — integrity "
            f"{'ok' if result.integrity_ok else 'FAILED'} ({result.objects_checked}/{len(manifest.objects)} "
            f"objects, {result.bytes_checked} bytes re-hashed)\n"
        )
        for key, why in result.bad_objects.items():
            sys.stdout.write(f"  BAD OBJECT {key}: {why}\n")
        if result.drill is not None:
            d = result.drill
            within = "within" if result.within_rto else "EXCEEDED" if result.within_rto is False else "no RTO"
            sys.stdout.write(
                f"  drill into {d.target}: {'counts match' if d.ok else 'COUNT MISMATCH'}; measured recovery "
                f"time {d.total_seconds:.2f}s (verify {d.verify_seconds:.2f}s + restore {d.restore_seconds:.2f}s;"
                f" RTO {rto}s: {within})\n"
            )
            _print_checks(d.checks, indent=4)
        if result.drill_error:
            sys.stdout.write(f"  drill FAILED: {result.drill_error}\n")
    if not result.integrity_ok or any(s.kind != "suspect" for s in skipped):
        return 6  # BackupIntegrityError.exit_code (a newer backup it skipped is damaged or unreadable)
    return 0 if result.passed else 8  # RestoreError.exit_code: the drill failed


def run_pin(args: argparse.Namespace) -> int:
    from lastgood.backups.pins import set_pinned

    _logs_to_stderr()
    result = set_pinned(args.backup_id, args.pinned, reason=getattr(args, "reason", None))
    if args.json:
        _out(
            {
                "source": result.source,
                "backup_id": result.backup_id,
                "pinned": result.pinned,
                "pin_reason": result.pin_reason,
                "record_key": result.record_key,
                "legal_hold": result.legal_hold,
            }
        )
        return 0
    state = f"pinned ({result.pin_reason})" if result.pinned else "unpinned"
    hold = "; Object Lock legal hold " + ("set" if result.pinned else "released") if result.legal_hold else ""
    sys.stdout.write(f"{result.source}/{result.backup_id}: {state} (record {result.record_key}{hold})\n")
    return 0


def run_migrate(args: argparse.Namespace) -> int:
    from lastgood.backups.migrate import run_migration

    _logs_to_stderr()
    command = list(args.migration)
    if command and command[0] == "--":
        command = command[1:]

    def confirm(question: str) -> bool:
        if args.yes:
            return True
        if not sys.stdin.isatty():
            sys.stderr.write(
                f"{question}? not confirmed (no terminal; pass --yes to roll back automatically)\n"
            )
            return False
        return input(f"{question}? [y/N] ").strip().lower() in {"y", "yes"}

    outcome = run_migration(args.source, command, confirm=confirm, progress=_progress, reason=args.reason)
    if args.json:
        _out(outcome.as_dict())
    elif outcome.exit_code == 0:
        sys.stdout.write(f"migration succeeded; safety backup {outcome.backup_id} is pinned\n")
    elif outcome.rolled_back:
        ok = outcome.restore is not None and outcome.restore.ok
        sys.stdout.write(
            f"migration failed (exit {outcome.exit_code}); {args.source} restored from {outcome.backup_id}"
            f" ({'counts match' if ok else 'COUNT MISMATCH'})\n"
        )
    else:
        sys.stdout.write(
            f"migration failed (exit {outcome.exit_code}); NOT rolled back (backup {outcome.backup_id})\n"
        )
    return outcome.exit_code or 0


def _print_checks(checks: list[Any], *, indent: int) -> None:
    """One line per compared count: name, manifest, restored, ok/MISMATCH."""
    width = 42 - indent
    for check in checks:
        mark = "ok" if check.ok else "MISMATCH"
        sys.stdout.write(
            f"{' ' * indent}{check.name:<{width}} manifest {check.expected:>8}  "
            f"restored {check.restored!s:>8}  {mark}\n"
        )
