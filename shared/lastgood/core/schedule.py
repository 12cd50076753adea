"""EventBridge Scheduler expressions, checked the way Scheduler reads them (pure, no I/O).

- `rate(value unit)`: a positive integer and `minute(s)`, `hour(s)` or `day(s)`;
- `cron(minutes hours day-of-month month day-of-week year)`: six fields, `?` in exactly one
  of day-of-month / day-of-week, each field within its range (`JAN`-`DEC`, `SUN`-`SAT`,
  `L`, `W`, `#` where Scheduler allows them);
- `at(yyyy-mm-ddThh:mm:ss)`: a one-time schedule.

`check_schedule` returns None or raises ValueError with what is wrong and what is expected;
the config model runs it on every source's `schedule`, so `lastgood config check` and every
function start refuse the same expressions.
"""

from __future__ import annotations

import re
from datetime import datetime

_RATE = re.compile(r"^rate\((?P<value>[^ )]*)\s+(?P<unit>[a-z]+)\)$")
_RATE_UNITS = {"minute", "minutes", "hour", "hours", "day", "days"}
_AT = re.compile(r"^at\((?P<when>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)$")
_MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
_DAYS = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]
_EXPECTED = "rate(5 minutes), cron(0 7 * * ? *) (six fields) or at(2030-01-01T00:00:00)"

# field name, low, high, names (value = index + low), extra tokens allowed
_CRON_FIELDS: tuple[tuple[str, int, int, list[str]], ...] = (
    ("minutes", 0, 59, []),
    ("hours", 0, 23, []),
    ("day-of-month", 1, 31, []),
    ("month", 1, 12, _MONTHS),
    ("day-of-week", 1, 7, _DAYS),
    ("year", 1970, 2199, []),
)


def check_schedule(expression: str) -> None:
    """Refuse anything EventBridge Scheduler would not accept as a schedule expression."""
    text = expression.strip()
    if text != expression or not text:
        raise ValueError(f"{expression!r} is not a Scheduler expression; expected {_EXPECTED}")
    if text.startswith("rate("):
        _check_rate(text)
    elif text.startswith("cron("):
        _check_cron(text)
    elif text.startswith("at("):
        _check_at(text)
    else:
        raise ValueError(f"{expression!r} is not a Scheduler expression; expected {_EXPECTED}")


def _check_rate(text: str) -> None:
    match = _RATE.match(text)
    if not match:
        raise ValueError(f"{text!r}: expected rate(value unit), e.g. rate(1 hour), rate(15 minutes)")
    value, unit = match["value"], match["unit"]
    if not value.isdigit() or int(value) <= 0:
        raise ValueError(f"{text!r}: the rate value must be a positive whole number, got {value!r}")
    if unit not in _RATE_UNITS:
        raise ValueError(f"{text!r}: the unit must be minute(s), hour(s) or day(s), got {unit!r}")


def _check_at(text: str) -> None:
    match = _AT.match(text)
    if not match:
        raise ValueError(f"{text!r}: expected at(yyyy-mm-ddThh:mm:ss), e.g. at(2030-01-01T00:00:00)")
    try:
        datetime.fromisoformat(match["when"])
    except ValueError:
        raise ValueError(f"{text!r}: {match['when']} is not a valid date and time") from None


def _check_cron(text: str) -> None:
    if not text.endswith(")"):
        raise ValueError(f"{text!r}: expected cron(minutes hours day-of-month month day-of-week year)")
    fields = text[len("cron(") : -1].split()
    if len(fields) != 6:
        raise ValueError(
            f"{text!r}: a Scheduler cron() has 6 fields (minutes hours day-of-month month day-of-week "
            f"year), got {len(fields)}"
        )
    dom, dow = fields[2], fields[4]
    if (dom == "?") == (dow == "?"):
        raise ValueError(f"{text!r}: exactly one of day-of-month and day-of-week must be '?'")
    for spec, (name, low, high, names) in zip(fields, _CRON_FIELDS, strict=True):
        problem = _cron_field_problem(spec, name, low, high, names)
        if problem:
            raise ValueError(f"{text!r}: {name} field {spec!r}: {problem}")


def _cron_value(text: str, low: int, high: int, names: list[str]) -> int | None:
    upper = text.upper()
    if upper in names:
        return names.index(upper) + low
    if text.isdigit() and low <= int(text) <= high:
        return int(text)
    return None


def _cron_field_problem(spec: str, name: str, low: int, high: int, names: list[str]) -> str | None:
    if spec == "?":
        return None if name in ("day-of-month", "day-of-week") else "'?' is only for day-of-month/day-of-week"
    if name == "day-of-month" and re.fullmatch(r"L|LW|([1-9]|[12]\d|3[01])W", spec):
        return None
    if name == "day-of-week" and re.fullmatch(
        r"[1-7]#[1-5]|([1-7]|SUN|MON|TUE|WED|THU|FRI|SAT)L|L", spec, re.I
    ):
        return None
    for part in spec.split(","):
        base, _, step = part.partition("/")
        if step and (not step.isdigit() or int(step) <= 0):
            return f"step {step!r} must be a positive number"
        if base == "*":
            continue
        bounds = base.split("-")
        if len(bounds) > 2 or any(_cron_value(b, low, high, names) is None for b in bounds):
            extra = f" or {names[0]}-{names[-1]}" if names else ""
            return f"expected values {low}-{high}{extra}, ranges (a-b), lists (a,b), steps (*/n) or '*'"
    return None
