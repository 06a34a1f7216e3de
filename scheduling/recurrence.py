"""When a recurring job fires: cron on a local wall clock, with the DST rules the user chose.

Cron fields match wall-clock times in the job's IANA zone (scheduling/cron.py iterates naive
wall times; zoneinfo, with zone data from the pinned tzdata package only, scheduling/zone_data.py,
turns each into UTC). Where a wall time does not exist (clocks jump forward) `dst_gap` decides:
`shift` fires at the instant the clocks jumped to (once, however many wall times of the cron
fall in the gap), `skip` leaves it out. Where it happens twice (clocks fall back) `dst_fold`
decides: `first`, `last` or `both` occurrences. Everything here is pure: an orchestrator never
calls it (zone data may change between deployments), the activity and the routes do, and carry
each fire time on as a UTC instant.
"""

import heapq
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field

import scheduling.zone_data  # noqa: F401  (zone data from tzdata before any zone is loaded)
from scheduling.cron import CronError, check_cron, wall_times
from scheduling.models import CronExpression, DstFold, DstGap, UtcDatetime

MAX_ZONE_LENGTH = 64
MIN_INTERVAL = timedelta(minutes=1)
# No run is looked for this late: cron's search and the zone arithmetic run out of years.
_LAST_SEARCHED = datetime(9000, 1, 1, tzinfo=UTC)
_SECOND = timedelta(seconds=1)


class RecurrenceError(ValueError):
    """The schedule cannot work; `field` names the request field at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class Recurrence(BaseModel):
    """A recurring job's schedule, as the caller gave it (checked by `check_recurrence`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # Forms and lengths are checked by check_recurrence, whose errors name the field.
    cron: CronExpression
    timezone: str = "UTC"
    dst_gap: DstGap = "shift"
    dst_fold: DstFold = "first"
    start_at: UtcDatetime | None = None
    end_at: UtcDatetime | None = None
    max_runs: int | None = Field(default=None, ge=1)


def zone_of(name: str, field: str = "timezone") -> ZoneInfo:
    """The IANA zone `name`; a RecurrenceError naming `field` if there is none by that name."""
    if not name or len(name) > MAX_ZONE_LENGTH:
        raise RecurrenceError(field, f"{field} must be an IANA time zone name, e.g. Europe/Paris")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise RecurrenceError(field, f"{field} {name!r} is not a known IANA time zone") from None


def checked_cron(expression: str) -> str:
    """The expression, normalised, if the API takes it; RecurrenceError naming `cron`."""
    try:
        return check_cron(expression)
    except CronError as error:
        raise RecurrenceError("cron", str(error)) from None


def wall_to_utc(wall: datetime, zone: ZoneInfo, gap: DstGap, fold: DstFold) -> list[datetime]:
    """The UTC instants a naive wall time in `zone` stands for, under the DST rules."""
    first = wall.replace(tzinfo=zone, fold=0)
    second = wall.replace(tzinfo=zone, fold=1)
    early = first.astimezone(UTC)
    if early.astimezone(zone).replace(tzinfo=None) != wall:
        # A wall time in a gap does not survive the round trip through UTC.
        return [] if gap == "skip" else [_jump_instant(first, second, zone)]
    late = second.astimezone(UTC)
    if early == late:
        return [early]
    return {"first": [early], "last": [late], "both": [early, late]}[fold]


def _jump_instant(first: datetime, second: datetime, zone: ZoneInfo) -> datetime:
    """The instant the clocks jumped over a wall time in a gap (read with fold 0 and 1).

    Read with the offset before the change (fold 0) the wall time lands after the change, read
    with the offset after it (fold 1) before it; the change is between, at a whole second.
    """
    before = second.astimezone(UTC).replace(microsecond=0)
    after = first.astimezone(UTC)
    if after.microsecond:
        after = after.replace(microsecond=0) + _SECOND
    later_offset = after.astimezone(zone).utcoffset()
    while after - before > _SECOND:
        middle = before + (after - before) // _SECOND // 2 * _SECOND
        if middle.astimezone(zone).utcoffset() == later_offset:
            after = middle
        else:
            before = middle
    return after


def _earliest_instant(wall: datetime, zone: ZoneInfo) -> datetime:
    """No instant of `wall` or of a later wall time comes before this one."""
    return min(wall.replace(tzinfo=zone, fold=fold).astimezone(UTC) for fold in (0, 1))


def _earliest_wall(floor: datetime, zone: ZoneInfo) -> datetime:
    """A wall time before every wall time that has an instant at or after `floor`.

    After `floor` the zone's clock can read earlier than at `floor`: it may be turned back (by up
    to a few hours) within the next day. Its lowest reading from an hour before `floor` to 26
    hours after it, less an hour, is below all of them: clocks are within -12 and +14 hours
    of UTC, and change at most once an hour.
    """
    readings = (
        (floor + timedelta(hours=hours)).astimezone(zone).replace(tzinfo=None)
        for hours in range(-1, 27)
    )
    return min(readings) - timedelta(hours=1)


