"""`lastgood status [--out FILE] [--publish] [--url [--expires 15m]]`: the status page.

One self-contained HTML file (`lastgood.monitoring.status_page`): per declared source a
30-day timeline of its backups, RPO band and restore drills; the datasets' freshness.
`--out` writes it locally (default `status.html`); `--publish` also stores it in the backup
bucket (what the daily summary run does); `--url` prints a presigned URL of the stored copy,
valid for `--expires` (default 15m). Exit 0 whatever the page reports: it is a report.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _expires(text: str) -> int:
    from lastgood.core.config_model import parse_duration_seconds

    try:
        seconds = parse_duration_seconds(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if seconds > 7 * 24 * 3600:
        raise argparse.ArgumentTypeError("a presigned URL lives at most 7d")
    return seconds


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "status",
        help="render the status page (HTML): 30-day backup timelines, RPO band, drills, datasets",
        description=(
            "Render the status page: one self-contained HTML file. Written to --out (default "
            "status.html); --publish also stores it in the backup bucket (status/index.html), "
            "--url prints a short-lived presigned URL of the stored copy."
        ),
    )
    parser.add_argument("--out", type=Path, help="write the page here (default status.html)")
    parser.add_argument("--publish", action="store_true", help="also store it in the backup bucket")
    parser.add_argument(
        "--url", action="store_true", help="print a presigned URL of the page stored in the backup bucket"
    )
    parser.add_argument(
        "--expires", type=_expires, default=15 * 60, metavar="DURATION", help="URL lifetime (default 15m)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lastgood.cli.kv import logs_to_stderr

    logs_to_stderr()
    from lastgood.monitoring import status_gather

    render = args.out is not None or args.publish or not args.url
    if render:
        html, gathered = status_gather.render_page()
        out: Path = args.out or Path("status.html")
        try:
            out.write_text(html, encoding="utf-8")
        except OSError as exc:
            from lastgood.core.errors import ConfigError

            raise ConfigError(f"cannot write {out}: {exc.strerror or exc}") from None
        inputs = gathered.inputs
        issues = inputs.issues()
        sys.stderr.write(
            f"wrote {out} ({len(html.encode()):,} bytes): {len(inputs.sources)} sources, "
            f"{sum(len(s.marks) for s in inputs.sources)} backups in 30 days, "
            f"{len(issues) or 'no'} issue{'s' if len(issues) != 1 else ''}\n"
        )
        if args.publish:
            from lastgood.backups.store import BackupStore

            store = gathered.store or BackupStore.from_settings()
            key = status_gather.store_page(html, store)
            sys.stderr.write(f"stored s3://{store.bucket}/{key}\n")
    if args.url:
        sys.stdout.write(status_gather.presigned_url(args.expires) + "\n")
    return 0
