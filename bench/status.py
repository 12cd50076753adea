"""Status page: render time and file size for 10,000 backups in the 30-day window.

The listings are what `BackupStore.list_backups` returns (manifests built by the writer's
`BackupManifest.build`); timed: `status_model.build_timeline` + `status_page.render`, the
pure part of `lastgood status` (the S3 reads are the catalog's, measured with it).
Goals (issue 19): under 2 s and under 1 MB.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.common import Context

BACKUPS = 10_000
SOURCES = ("postgres", "mongodb", "upstash")
RENDER_GOAL_S = 2.0
SIZE_GOAL = 1_000_000


def _listings(source: str, n: int, now: datetime) -> list[Any]:
    from lastgood.backups.catalog import BackupListing
    from lastgood.backups.manifest import BackupManifest, ObjectEntry, new_backup_id

    out = []
    step = timedelta(days=30) / n
    for i in range(n):
        finished = now - step * (i + 1)
        backup_id = new_backup_id(finished - timedelta(seconds=20))
        manifest = BackupManifest.build(
            backup_id=backup_id,
            source=source,
            engine="postgres",
            started_at=finished - timedelta(seconds=20),
            finished_at=finished,
            objects=[ObjectEntry(key="dump.pgc", bytes=1_000_000 + i, sha256="0" * 64, count=100)],
        )
        status = "verified" if i % 24 == 0 else "complete"
        out.append(
            BackupListing(source, backup_id, finished, status, manifest.totals.bytes, 1, manifest=manifest)
        )
    return out


def measure(backups: int = BACKUPS) -> tuple[float, int, int]:
    """(best seconds of 3, page bytes, marks drawn) for `backups` spread over the sources."""
    from lastgood.monitoring.status_model import StatusInputs, build_timeline
    from lastgood.monitoring.status_page import render

    now = datetime.now(UTC)
    per = backups // len(SOURCES)
    listings = {
        s: _listings(s, per + (1 if i < backups % len(SOURCES) else 0), now) for i, s in enumerate(SOURCES)
    }
    best, html = float("inf"), ""
    for _ in range(3):
        started = time.perf_counter()
        inputs = StatusInputs("bench", now)
        inputs.sources = [
            build_timeline(s, "postgres", 3600, 14400, items, [], now=now) for s, items in listings.items()
        ]
        html = render(inputs)
        best = min(best, time.perf_counter() - started)
    return best, len(html.encode("utf-8")), html.count('class="mark"')


def run(ctx: Context) -> None:
    seconds, size, marks = measure()
    ctx.results.add(
        f"Status page render, {BACKUPS:,} backups",
        seconds,
        " s",
        f"< {RENDER_GOAL_S:g} s",
        seconds < RENDER_GOAL_S,
        f"build_timeline + render over 3 sources, 30 days; {marks} marks (aggregated per 3-hour bucket "
        f"and state above 800 backups per source)",
        "status",
    )
    ctx.results.add(
        f"Status page size, {BACKUPS:,} backups",
        size / 1e6,
        " MB",
        "< 1 MB",
        size < SIZE_GOAL,
        "one self-contained HTML file (inline CSS and SVG, no script)",
        "status",
    )