def _in_order(
    walls: Iterable[datetime], zone: ZoneInfo, gap: DstGap, fold: DstFold
) -> Iterator[datetime]:
    """The instants of the wall times (given in wall-clock order), in time order, each once.

    Wall-clock order is not time order: with `both`, a fold's second pass of earlier wall times
    comes after the first pass of later ones; wall times shifted out of a gap share an instant.
    An instant is given once no later wall time can have one before it.
    """
    pending: list[datetime] = []
    last: datetime | None = None
    for wall in walls:
        horizon = _earliest_instant(wall, zone)
        while pending and pending[0] < horizon:
            moment = heapq.heappop(pending)
            if last is None or moment > last:
                last = moment
                yield moment
        for moment in wall_to_utc(wall, zone, gap, fold):
            heapq.heappush(pending, moment)
    for moment in sorted(pending):
        if last is None or moment > last:
            last = moment
            yield moment


def fire_times(schedule: Recurrence, after: datetime) -> Iterator[datetime]:
    """Every fire instant (UTC) strictly after `after`, in order, within start_at/end_at.

    `max_runs` is the caller's to count. Ends when end_at is passed, or when cron finds no
    wall time within 50 years (cronsim's bound: a schedule that never fires costs that search).
    """
    zone = zone_of(schedule.timezone)
    floor = max(after, schedule.start_at) if schedule.start_at else after
    if floor >= _LAST_SEARCHED:
        return
    try:
        walls = wall_times(schedule.cron, _earliest_wall(floor, zone))
    except CronError as error:
        raise RecurrenceError("cron", str(error)) from None
    for moment in _in_order(walls, zone, schedule.dst_gap, schedule.dst_fold):
        if schedule.end_at is not None and moment > schedule.end_at:
            return
        if moment >= floor and moment > after:
            yield moment


def next_fire_at(schedule: Recurrence, after: datetime, runs_done: int = 0) -> datetime | None:
    """The first fire instant after `after`, or None when the schedule has no run left."""
    if schedule.max_runs is not None and runs_done >= schedule.max_runs:
        return None
    return next(fire_times(schedule, after), None)


def preview(schedule: Recurrence, after: datetime, count: int) -> list[datetime]:
    """The next `count` fire instants after `after` (fewer when the schedule ends)."""
    times: list[datetime] = []
    for moment in fire_times(schedule, after):
        if len(times) == count or (
            schedule.max_runs is not None and len(times) == schedule.max_runs
        ):
            break
        times.append(moment)
    return times


def check_recurrence(schedule: Recurrence, now: datetime) -> datetime:
    """The first fire instant of a new schedule; RecurrenceError naming the field at fault."""
    zone_of(schedule.timezone)
    checked_cron(schedule.cron)
    start, end = schedule.start_at, schedule.end_at
    if start is not None and end is not None and end <= start:
        raise RecurrenceError("end_at", "end_at must be after start_at")
    upcoming = preview(schedule, now, 50)
    if not upcoming:
        raise RecurrenceError("cron", "the schedule has no run in the future")
    for earlier, later in pairwise(upcoming):
        if later - earlier < MIN_INTERVAL:
            raise RecurrenceError("cron", "runs must be at least one minute apart")
    return upcoming[0]


def local_exec_at(
    wall: datetime, zone_name: str, gap: DstGap, fold: Literal["first", "last"]
) -> datetime:
    """The UTC instant of a one-time job given as a local wall time (`exec_local`)."""
    zone = zone_of(zone_name)
    try:
        instants = wall_to_utc(wall, zone, gap, fold)
    except OverflowError:
        raise RecurrenceError(
            "exec_local", "exec_local is out of range: in UTC it falls outside years 1 to 9999"
        ) from None
    if not instants:
        raise RecurrenceError(
            "exec_local", "exec_local does not exist in that time zone (clocks jump over it)"
        )
    return instants[0]


# Past this many, skipped runs are counted no further (a long outage of a minutely job).
MAX_SKIPPED_COUNTED = 10_000


@dataclass(frozen=True)
class UpcomingRun:
    """The next run after one ended: when (None: the schedule is over), and how many fire
    times went by meanwhile without a run (the run overlapped them, or the app was down)."""

    at: datetime | None
    skipped: int


def upcoming_run(schedule: Recurrence, due: datetime, now: datetime, runs_done: int) -> UpcomingRun:
    """The run after the one due at `due`, which ended at `now`: never one in the past.

    Runs never overlap and missed ones are not made up: every fire time after `due` up to
    `now` is skipped, and the next run is the first after `now`.
    """
    skipped = 0
    for moment in fire_times(schedule, due):
        if moment > now or skipped >= MAX_SKIPPED_COUNTED:
            break
        skipped += 1
    return UpcomingRun(at=next_fire_at(schedule, now, runs_done), skipped=skipped)
