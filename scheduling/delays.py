"""A relative delay (`"delay": "90s"`, `"1h30m"`, `"PT5M"`): parsed strictly, in linear time.

Two spellings of whole days, hours, minutes and seconds, largest unit first: the short one
(`2d`, `1h30m`, `90s`) and ISO 8601's (`P2D`, `PT1H30M`, `P1DT2H`). Years and months are
refused (their length depends on the calendar: "in one month" from 31 January is no date),
and so are weeks (a unit nobody needs next to days) and fractions (write `1h30m`, not
`1.5h`). The server resolves a delay against its own clock when it accepts the job and
stores only the instant (scheduling/when.py).
"""

import re
from datetime import timedelta
from typing import Annotated

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema

ACCEPTED_FORMS = "90s, 5m, 2h, 1d, 1h30m, or ISO 8601 PT5M, P1DT2H"
# Longer text is no delay anyone means, and is neither matched nor echoed back.
MAX_DELAY_LENGTH = 40
# Far past any MAX_HORIZON_DAYS a deployment sets, and far from timedelta's and datetime's
# limits: what is longer is refused here, and what is shorter by the horizon check.
MAX_DELAY = timedelta(days=100_000)

_NUMBER = "[0-9]{1,9}"
_SHORT = re.compile(
    f"(?:(?P<days>{_NUMBER})d)?(?:(?P<hours>{_NUMBER})h)?"
    f"(?:(?P<minutes>{_NUMBER})m)?(?:(?P<seconds>{_NUMBER})s)?"
)
# The `T` needs a time part after it: `P1DT` and `PT` are not durations.
_ISO = re.compile(
    f"P(?:(?P<days>{_NUMBER})D)?(?:T(?=[0-9])(?:(?P<hours>{_NUMBER})H)?"
    f"(?:(?P<minutes>{_NUMBER})M)?(?:(?P<seconds>{_NUMBER})S)?)?"
)
# What a caller may have meant, to say why it is refused: a calendar unit, a week, a fraction.
_CALENDAR_ISO = re.compile(r"P[0-9.,]*[YM]", re.IGNORECASE)
_CALENDAR_SHORT = re.compile(r"[0-9](?:y|mo)", re.IGNORECASE)
_WEEKS = re.compile(r"[0-9]w", re.IGNORECASE)
_FRACTION = re.compile(r"[0-9][.,][0-9]")
_UNITS = (("days", 86_400), ("hours", 3_600), ("minutes", 60), ("seconds", 1))


class DelayError(ValueError):
    """`delay` is not an accepted duration; the message says which forms are."""


def parse_delay(value: object) -> timedelta:
    """The duration `value` spells, in whole seconds; DelayError otherwise."""
    if isinstance(value, timedelta):  # built in code, not read from a request
        return value
    if not isinstance(value, str):
        raise DelayError(f"delay must be a string such as {ACCEPTED_FORMS}")
    if len(value) > MAX_DELAY_LENGTH:
        raise DelayError(
            f"delay is not a duration (at most {MAX_DELAY_LENGTH} characters): "
            f"give one such as {ACCEPTED_FORMS}"
        )
    match = _duration(_ISO if value.startswith("P") else _SHORT, value)
    if match is None:
        raise DelayError(_why_not(value))
    seconds = sum(int(match[name] or 0) * size for name, size in _UNITS)
    if seconds > MAX_DELAY.total_seconds():
        raise DelayError(f"delay {value!r} is longer than {MAX_DELAY.days} days")
    return timedelta(seconds=seconds)


def _duration(grammar: re.Pattern[str], text: str) -> re.Match[str] | None:
    """The match of a whole duration with at least one unit (every unit is optional)."""
    match = grammar.fullmatch(text)
    return match if match is not None and any(match.groupdict().values()) else None


def _why_not(value: str) -> str:
    if _CALENDAR_ISO.match(value) or _CALENDAR_SHORT.search(value):
        return (
            f"delay {value!r} counts years or months, which have no fixed length: give days "
            f"(30d, P30D) or an exec_at; accepted: {ACCEPTED_FORMS}"
        )
    if _WEEKS.search(value):
        return f"delay {value!r} counts weeks: give days (14d, P14D); accepted: {ACCEPTED_FORMS}"
    if _FRACTION.search(value):
        return f"delay {value!r} has a fraction: give whole units (1h30m, not 1.5h)"
    if _duration(_ISO, value.upper()) or _duration(_SHORT, value.lower()):
        return (
            f"delay {value!r}: write the units in the case shown (d h m s in the short form, "
            f"P D T H M S in ISO 8601), as {ACCEPTED_FORMS}"
        )
    return (
        f"delay {value!r} is not a duration: whole days, hours, minutes and seconds, "
        f"largest first, as {ACCEPTED_FORMS}"
    )


def format_delay(delay: timedelta) -> str:
    """The short form, largest unit first (`1h30m` for 90 minutes; `0s` for none): one
    duration written any way has one form, which is what a request's fingerprint holds."""
    remaining = int(delay.total_seconds())
    parts = []
    for name, size in _UNITS:
        count, remaining = divmod(remaining, size)
        if count:
            parts.append(f"{count}{name[0]}")
    return "".join(parts) or "0s"


# The grammar in ECMA-262 terms for the OpenAPI document (no named groups, no lookahead): it
# takes a little more (`PT`, an empty string), which the parser refuses.
_SCHEMA_PATTERN = re.sub(r"\?P<\w+>|\(\?=\[0-9\]\)", "", f"^(?:{_SHORT.pattern}|{_ISO.pattern})$")

Delay = Annotated[
    timedelta,
    BeforeValidator(parse_delay),
    PlainSerializer(format_delay, return_type=str),
    WithJsonSchema(
        {
            "type": "string",
            "maxLength": MAX_DELAY_LENGTH,
            "pattern": _SCHEMA_PATTERN,
            "description": "how long from when the server accepts the request: whole days, "
            "hours, minutes and seconds, largest first (90s, 5m, 1h30m, 2d), or an ISO 8601 "
            "duration without years, months, weeks or fractions (PT5M, P1DT2H); exclusive "
            "with exec_at, exec_local and cron",
            "examples": ["10s", "5m", "1h30m", "PT5M", "P1DT2H"],
        }
    ),
]
