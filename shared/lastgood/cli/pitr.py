"""`lastgood capture`, `lastgood pitr enable|disable|status` and `restore --to-time/--to-lsn` (PITR)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def _out(doc: Any) -> None:
    sys.stdout.write(json.dumps(doc, indent=2, ensure_ascii=False, default=str) + "\n")


def _progress(message: str) -> None:
    sys.stderr.write(f"… {message}\n")
    sys.stderr.flush()


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    c = subparsers.add_parser(
        "capture",
        help="capture a PITR source's changes since the last segment into a new change segment",
        description=(
            "Peek the source's logical replication slot, write an immutable checksummed segment (manifest "
            "last), then advance the slot. Nothing is committed and the slot stays put on any failure."
        ),
    )
    c.add_argument("--source", required=True)
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=run_capture_cmd)

    p = subparsers.add_parser("pitr", help="set up, tear down or inspect point-in-time recovery of a source")
    sub = p.add_subparsers(dest="pitr_command", metavar="ACTION", required=True)
    e = sub.add_parser(
        "enable", help="check wal_level and privileges, create the publication (and report tables)"
    )
    e.add_argument("--source", required=True)
    e.add_argument(
        "--allow-no-identity",
        action="store_true",
        help="create the publication although some tables have no primary key / replica identity",
    )
    e.add_argument("--json", action="store_true")
    e.set_defaults(func=run_enable)
    d = sub.add_parser("disable", help="drop lastgood's publication and replication slots of the source")
    d.add_argument("--source", required=True)
    d.add_argument("--json", action="store_true")
    d.set_defaults(func=run_disable)
    s = sub.add_parser("status", help="slot lag and the newest segment's age")
    s.add_argument("--source", required=True)
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=run_status)


def run_capture_cmd(args: argparse.Namespace) -> int:
    from lastgood.cli.backup import logs_to_stderr
    from lastgood.pitr.capture import run_capture

    logs_to_stderr()
    result = run_capture(args.source)
    if args.json:
        _out(result.as_dict())
    else:
        sys.stdout.write(result.message + "\n")
    return 0


def run_enable(args: argparse.Namespace) -> int:
    from lastgood.pitr.setup import enable

    report = enable(args.source, allow_no_identity=args.allow_no_identity)
    if args.json:
        _out(report.as_dict())
    else:
        sys.stdout.write("\n".join(report.lines()) + "\n")
    return 0


def run_disable(args: argparse.Namespace) -> int:
    from lastgood.pitr.setup import disable

    dropped = disable(args.source)
    if args.json:
        _out(dropped)
    else:
        sys.stdout.write(
            f"{args.source}: dropped publication {dropped['publication'] or '(none)'} and "
            f"{len(dropped['slots'])} slot(s) {', '.join(dropped['slots'])}\n"
        )
    return 0


def run_status(args: argparse.Namespace) -> int:
    from lastgood.pitr.lag import pitr_status

    status = pitr_status(args.source)
    if args.json:
        _out(status.as_dict())
    else:
        sys.stdout.write(status.line() + "\n")
    return 0 if status.ok else 12


def run_pitr_restore(args: argparse.Namespace, target_url: str) -> int:
    """`lastgood restore --source NAME --to-time T | --to-lsn L --target URL`."""
    from lastgood.backups.restore import known_source
    from lastgood.backups.store import BackupStore
    from lastgood.cli.backup import logs_to_stderr
    from lastgood.core.errors import BackupIntegrityError, UsageError
    from lastgood.pitr import pgoutput
    from lastgood.pitr.restore import parse_target_time, restore_to

    logs_to_stderr()
    if not args.source or args.backup_id or args.latest:
        raise UsageError("--to-time / --to-lsn go with --source NAME (not a BACKUP_ID or --latest)")
    if args.to_time and args.to_lsn:
        raise UsageError("give either --to-time or --to-lsn, not both")
    if args.only or args.wipe_first or args.allow_suspect:
        raise UsageError("--only, --wipe-first and --allow-suspect do not apply to a point-in-time restore")
    store = BackupStore.from_settings()
    known_source(store, args.source)
    to_time = parse_target_time(args.to_time) if args.to_time else None
    try:
        to_lsn = pgoutput.parse_lsn(args.to_lsn) if args.to_lsn else None
    except ValueError as exc:
        raise UsageError(f"--to-lsn: {exc}") from None
    report = restore_to(
        args.source, target_url=target_url, to_time=to_time, to_lsn=to_lsn, store=store, force=args.force,
        yes=args.yes, safety_backup=not args.no_safety_backup, progress=_progress,
    )  # fmt: skip
    if args.json:
        _out(report.as_dict())
    else:
        last = report.last
        applied = (
            f"last transaction applied: xid {last.xid}, commit LSN {last.commit_lsn}, committed {last.commit_time}"
            if last
            else "no change after the base applied"
        )
        sys.stdout.write(
            f"restored {report.source} to {report.target_time or report.target_lsn}: base {report.base_id} + "
            f"{report.transactions} transaction(s) ({report.changes} change(s)) from {report.segments} segment(s); "
            f"{applied}; {report.sequences_fixed} sequence(s) moved\n"
        )
    if report.stopped:
        raise BackupIntegrityError(
            f"the change log was cut: {report.stopped}; the target holds the state after the last transaction "
            "applied above, later changes were NOT applied"
        )
    return 0 if report.base.ok else 1


def run_pitr_drill(args: argparse.Namespace) -> int:
    """`lastgood verify --drill --source NAME --to-time T`: restore to T into the scratch target."""
    from lastgood.core.errors import UsageError
    from lastgood.pitr.restore import drill_to, parse_target_time

    if not (args.drill and args.source) or args.backup_id or args.latest or args.restore_to:
        raise UsageError("--to-time goes with --drill --source NAME (the source's configured scratch target)")
    drill = drill_to(args.source, to_time=parse_target_time(args.to_time), progress=_progress)
    if args.json:
        _out(drill.as_dict())
    else:
        last = drill.report.last
        sys.stdout.write(
            f"{args.source} PITR drill to {drill.report.target_time}: {'PASSED' if drill.passed else 'FAILED'} — "
            f"base {drill.report.base_id} + {drill.report.transactions} transaction(s), last "
            f"{last.commit_time if last else '(none after the base)'}; recovery {drill.recovery_time_s:.2f}s "
            f"(RTO {drill.rto_s}s){'; stopped: ' + drill.report.stopped if drill.report.stopped else ''}\n"
        )
    return 0 if drill.passed else 1
