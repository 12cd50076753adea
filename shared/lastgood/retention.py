"""Retention planning: a pure function from (backups, policy, now) to a plan with reasons.

Semantics are restic's `forget` (internal/data/snapshot_policy.go), in UTC:

- backups are walked newest to oldest; each rule (`keep_last`, `keep_hourly`,
  `keep_daily`, `keep_weekly` (ISO weeks), `keep_monthly`, `keep_yearly`) keeps
  the newest backup of each of its N most recent buckets that have a backup, and
  also the oldest backup while that rule still has counts left ("oldest …");
  `-1` means unlimited;
- `keep_within` (`2d`, `36h`, `1y6m`: years, months, days, hours) keeps every
  backup newer than the newest backup minus that duration;
- rules are OR'ed; a kept backup lists every rule that kept it.

lastgood adds, on top of the policy: pinned backups are always kept; the newest
verified complete backup is always kept; incomplete backups (no manifest) never
count for the policy and are removed once older than the grace period (24 h by
default). An empty policy is refused, and so is a plan that would remove every
complete backup, or more than `max_remove_share` of them at once (unless
`force`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from lastgood.errors import RetentionError

COUNT_RULES = ("keep_last", "keep_hourly", "keep_daily", "keep_weekly", "keep_monthly", "keep_yearly")
DEFAULT_GRACE = timedelta(hours=24)
DEFAULT_MAX_REMOVE_SHARE = 0.5
# Below this many removals the share guard does not apply (pruning 3 of 4 is routine).
SHARE_GUARD_MIN_REMOVALS = 10

_REASON = {
    "keep_last": "last snapshot",
    "keep_hourly": "hourly snapshot",
    "keep_daily": "daily snapshot",
    "keep_weekly": "weekly snapshot",
    "keep_monthly": "monthly snapshot",
    "keep_yearly": "yearly snapshot",
}
_DURATION_PART = re.compile(r"(-?\d+)([ymdh])")


@dataclass(frozen=True)
class Within:
    """restic's Duration: calendar years/months/days plus hours."""

    years: int = 0
    months: int = 0
    days: int = 0
    hours: int = 0

    @classmethod
    def parse(cls, text: str) -> Within:
        s = text.strip()
        if not s:
            raise RetentionError("keep_within: empty duration (expected e.g. 2d, 36h, 1y6m)")
        parts: dict[str, int] = {}
        pos = 0
        for match in _DURATION_PART.finditer(s):
            if match.start() != pos:
                break
            parts[match.group(2)] = int(match.group(1))
            pos = match.end()
        if pos != len(s):
            raise RetentionError(
                f"keep_within: invalid duration {text!r} (units y, m, d, h; e.g. 2d, 36h, 1y6m)"
            )
        within = cls(parts.get("y", 0), parts.get("m", 0), parts.get("d", 0), parts.get("h", 0))
        if min(within.years, within.months, within.days, within.hours) < 0 or within.is_zero():
            raise RetentionError(f"keep_within: duration must be positive, got {text!r}")
        return within

    def is_zero(self) -> bool:
        return not (self.years or self.months or self.days or self.hours)

    def __str__(self) -> str:
        return "".join(
            f"{v}{u}"
            for v, u in ((self.years, "y"), (self.months, "m"), (self.days, "d"), (self.hours, "h"))
            if v
        )

    def subtract_from(self, moment: datetime) -> datetime:
        """Go's `t.AddDate(-y, -m, -d).Add(-h)`: calendar arithmetic with month-end normalisation."""
        year = moment.year - self.years
        month = moment.month - self.months
        year += (month - 1) // 12
        month = (month - 1) % 12 + 1
        # AddDate normalises overflow (e.g. Mar 31 - 1 month = "Feb 31" = Mar 3), like Go.
        base = datetime(
            year, month, 1, moment.hour, moment.minute, moment.second, moment.microsecond, moment.tzinfo
        )
        shifted = base + timedelta(days=moment.day - 1 - self.days)
        return shifted - timedelta(hours=self.hours)


@dataclass(frozen=True)
class RetentionPolicy:
    keep_last: int = 0
    keep_hourly: int = 0
    keep_daily: int = 0
    keep_weekly: int = 0
    keep_monthly: int = 0
    keep_yearly: int = 0
    keep_within: Within | None = None

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> RetentionPolicy:
        """Validate a policy from config/CLI; unknown keys and bad counts are refused by name."""
        if not isinstance(raw, dict):
            raise RetentionError(f"retention policy must be an object, got {type(raw).__name__}")
        unknown = sorted(set(raw) - {*COUNT_RULES, "keep_within"})
        if unknown:
            raise RetentionError(
                f"unknown retention keys {', '.join(unknown)}; known: {', '.join((*COUNT_RULES, 'keep_within'))}"
            )
        counts: dict[str, int] = {}
        for key in COUNT_RULES:
            value = raw.get(key, 0)
            if value is None:
                value = 0
            if isinstance(value, bool) or not isinstance(value, int):
                raise RetentionError(f"{key} must be an integer, got {value!r}")
            if value < -1:
                raise RetentionError(f"{key} must be >= 0 (or -1 for unlimited), got {value}")
            counts[key] = value
        within_raw = raw.get("keep_within")
        within = Within.parse(str(within_raw)) if within_raw not in (None, "") else None
        return cls(**counts, keep_within=within)

    def is_empty(self) -> bool:
        return all(getattr(self, k) == 0 for k in COUNT_RULES) and self.keep_within is None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {k: getattr(self, k) for k in COUNT_RULES if getattr(self, k)}
        if self.keep_within is not None:
            out["keep_within"] = str(self.keep_within)
        return out

    def describe(self) -> str:
        return " ".join(f"--{k.replace('_', '-')} {v}" for k, v in self.as_dict().items()) or "(empty)"


