"""Retention planning: a pure function from (backups, policy, now) to a plan with reasons.

Semantics are restic's `forget` (internal/data/snapshot_policy.go), in UTC
(restic buckets in the snapshot's local time zone; lastgood's times are UTC):

- backups are walked newest to oldest; each rule (`keep_last`, `keep_hourly`,
  `keep_daily`, `keep_weekly` (ISO weeks), `keep_monthly`, `keep_yearly`) keeps
  the newest backup of each of its N most recent buckets that have a backup, and
  also the oldest backup while that rule still has counts left ("oldest …");
  `-1` means unlimited;
- `keep_within` (`2d`, `36h`, `1y6m`: years, months, days, hours) keeps every
  backup newer than the newest backup minus that duration ("newest" ignores
  backups dated after `now`, like restic's `findLatestTimestamp`, which uses
  the wall clock);
- `keep_within_hourly|daily|weekly|monthly|yearly` keep the newest backup of every
  bucket inside that window (and the oldest backup, when it is inside);
- rules are OR'ed; a kept backup lists every rule that kept it.

lastgood adds, on top of the policy: pinned backups are always kept; the newest
verified complete backup is always kept; incomplete backups (no manifest) never
count for the policy and are removed once older than the grace period (24 h by
default). A `suspect` backup (one that shrank sharply, not yet accepted with
`lastgood accept`) satisfies no rule — it is not "the hourly/daily … copy", so
the rules apply to the good backups only — and the newest good backup before
each suspect one is kept ("newest good backup before suspect <id>"); a suspect
backup newer than every good one is kept too (it is the newest real data,
awaiting a person's decision). An empty policy is refused, and so is a plan that would
remove every complete backup, or more than `max_remove_share` of them at once
unless `force` (any count: only a plan removing at most one backup is exempt).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from lastgood.backups.within import Within
from lastgood.core.errors import RetentionError

COUNT_RULES = ("keep_last", "keep_hourly", "keep_daily", "keep_weekly", "keep_monthly", "keep_yearly")
DEFAULT_GRACE = timedelta(hours=24)
DEFAULT_MAX_REMOVE_SHARE = 0.5
# A plan removing at most this many complete backups is exempt from the share guard.
SHARE_GUARD_EXEMPT_REMOVALS = 1

_REASON = {
    "keep_last": "last snapshot",
    "keep_hourly": "hourly snapshot",
    "keep_daily": "daily snapshot",
    "keep_weekly": "weekly snapshot",
    "keep_monthly": "monthly snapshot",
    "keep_yearly": "yearly snapshot",
}
WITHIN_RULES = (
    "keep_within_hourly",
    "keep_within_daily",
    "keep_within_weekly",
    "keep_within_monthly",
    "keep_within_yearly",
)
KNOWN_KEYS = (*COUNT_RULES, "keep_within", *WITHIN_RULES)
_WITHIN_REASON = {
    "keep_within_hourly": "hourly within",
    "keep_within_daily": "daily within",
    "keep_within_weekly": "weekly within",
    "keep_within_monthly": "monthly within",
    "keep_within_yearly": "yearly within",
}


@dataclass(frozen=True)
class RetentionPolicy:
    keep_last: int = 0
    keep_hourly: int = 0
    keep_daily: int = 0
    keep_weekly: int = 0
    keep_monthly: int = 0
    keep_yearly: int = 0
    keep_within: Within | None = None
    keep_within_hourly: Within | None = None
    keep_within_daily: Within | None = None
    keep_within_weekly: Within | None = None
    keep_within_monthly: Within | None = None
    keep_within_yearly: Within | None = None

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> RetentionPolicy:
        """Validate a policy from config/CLI; unknown keys and bad values are refused by name."""
        if not isinstance(raw, dict):
            raise RetentionError(f"retention policy must be an object, got {type(raw).__name__}")
        unknown = sorted(set(raw) - set(KNOWN_KEYS))
        if unknown:
            raise RetentionError(
                f"unknown retention keys {', '.join(map(str, unknown))}; known: {', '.join(KNOWN_KEYS)}"
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
        windows: dict[str, Within | None] = {}
        for key in ("keep_within", *WITHIN_RULES):
            value = raw.get(key)
            if value is not None and not isinstance(value, str):
                raise RetentionError(f"{key} must be a duration string such as 2d, 36h, 1y6m; got {value!r}")
            windows[key] = Within.parse(value, key) if value else None
        return cls(
            keep_last=counts["keep_last"],
            keep_hourly=counts["keep_hourly"],
            keep_daily=counts["keep_daily"],
            keep_weekly=counts["keep_weekly"],
            keep_monthly=counts["keep_monthly"],
            keep_yearly=counts["keep_yearly"],
            keep_within=windows["keep_within"],
            keep_within_hourly=windows["keep_within_hourly"],
            keep_within_daily=windows["keep_within_daily"],
            keep_within_weekly=windows["keep_within_weekly"],
            keep_within_monthly=windows["keep_within_monthly"],
            keep_within_yearly=windows["keep_within_yearly"],
        )

    def is_empty(self) -> bool:
        return all(getattr(self, k) == 0 for k in COUNT_RULES) and all(
            getattr(self, k) is None for k in ("keep_within", *WITHIN_RULES)
        )

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key in KNOWN_KEYS:
            value = getattr(self, key)
            if isinstance(value, Within):
                out[key] = str(value)
            elif value:
                out[key] = value
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
    suspect: bool = False  # marked suspect by the backup run and not accepted


@dataclass
class Decision:
    backup: BackupInfo
    keep: bool
    reasons: list[str] = field(default_factory=list)
    removal: str | None = None  # why a removed backup goes (no rule keeps it / stale incomplete)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "backup_id": self.backup.backup_id,
            "time": self.backup.time.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "keep": self.keep,
            "reasons": list(self.reasons),
        }
        if not self.keep and self.removal:
            out["removal"] = self.removal
        return out


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


def apply_policy(
    times: Sequence[datetime], policy: RetentionPolicy, now: datetime | None = None
) -> list[list[str]]:
    """restic's ApplyPolicy over times (any order): per input index, the reasons it is kept
    ([] = removed). Ties in time keep their input order, like restic's stable sort. `now`
    (default: no limit) excludes future-dated times when finding the newest for `keep_within*`."""
    reasons: list[list[str]] = [[] for _ in times]
    if not times:
        return reasons
    utc = [t.astimezone(UTC) for t in times]
    # sorted() is stable, and reverse=True keeps equal elements in input order too
    order = sorted(range(len(utc)), key=utc.__getitem__, reverse=True)
    limit = now.astimezone(UTC) if now is not None else None
    latest = max((t for t in utc if limit is None or t <= limit), default=None)

    def cutoff(window: Within | None) -> datetime | None:
        # restic: latest.AddDate(-y, -m, -d).Add(-h); with no latest (all in the future) Go's
        # zero time minus the window, which every real time is after: no cut-off.
        if window is None or latest is None:
            return None
        return window.subtract_from(latest)

    within_all = policy.keep_within
    within_all_cut = cutoff(within_all)
    counted = [
        (rule, _BUCKERS[rule], getattr(policy, rule), _REASON[rule])
        for rule in COUNT_RULES
        if getattr(policy, rule) != 0
    ]
    counts = [c for _, _, c, _ in counted]
    last_count = [-1] * len(counted)
    windows = [
        (_BUCKERS[rule.replace("within_", "")], cutoff(getattr(policy, rule)), _WITHIN_REASON[rule], str(w))
        for rule in WITHIN_RULES
        if (w := getattr(policy, rule)) is not None
    ]
    last_window = [-1] * len(windows)
    final = len(order) - 1
    for nr, index in enumerate(order):
        cur = utc[index]
        mine: list[str] = []
        if within_all is not None and (within_all_cut is None or cur > within_all_cut):
            mine.append(f"within {within_all}")
        for i, (_rule, bucker, _count, reason) in enumerate(counted):
            if counts[i] > 0 or counts[i] == -1:
                val = bucker(cur, nr)
                # restic also keeps the oldest backup while the rule has counts left: it
                # maximises the history kept
                if val != last_count[i] or nr == final:
                    mine.append(f"oldest {reason}" if val == last_count[i] else reason)
                    last_count[i] = val
                    if counts[i] > 0:
                        counts[i] -= 1
        for i, (bucker, cut, reason, text) in enumerate(windows):
            if cut is None or cur > cut:
                val = bucker(cur, nr)
                if val != last_window[i] or nr == final:
                    prefix = "oldest " if val == last_window[i] else ""
                    mine.append(f"{prefix}{reason} {text}")
                    last_window[i] = val
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
    # newest first; equal times by backup id, so the plan does not depend on the listing order
    ordered = sorted(backups, key=lambda b: (b.time.astimezone(UTC), b.backup_id), reverse=True)
    complete = [b for b in ordered if b.complete]
    good = [b for b in complete if not b.suspect]  # only good backups satisfy rules
    policy_reasons = iter(apply_policy([b.time for b in good], policy, now))
    newest_verified = next((b for b in good if b.verified), None)
    guarding = _guarding_good_backups(complete)
    newest_suspect = complete[0] if complete and complete[0].suspect else None  # newer than every good one
    decisions: list[Decision] = []
    for backup in ordered:
        reasons: list[str] = []
        removal = None
        if backup.complete:
            if not backup.suspect:
                reasons.extend(next(policy_reasons))  # same order as `good`
            if backup.pinned:
                reasons.append(f"pinned ({backup.pin_reason})" if backup.pin_reason else "pinned")
            if newest_verified is not None and backup is newest_verified:
                reasons.append("newest verified backup")
            if backup.backup_id in guarding:
                reasons.append(f"newest good backup before suspect {guarding[backup.backup_id]}")
            if backup is newest_suspect:
                reasons.append("newest backup, suspect (awaiting `lastgood accept`)")
            removal = "suspect: satisfies no rule" if backup.suspect else "no rule keeps it"
        else:
            age = now - backup.time
            if backup.pinned:
                reasons.append(f"pinned ({backup.pin_reason})" if backup.pin_reason else "pinned")
            elif age <= grace:
                reasons.append(f"incomplete, within the {grace_text(grace)} grace period")
            removal = (
                f"incomplete (no manifest) for {grace_text(age)}, past the {grace_text(grace)} grace period"
            )
        decisions.append(Decision(backup, bool(reasons), reasons, None if reasons else removal))
    result = RetentionPlan(policy, decisions)
    _check_guards(result, len(complete), max_remove_share, force)
    return result


def _guarding_good_backups(complete: list[BackupInfo]) -> dict[str, str]:
    """{good backup id: the newest suspect backup after it} for the newest good backup before each
    suspect one (`complete` newest first)."""
    guarding: dict[str, str] = {}
    for index, backup in enumerate(complete):
        if not backup.suspect:
            continue
        older_good = next((b for b in complete[index + 1 :] if not b.suspect), None)
        if older_good is not None:
            guarding.setdefault(older_good.backup_id, backup.backup_id)
    return guarding


def _check_guards(result: RetentionPlan, complete: int, max_remove_share: float, force: bool) -> None:
    removed = sum(1 for d in result.remove if d.backup.complete)
    if complete and removed == complete:
        raise RetentionError("refusing a plan that removes every complete backup")
    share = removed / complete if complete else 0.0
    if not force and removed > SHARE_GUARD_EXEMPT_REMOVALS and share > max_remove_share:
        raise RetentionError(
            f"refusing to remove {removed} of {complete} complete backups at once ({share:.0%}, more "
            f"than the {max_remove_share:.0%} allowed by PRUNE_MAX_REMOVE_SHARE); check the policy "
            "with --dry-run, then run again with --force"
        )


def grace_text(span: timedelta) -> str:
    hours = span.total_seconds() / 3600
    return f"{hours:.0f}h" if hours >= 10 else f"{hours:.2g}h"
