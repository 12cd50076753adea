"""restic's retention durations (`keep_within*`): `2d`, `36h`, `1y6m` — calendar years, months,
days plus hours, parsed and subtracted exactly as restic's `ParseDuration` / Go's `AddDate` do.
Pure; `lastgood.backups.retention` uses it, and the config file checks `keep_within*` with it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from lastgood.core.errors import RetentionError

_DURATION_PART = re.compile(r"(-?\d+)([ymdh])")


@dataclass(frozen=True)
class Within:
    """restic's Duration: calendar years/months/days plus hours."""

    years: int = 0
    months: int = 0
    days: int = 0
    hours: int = 0

    @classmethod
    def parse(cls, text: str, key: str = "keep_within") -> Within:
        """restic's ParseDuration (`6y5m234d37h`; a repeated unit overrides), refusing negative and
        all-zero windows, which restic would treat as "rule not set"."""
        s = text.strip()
        if not s:
            raise RetentionError(f"{key}: empty duration (expected e.g. 2d, 36h, 1y6m)")
        parts: dict[str, int] = {}
        pos = 0
        for match in _DURATION_PART.finditer(s):
            if match.start() != pos:
                break
            parts[match.group(2)] = int(match.group(1))
            pos = match.end()
        if pos != len(s):
            raise RetentionError(f"{key}: invalid duration {text!r} (units y, m, d, h; e.g. 2d, 36h, 1y6m)")
        within = cls(parts.get("y", 0), parts.get("m", 0), parts.get("d", 0), parts.get("h", 0))
        if min(within.years, within.months, within.days, within.hours) < 0 or within.is_zero():
            raise RetentionError(f"{key}: duration must be positive, got {text!r}")
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
        try:
            base = datetime(
                year, month, 1, moment.hour, moment.minute, moment.second, moment.microsecond, moment.tzinfo
            )
            shifted = base + timedelta(days=moment.day - 1 - self.days)
            return shifted - timedelta(hours=self.hours)
        except (ValueError, OverflowError):
            # before year 1 (e.g. restic's own `9999y` test): every backup is within the window
            return datetime.min.replace(tzinfo=moment.tzinfo)
