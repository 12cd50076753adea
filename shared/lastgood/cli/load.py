"""`lastgood load DATASET [--chain a,b,c]`: the data on stdout, the answering layer on stderr."""

from __future__ import annotations

import argparse
import json
import sys


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "load",
        help="read a dataset through the fallback chain (data → stdout, which layer answered → stderr)",
        description=(
            "Walks the loader chain (default memory,live,last-good,mongodb,bundled) and prints the first "
            "valid, non-empty answer as a JSON array on stdout; stderr says which layer answered, its age, "
            "whether it is stale, and why earlier layers did not. Exit 0 with data; 3 with "
            "'CRITICAL: All fallbacks failed' when every layer failed."
        ),
    )
    parser.add_argument("dataset", help="a configured dataset name (prompts, patterns, learning, ...)")
    parser.add_argument("--chain", help="comma-separated layers to try, in order (e.g. last-good,bundled)")
    parser.add_argument(
        "--json",
        action="store_true",
        help="print {dataset, layer, age_seconds, stale, count, items} instead of the bare array",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lastgood.cli.backup import logs_to_stderr
    from lastgood.site.loader import load

    logs_to_stderr()
    ds = load(args.dataset, chain=args.chain)
    if args.json:
        doc = {
            "dataset": ds.name,
            "layer": ds.layer,
            "age_seconds": ds.age_seconds,
            "stale": ds.stale,
            "count": len(ds.items),
            "items": ds.items,
        }
        sys.stdout.write(json.dumps(doc, ensure_ascii=False) + "\n")
        return 0
    sys.stdout.write(json.dumps(ds.items, ensure_ascii=False, separators=(",", ":")) + "\n")
    age = "age unknown" if ds.age_seconds is None else f"age {ds.age_seconds:.0f}s"
    freshness = "STALE" if ds.stale else "fresh"
    sys.stderr.write(f"lastgood: {ds.name}: {len(ds.items)} items from {ds.layer} ({age}, {freshness})\n")
    return 0
