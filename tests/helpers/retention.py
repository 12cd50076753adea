"""Test helpers for retention/prune: timelines and an independent model of restic's forget."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

BUCKET_KEYS = {
    "keep_hourly": lambda t: (t.year, t.month, t.day, t.hour),
    "keep_daily": lambda t: (t.year, t.month, t.day),
    "keep_weekly": lambda t: t.isocalendar()[:2],
    "keep_monthly": lambda t: (t.year, t.month),
    "keep_yearly": lambda t: t.year,
}


def hourly_timeline(days: int, start: datetime = datetime(2025, 1, 1, tzinfo=UTC)) -> list[datetime]:
    return [start + timedelta(hours=h) for h in range(days * 24)]


def iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def restic_model(times: Iterable[datetime], policy: dict[str, int]) -> set[datetime]:
    """Independent model of restic's documented forget semantics (count rules only): per rule,
    the newest time in each of the N newest buckets that have a backup, plus the oldest time
    while the rule has counts left (fewer than N buckets before it); N = -1 is unlimited."""
    newest_first = sorted(times, reverse=True)
    kept: set[datetime] = set()
    if policy.get("keep_last"):
        n = policy["keep_last"]
        kept.update(newest_first if n == -1 else newest_first[:n])
    for rule, key in BUCKET_KEYS.items():
        n = policy.get(rule, 0)
        if not n:
            continue
        seen: list[tuple[object, datetime]] = []
        for t in newest_first:
            if not seen or key(t) != seen[-1][0]:
                seen.append((key(t), t))
        chosen = seen if n == -1 else seen[:n]
        kept.update(t for _, t in chosen)
        before_oldest = len(seen) - (1 if seen[-1][1] == newest_first[-1] else 0)
        if n == -1 or before_oldest < n:
            kept.add(newest_first[-1])
    return kept
