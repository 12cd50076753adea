"""`lastgood regenerate`, `lastgood load`, `lastgood bundle`."""

from __future__ import annotations

import argparse
import json
import sys


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    r = subparsers.add_parser(
        "regenerate",
        help="regenerate datasets from MongoDB and publish them (guarded, atomic)",
        description="Exit 0 when nothing failed (rejected datasets are reported, not errors); 1 if any failed.",
    )
    r.add_argument("--dataset", action="append", help="only this dataset (repeatable)")
    r.add_argument("--dry-run", action="store_true", help="query and guard, write nothing")
    r.add_argument("--json", action="store_true")
    r.set_defaults(func=run_regenerate)

    lo = subparsers.add_parser(
        "load",
        help="read a dataset through the fallback chain; data to stdout, the answering layer to stderr",
        description="Exit 0 with the data; 3 and 'CRITICAL: All fallbacks failed' when every layer failed.",
    )
    lo.add_argument("dataset")
    lo.add_argument("--chain", help="comma-separated layers (default memory,live,last-good,mongodb,bundled)")
    lo.set_defaults(func=run_load)

    b = subparsers.add_parser("bundle", help="refresh the bundled dataset copies from last-good")
    b.add_argument("--dataset", action="append")
    b.add_argument("--json", action="store_true")
    b.set_defaults(func=run_bundle)


def run_regenerate(args: argparse.Namespace) -> int:
    from lastgood.cli.backup import logs_to_stderr
    from lastgood.regenerate import regenerate

    logs_to_stderr()
    outcomes = regenerate(args.dataset, dry_run=args.dry_run)
    if args.json:
        sys.stdout.write(json.dumps([o.as_dict() for o in outcomes], indent=2) + "\n")
    else:
        for o in outcomes:
            detail = f" ({o.reason})" if o.reason else ""
            count = f" {o.count} items" if o.count is not None else ""
            sys.stdout.write(f"{o.dataset:<12} {o.status}{count}{detail}\n")
    return 1 if any(o.status == "failed" for o in outcomes) else 0


def run_load(args: argparse.Namespace) -> int:
    from lastgood.cli.backup import logs_to_stderr
    from lastgood.loader import load

    logs_to_stderr()
    chain = tuple(s.strip() for s in args.chain.split(",")) if args.chain else None
    ds = load(args.dataset, chain=chain)
    sys.stdout.write(json.dumps(ds.items, ensure_ascii=False) + "\n")
    age = "unknown age" if ds.age_seconds is None else f"age {ds.age_seconds:.0f}s"
    stale = " (STALE)" if ds.stale else ""
    sys.stderr.write(f"lastgood: {args.dataset}: {len(ds.items)} items from {ds.layer}, {age}{stale}\n")
    return 0


def run_bundle(args: argparse.Namespace) -> int:
    from lastgood.bundle import refresh
    from lastgood.cli.backup import logs_to_stderr

    logs_to_stderr()
    results = refresh(args.dataset)
    if args.json:
        sys.stdout.write(json.dumps([r.__dict__ for r in results], indent=2) + "\n")
    else:
        for r in results:
            extra = f" ({r.reason})" if r.reason else ""
            sys.stdout.write(f"{r.dataset:<12} {r.status} {r.count if r.count is not None else ''}{extra}\n")
    return 0
