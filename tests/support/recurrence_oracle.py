"""An oracle for recurring fire times that shares no code with scheduling/recurrence.py.

Brute force: every UTC minute of a window is turned into the zone's wall clock (zoneinfo's
UTC-to-local reading, which is never ambiguous). A wall minute that no UTC minute shows is in a
gap, and the instant the clocks jumped over it is the first UTC minute after the gap; one that
two UTC minutes show is in a fold, the earlier its first pass. Cron is matched by its own
five-field reader, the rules of docs/recurring.md restated here:

- fields minute 0-59, hour 0-23, day of month 1-31, month 1-12 or JAN-DEC, day of week 0-7 or
  SUN-SAT (0 and 7 are Sunday), upper or lower case; aliases @yearly, @annually, @monthly,
  @weekly, @daily, @midnight, @hourly;
- items `*`, `v`, `a-b` (a <= b), steps `*/n`, `a-b/n` (a < b), `a/n` (a to the field's
  highest value), lists of items; day of month also `L` (last day) and `LW` (last Monday to
  Friday); day of week also `nL` (the month's last n-day) and `n#k` (its k-th n-day, k 1-5);
- day of month and day of week: when either field starts with `*` a day must match both,
  otherwise either;
- `dst_gap=shift`: every wall time in a gap fires at the instant the clocks jumped, once;
  `skip`: none. `dst_fold`: `first`, `last` or `both` passes of a repeated wall time.
"""

import calendar
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

MINUTE = timedelta(minutes=1)
_ALIASES = {
    "@YEARLY": "0 0 1 1 *",
    "@ANNUALLY": "0 0 1 1 *",
    "@MONTHLY": "0 0 1 * *",
    "@WEEKLY": "0 0 * * 0",
    "@DAILY": "0 0 * * *",
    "@MIDNIGHT": "0 0 * * *",
    "@HOURLY": "0 * * * *",
}
_MONTH_NAMES = {
    name: number
    for number, name in enumerate(
        ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"], 1
    )
}
_DAY_NAMES = {
    name: number for number, name in enumerate(["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"])
}


class NotCron(ValueError):
    """The oracle's reader does not take this text."""