@dataclass
class BackupInfo:
    """What planning needs to know of a backup."""

    backup_id: str
    time: datetime
    complete: bool = True
    pinned: bool = False
    pin_reason: str | None = None
    verified: bool = False


@dataclass
class Decision:
    backup: BackupInfo
    keep: bool
    reasons: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "backup_id": self.backup.backup_id,
            "time": self.backup.time.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "keep": self.keep,
            "reasons": list(self.reasons),
        }


@dataclass
class RetentionPlan:
    policy: RetentionPolicy
    decisions: list[Decision]  # newest first

    @property
    def keep(self) -> list[Decision]:
        return [d for d in self.decisions if d.keep]

    @property
    def remove(self) -> list[Decision]:
        return [d for d in self.decisions if not d.keep]


def _ymdh(t: datetime, _: int) -> int:
    return t.year * 1000000 + t.month * 10000 + t.day * 100 + t.hour


def _ymd(t: datetime, _: int) -> int:
    return t.year * 10000 + t.month * 100 + t.day


def _yw(t: datetime, _: int) -> int:
    year, week, _weekday = t.isocalendar()
    return year * 100 + week


def _ym(t: datetime, _: int) -> int:
    return t.year * 100 + t.month


def _y(t: datetime, _: int) -> int:
    return t.year


def _always(_: datetime, nr: int) -> int:
    return nr


_BUCKERS: dict[str, Callable[[datetime, int], int]] = {
    "keep_last": _always,
    "keep_hourly": _ymdh,
    "keep_daily": _ymd,
    "keep_weekly": _yw,
    "keep_monthly": _ym,
    "keep_yearly": _y,
}


def apply_policy(times: Sequence[datetime], policy: RetentionPolicy) -> list[list[str]]:
    """restic's ApplyPolicy over times (any order): per input index, the reasons it is kept
    ([] = removed). Ties in time keep their input order, like restic's stable sort."""
    order = sorted(range(len(times)), key=lambda i: times[i].astimezone(UTC), reverse=True)
    # sorted() is stable, but reverse=True keeps equal elements in input order too.
    reasons: list[list[str]] = [[] for _ in times]
    if not times:
        return reasons
    utc = [t.astimezone(UTC) for t in times]
    latest = max(utc)
    counts = {k: getattr(policy, k) for k in COUNT_RULES}
    last = dict.fromkeys(COUNT_RULES, -1)
    cutoff = policy.keep_within.subtract_from(latest) if policy.keep_within else None
    final = len(order) - 1
    for nr, index in enumerate(order):
        cur = utc[index]
        mine: list[str] = []
        if cutoff is not None and cur > cutoff:
            mine.append(f"within {policy.keep_within}")
        for rule in COUNT_RULES:
            if counts[rule] > 0 or counts[rule] == -1:
                val = _BUCKERS[rule](cur, nr)
                if val != last[rule] or nr == final:
                    reason = _REASON[rule]
                    if val == last[rule] and nr == final:
                        reason = f"oldest {reason}"
                    last[rule] = val
                    if counts[rule] > 0:
                        counts[rule] -= 1
                    mine.append(reason)
        reasons[index] = mine
    return reasons


def plan(
    backups: Sequence[BackupInfo],
    policy: RetentionPolicy,
    now: datetime,
    *,
    grace: timedelta = DEFAULT_GRACE,
    max_remove_share: float = DEFAULT_MAX_REMOVE_SHARE,
    force: bool = False,
) -> RetentionPlan:
    """Decide keep/remove with reasons for each backup (newest first). Raises RetentionError when
    the policy is empty or the plan is refused by a safety guard (see module docstring)."""
    if policy.is_empty():
        raise RetentionError("empty retention policy: refusing to plan (it would remove every backup)")
    complete = [b for b in backups if b.complete]
    policy_reasons = apply_policy([b.time for b in complete], policy)
    by_id: dict[int, list[str]] = {id(b): r for b, r in zip(complete, policy_reasons, strict=True)}
    newest_verified = max((b for b in complete if b.verified), key=lambda b: b.time, default=None)
    decisions: list[Decision] = []
    for backup in backups:
        reasons: list[str] = []
        if backup.complete:
            reasons.extend(by_id[id(backup)])
            if backup.pinned:
                reasons.append(f"pinned ({backup.pin_reason})" if backup.pin_reason else "pinned")
            if newest_verified is not None and backup is newest_verified:
                reasons.append("newest verified backup")
        else:
            age = now - backup.time
            if backup.pinned:
                reasons.append("pinned")
            elif age <= grace:
                reasons.append(f"incomplete, within the {grace_text(grace)} grace period")
        decisions.append(Decision(backup, bool(reasons), reasons))
    decisions.sort(key=lambda d: (d.backup.time, d.backup.backup_id), reverse=True)
    result = RetentionPlan(policy, decisions)
    removed_complete = [d for d in result.remove if d.backup.complete]
    if complete and len(removed_complete) == len(complete):
        raise RetentionError("refusing a plan that removes every complete backup")
    if not force and complete and len(removed_complete) >= SHARE_GUARD_MIN_REMOVALS:
        share = len(removed_complete) / len(complete)
        if share > max_remove_share:
            raise RetentionError(
                f"refusing to remove {len(removed_complete)} of {len(complete)} complete backups "
                f"({share:.0%} > {max_remove_share:.0%} at once); check the policy with --dry-run, "
                "then run again with --force"
            )
    return result


def grace_text(grace: timedelta) -> str:
    hours = grace.total_seconds() / 3600
    return f"{hours:g}h"
