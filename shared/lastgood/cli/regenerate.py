"""`lastgood regenerate [--dataset NAME] [--dry-run] [--json]`."""

from __future__ import annotations

import argparse
import json
import sys


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "regenerate",
        help="render datasets from MongoDB, guard them and publish them to S3 (+ CloudFront invalidation)",
        description=(
            "For each dataset: query MongoDB (fail-fast pool policy), render canonical JSON, apply the "
            "guards (never empty, min_count, max_shrink vs the largest count published within "
            "shrink_window, item schema); when live/ and last-good/ read back hash to the rendered "
            "SHA-256 nothing is written; otherwise it is written to versions/, then live/ (conditional "
            "write), then last-good/ (conditional, never an older version), and one CloudFront "
            "invalidation covers the changed paths. "
            "Outcome per dataset: published | repaired (a damaged object was rewritten) | unchanged | "
            "rejected | failed. "
            "Exit 0 when no dataset failed (a rejection is reported, not an error: published data "
            "stays the last good one), 1 when any failed."
        ),
    )
    parser.add_argument("--dataset", action="append", metavar="NAME", help="only this dataset (repeatable)")
    parser.add_argument("--dry-run", action="store_true", help="query and guard; write nothing")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lastgood.cli.backup import logs_to_stderr
    from lastgood.site.regenerate import regenerate

    logs_to_stderr()
    report = regenerate(args.dataset, dry_run=args.dry_run)
    if args.json:
        sys.stdout.write(json.dumps(report.as_dict(), indent=2) + "\n")
    else:
        for o in report.outcomes:
            count = "" if o.count is None else f" {o.count} items"
            reason = f" — {o.reason}" if o.reason else ""
            sys.stdout.write(f"{o.dataset:<12} {o.status:<10}{count} ({o.seconds:.2f}s){reason}\n")
        inv = report.invalidation
        if inv:
            what = inv.get("id") or inv.get("skipped")
            sys.stdout.write(f"invalidation: {what} {' '.join(inv.get('paths', []))}\n")
        for error in report.errors:
            sys.stdout.write(f"error: {error}\n")
        note = " (dry run: nothing written)" if report.dry_run else ""
        sys.stdout.write(f"done in {report.seconds:.2f}s{note}\n")
    return 1 if any(o.status == "failed" for o in report.outcomes) else 0