@dataclass
class OracleCron:
    minutes: set[int] = field(default_factory=set)
    hours: set[int] = field(default_factory=set)
    months: set[int] = field(default_factory=set)
    days: set[int] = field(default_factory=set)
    last_day: bool = False
    last_weekday_of_month: bool = False
    weekdays: set[int] = field(default_factory=set)  # 0 = Sunday
    last_weekdays: set[int] = field(default_factory=set)
    nth_weekdays: set[tuple[int, int]] = field(default_factory=set)
    both_days: bool = False

    def matches(self, wall: datetime) -> bool:
        return (
            wall.second == 0
            and wall.minute in self.minutes
            and wall.hour in self.hours
            and wall.month in self.months
            and self.day_matches(wall.date())
        )

    def day_matches(self, day: date) -> bool:
        length = calendar.monthrange(day.year, day.month)[1]
        by_month = (
            day.day in self.days
            or (self.last_day and day.day == length)
            or (self.last_weekday_of_month and day.day == _last_monday_to_friday(day, length))
        )
        weekday = (day.weekday() + 1) % 7
        by_week = (
            weekday in self.weekdays
            or (weekday in self.last_weekdays and day.day + 7 > length)
            or (weekday, (day.day - 1) // 7 + 1) in self.nth_weekdays
        )
        return (by_month and by_week) if self.both_days else (by_month or by_week)


def _last_monday_to_friday(day: date, length: int) -> int:
    last = day.replace(day=length)
    while last.weekday() >= 5:
        last -= timedelta(days=1)
    return last.day


def read_cron(text: str) -> OracleCron:
    """The oracle's reading of a cron expression; NotCron if it is not one."""
    words = text.upper().split()
    if len(words) == 1 and words[0] in _ALIASES:
        words = _ALIASES[words[0]].split()
    if len(words) != 5:
        raise NotCron(f"{len(words)} fields")
    minute, hour, day, month, weekday = words
    cron = OracleCron(both_days=day.startswith("*") or weekday.startswith("*"))
    for item in minute.split(","):
        cron.minutes |= _plain(item, 0, 59, {})
    for item in hour.split(","):
        cron.hours |= _plain(item, 0, 23, {})
    for item in month.split(","):
        cron.months |= _plain(item, 1, 12, _MONTH_NAMES)
    for item in day.split(","):
        if item == "L":
            cron.last_day = True
        elif item == "LW":
            cron.last_weekday_of_month = True
        else:
            cron.days |= _plain(item, 1, 31, {})
    for item in weekday.split(","):
        if len(item) == 2 and item[1] == "L" and item[0] in "01234567":
            cron.last_weekdays.add(int(item[0]) % 7)
        elif "#" in item:
            value, _, nth = item.partition("#")
            if not (nth.isascii() and nth.isdigit() and 1 <= int(nth) <= 5):
                raise NotCron(item)
            cron.nth_weekdays.add((_number(value, 0, 7, _DAY_NAMES) % 7, int(nth)))
        else:
            cron.weekdays |= {value % 7 for value in _plain(item, 0, 7, _DAY_NAMES)}
    return cron


def _plain(item: str, low: int, high: int, names: dict[str, int]) -> set[int]:
    body, slash, step_text = item.partition("/")
    step = 1
    if slash:
        if not (step_text.isascii() and step_text.isdigit()) or int(step_text) == 0:
            raise NotCron(item)
        step = int(step_text)
    if body == "*":
        return set(range(low, high + 1, step))
    first_text, dash, last_text = body.partition("-")
    first = _number(first_text, low, high, names)
    if not dash:
        return set(range(first, high + 1, step)) if slash else {first}
    last = _number(last_text, low, high, names)
    if last < first or (slash and last == first):
        raise NotCron(item)
    return set(range(first, last + 1, step))


def _number(text: str, low: int, high: int, names: dict[str, int]) -> int:
    if text in names:
        return names[text]
    if not (text.isascii() and text.isdigit()) or not low <= int(text) <= high:
        raise NotCron(text)
    return int(text)


def never_matches(cron: OracleCron, first_year: int = 2026) -> bool:
    """True if no day of 28 years (the calendar's whole cycle, leap days included) matches."""
    day = date(first_year, 1, 1)
    end = date(first_year + 28, 1, 1)
    while day < end:
        if day.month in cron.months and cron.day_matches(day):
            return False
        day += timedelta(days=1)
    return True


# -- the zone's clock, minute by minute --------------------------------------------------------


@dataclass
class ZoneWindow:
    """Every UTC minute of [start, end) read on the zone's wall clock."""

    zone: ZoneInfo
    start: datetime
    end: datetime
    # wall minute -> the UTC minutes that show it, in order (two in a fold)
    shown: dict[datetime, list[datetime]]
    # wall minute in a gap -> the instant the clocks jumped over it
    jumped: dict[datetime, datetime]
    first_wall: datetime
    last_wall: datetime

    def walls(self) -> Iterator[datetime]:
        wall = self.first_wall
        while wall <= self.last_wall:
            yield wall
            wall += MINUTE

    def gaps(self) -> list[list[datetime]]:
        return _runs(sorted(self.jumped))

    def folds(self) -> list[list[datetime]]:
        return _runs(sorted(wall for wall, shown in self.shown.items() if len(shown) > 1))


def _runs(walls: list[datetime]) -> list[list[datetime]]:
    runs: list[list[datetime]] = []
    for wall in walls:
        if runs and wall - runs[-1][-1] == MINUTE:
            runs[-1].append(wall)
        else:
            runs.append([wall])
    return runs


def scan_zone(zone: ZoneInfo, start: datetime, end: datetime) -> ZoneWindow:
    shown: dict[datetime, list[datetime]] = {}
    jumped: dict[datetime, datetime] = {}
    previous: datetime | None = None
    moment = start
    while moment < end:
        wall = moment.astimezone(zone).replace(tzinfo=None)
        if wall.second or wall.microsecond:
            raise AssertionError(f"{zone} is not on a whole-minute offset at {moment}")
        shown.setdefault(wall, []).append(moment)
        if previous is not None:
            skipped = previous + MINUTE
            while skipped < wall:
                jumped[skipped] = moment
                skipped += MINUTE
        previous = wall
        moment += MINUTE
    walls = sorted(shown)
    return ZoneWindow(zone, start, end, shown, jumped, walls[0], walls[-1])


# -- what fires ----------------------------------------------------------------------------------


def instants_of(window: ZoneWindow, wall: datetime, gap: str, fold: str) -> list[datetime]:
    """The instants a wall time (seconds allowed) fires at under the rules."""
    minute = wall.replace(second=0, microsecond=0)
    into = wall - minute
    if minute in window.jumped:
        return [window.jumped[minute]] if gap == "shift" else []
    shown = window.shown[minute]
    if len(shown) == 1 or fold == "both":
        return [moment + into for moment in shown]
    return [shown[0] + into] if fold == "first" else [shown[-1] + into]


def fire_times(
    window: ZoneWindow,
    matched: list[datetime],
    gap: str,
    fold: str,
    after: datetime,
    start_at: datetime | None,
    end_at: datetime | None,
) -> list[datetime]:
    """The fire instants of the matched wall times in (after, window end - margin]."""
    instants = {moment for wall in matched for moment in instants_of(window, wall, gap, fold)}
    return sorted(
        moment
        for moment in instants
        if moment > after
        and (start_at is None or moment >= start_at)
        and (end_at is None or moment <= end_at)
    )


def matched_walls(window: ZoneWindow, cron: OracleCron) -> list[datetime]:
    return [wall for wall in window.walls() if cron.matches(wall)]


# -- which zones change ----------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    at: datetime
    before: timedelta
    after: timedelta


def offset_changes(zone: ZoneInfo, start: datetime, end: datetime) -> tuple[Change, ...]:
    """Every change of the zone's UTC offset in [start, end), to the minute (probed daily:
    no zone changes twice within a day)."""
    changes = []
    day = timedelta(days=1)
    moment = start
    offset = start.astimezone(zone).utcoffset()
    while moment < end:
        following = moment + day
        new_offset = following.astimezone(zone).utcoffset()
        if new_offset != offset:
            low, high = moment, following
            while high - low > MINUTE:
                middle = low + (high - low) // 2
                middle = middle.replace(second=0, microsecond=0)
                if middle.astimezone(zone).utcoffset() == new_offset:
                    high = middle
                else:
                    low = middle
            assert offset is not None
            assert new_offset is not None
            changes.append(Change(high, offset, new_offset))
            offset = new_offset
        moment = following
    return tuple(changes)
