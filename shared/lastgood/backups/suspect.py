"""Suspect backups: a dump that shrank sharply, or holds nothing, must never displace a good one.

Pure rules; the backup run (`lastgood.backups.run`) applies them after the dump and before
the commit, with the ratios `baseline_ratios` computes against the median of the source's
recent complete, good (non-suspect or accepted) backups:

- an empty dump — no tables (PostgreSQL), no collections (MongoDB), no keys (Redis/Upstash)
  — is always suspect, even with no history;
- a record count below `suspect_min_count_ratio` (default 0.5) of the median, or a size
  below `suspect_min_size_ratio` (default 0.5) of the median, is suspect (0 turns a check off).

A suspect backup is committed (it is real data) with `suspect: true` and the reason in its
manifest, emits `BackupSuspect`, and satisfies no retention rule until a person accepts it
(`lastgood accept ID`, `lastgood.backups.acceptance`); `restore --latest` and the drill skip it.
"""

from __future__ import annotations

from collections.abc import Mapping

KEYSPACE_ENGINES = frozenset({"upstash", "redis"})
_UNITS = {"postgres": "tables", "mongodb": "collections", "upstash": "keys", "redis": "keys"}


def is_empty_dump(engine: str, counts: Mapping[str, int] | None) -> bool:
    """No tables / collections / keys at all, by the engine's own counts of the dump (a table with
    no rows is not an empty dump; None: the engine reported no counts, so emptiness is unknown)."""
    if counts is None:
        return False
    if engine in KEYSPACE_ENGINES:
        return int(counts.get("keys", 0)) == 0
    return not counts


def suspect_reason(
    engine: str,
    counts: Mapping[str, int] | None,
    *,
    count_ratio: float | None,
    size_ratio: float | None,
    min_count_ratio: float,
    min_size_ratio: float,
) -> str | None:
    """Why this backup is suspect, or None. Ratios are this backup ÷ the baseline median (None:
    no baseline yet)."""
    if is_empty_dump(engine, counts):
        unit = _UNITS.get(engine, "tables")
        return f"the dump has no {unit} at all"
    reasons = []
    if count_ratio is not None and count_ratio < min_count_ratio:
        reasons.append(
            f"record count is {count_ratio:.0%} of the median of recent good backups "
            f"(below suspect_min_count_ratio {min_count_ratio:g})"
        )
    if size_ratio is not None and size_ratio < min_size_ratio:
        reasons.append(
            f"size is {size_ratio:.0%} of the median of recent good backups "
            f"(below suspect_min_size_ratio {min_size_ratio:g})"
        )
    return "; ".join(reasons) or None
