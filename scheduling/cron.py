"""Cron expressions: the five-field grammar the API takes, its normal form, and its wall times.

cronsim reads an expression the way Vixie cron does (day of month and day of week: both must
match when either field starts with `*`, either may match otherwise) and iterates naive wall
times, leaving the DST rules to scheduling/recurrence.py. This module decides what is accepted:
cronsim also takes forms whose meaning is not what they say (a step after `L`, a step over a
one-value range), a seconds field and no aliases; those are refused or expanded here, so that
everything accepted means what docs/recurring.md says.
"""

import re
from collections.abc import Iterator
from datetime import datetime

from cronsim import CronSim, CronSimError

MAX_CRON_LENGTH = 256
# The aliases, and the five fields each stands for.
ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
FIELDS = ("minute", "hour", "day-of-month", "month", "day-of-week")
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_DAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")

# One item of a field's comma-separated list: `*`, a value or a range, with an optional step;
# day of month also `L` (its last day) and `LW` (its last weekday), day of week also `5L` (the
# month's last Friday) and `MON#2` (its second Monday). Values are checked by cronsim.
_NUMBER = "[0-9]+"
_MONTH = f"{_NUMBER}|{'|'.join(_MONTHS)}"
_DAY = f"{_NUMBER}|{'|'.join(_DAYS)}"


def _stepped(value: str) -> str:
    return rf"(?:\*|(?P<start>{value})(?:-(?P<end>{value}))?)(?:/(?P<step>{_NUMBER}))?"


_ITEMS = (
    re.compile(_stepped(_NUMBER)),
    re.compile(_stepped(_NUMBER)),
    re.compile(f"{_stepped(_NUMBER)}|LW?"),
    re.compile(_stepped(_MONTH)),
    re.compile(f"{_stepped(_DAY)}|[0-7]L|(?:{_DAY})#{_NUMBER}"),
)


class CronError(ValueError):
    """The expression is not one the API takes; the message says what is wrong with it."""


def normalised_cron(text: str) -> str:
    """`text` as it is stored and fingerprinted: fields one space apart, an alias in lower
    case, names (`MON`, `JAN`) and `L` in upper case. Cron reads the variants the same way."""
    fields = text.split()
    joined = " ".join(fields)
    if len(fields) == 1 and joined.startswith("@"):
        return joined.lower()
    # Only ASCII is upper-cased: other letters are refused later, and some change length.
    return joined.upper() if joined.isascii() else joined


def check_cron(text: str) -> str:
    """The normalised expression, if the API takes it; CronError saying why not otherwise."""
    expression = normalised_cron(text)
    if len(expression) > MAX_CRON_LENGTH:
        raise CronError(f"cron must be at most {MAX_CRON_LENGTH} characters")
    fields = _five_fields(expression)
    for name, pattern, field in zip(FIELDS, _ITEMS, fields, strict=True):
        for item in field.split(","):
            _check_item(name, pattern, item)
    try:
        CronSim(" ".join(fields), datetime(2000, 1, 1))
    except CronSimError as error:
        # Its messages name the field ("Bad day-of-month"): a value out of range, a range that
        # runs backwards, a `#` past 5, or a day that no month of the schedule has.
        raise CronError(
            f"cron: {str(error).lower()} (a value out of range, a range from high to low, "
            "a #n past 5, or a day that none of the months has)"
        ) from None
    return expression


def wall_times(expression: str, after: datetime) -> Iterator[datetime]:
    """The naive wall times the expression matches, strictly after the naive `after`, in
    order; CronError if the API does not take it. Ends when none comes within 50 years
    (cronsim's own bound)."""
    return CronSim(" ".join(_five_fields(check_cron(expression))), after)


def _five_fields(expression: str) -> list[str]:
    fields = ALIASES.get(expression, expression).split()
    if len(fields) != len(FIELDS):
        raise CronError(
            "cron must be five fields (minute hour day-of-month month day-of-week) or one of "
            + ", ".join(ALIASES)
            + ("; a seconds field is not supported" if len(fields) == len(FIELDS) + 1 else "")
        )
    return fields


def _check_item(name: str, pattern: re.Pattern[str], item: str) -> None:
    match = pattern.fullmatch(item)
    if match is None:
        raise CronError(
            f"cron: the {name} field's {item!r} is not supported: use *, a value, a range "
            "a-b, a list a,b, a step */n, a-b/n or a/n"
            + {
                "day-of-month": ", L or LW",
                "day-of-week": ", nL (last n-day of the month) or n#k (k-th n-day)",
            }.get(name, "")
            + " (no H, ?, W or seconds)"
        )
    start, end = match.group("start"), match.group("end")
    if match.group("step") is not None and end is not None and _value(start) == _value(end):
        # cronsim would step from the value to the field's end, as if there were no `-v`.
        raise CronError(f"cron: the {name} field's {item!r} steps over a single value")


def _value(text: str) -> int:
    if text in _MONTHS:
        return _MONTHS.index(text) + 1
    if text in _DAYS:
        return _DAYS.index(text)
    return int(text)
