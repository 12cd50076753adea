"""Times, schedules and sizes as lastgood writes and reads them (pure, no I/O).

Every stored document spells times as `iso_z` (UTC, `Z`); every reader parses them with
`parse_time`. Schedule expressions are the EventBridge Scheduler ones.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from lastgood.core.errors import ConfigError


def to_utc(moment: datetime) -> datetime:
    """Naive datetimes are taken as UTC; aware ones are converted."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def iso_z(moment: datetime) -> str:
    """`2025-01-29T02:00:00Z` (microseconds kept only when present)."""
    return to_utc(moment).isoformat().replace("+00:00", "Z")


def parse_time(text: str) -> datetime:
    """Parse an ISO-8601 time (`Z` or offset; naive = UTC). Raises ConfigError with the text."""
    try:
        return to_utc(datetime.fromisoformat(text.strip().replace("Z", "+00:00")))
    except (ValueError, AttributeError):
        raise ConfigError(f"expected an ISO-8601 time like 2025-01-29T02:00:00Z, got {text!r}") from None


_RATE_RE = re.compile(r"^rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)$")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


def schedule_period_seconds(schedule: str) -> int:
    """The slot length of an EventBridge schedule expression.

    `rate(N unit)` → N units. `cron(...)` and `at(...)` fire at explicit times, so
    each firing is its own slot: the period is one minute (the schedule's
    resolution), which still makes a retried invocation of one firing (same
    scheduled time) land in the same slot.
    """
    text = schedule.strip()
    match = _RATE_RE.match(text)
    if match:
        value = int(match[1])
        if value <= 0:
            raise ConfigError(f"schedule {schedule!r}: rate must be positive")
        return value * _UNIT_SECONDS[match[2].rstrip("s")]
    if text.startswith(("cron(", "at(")) and text.endswith(")"):
        return 60
    raise ConfigError(f"unsupported schedule expression {schedule!r}: expected rate(N unit) or cron(...)")


def floor_slot(moment: datetime, period_s: int) -> datetime:
    """Floor `moment` (UTC) to a multiple of `period_s` since the Unix epoch."""
    if period_s <= 0:
        raise ValueError("period must be positive")
    utc = to_utc(moment)
    epoch = int(utc.timestamp())
    return datetime.fromtimestamp(epoch - epoch % period_s, UTC)


def human_bytes(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"  # pragma: no cover


def age(moment: datetime, now: datetime | None = None) -> timedelta:
    return to_utc(now or datetime.now(UTC)) - to_utc(moment)


def human_duration(seconds: float | None) -> str:
    """`45s`, `12m`, `3h 05m`, `2d 4h` (None → `?`)."""
    if seconds is None:
        return "?"
    total = max(0, round(seconds))
    if total < 60:
        return f"{total}s"
    minutes, _ = divmod(total, 60)
    if minutes < 60:
        return f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h {minutes:02d}m" if minutes else f"{hours}h"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours}h" if hours else f"{days}d"
