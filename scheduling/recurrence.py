"""When a recurring job fires: cron on a local wall clock, with the DST rules the user chose.

Cron fields match wall-clock times in the job's IANA zone (croniter iterates naive wall
times; zoneinfo with the pinned tzdata package turns each into UTC). Where a wall time
does not exist (clocks jump forward) `dst_gap` decides: `shift` fires once at the first
valid instant after it, `skip` leaves it out. Where it happens twice (clocks fall back)
`dst_fold` decides: `first`, `last` or `both` occurrences. Everything here is pure: an
orchestrator never calls it (zone data may change between deployments), the activity and
the routes do, and carry each fire time on as a UTC instant.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadCronError, CroniterBadDateError, CroniterError, croniter
from pydantic import BaseModel, ConfigDict, Field

from scheduling.models import DstFold, DstGap, UtcDatetime

MAX_CRON_LENGTH = 256
MAX_ZONE_LENGTH = 64
MIN_INTERVAL = timedelta(minutes=1)
# The aliases croniter knows, which stand for five fields.
ALIASES = frozenset(
    {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
)
# Wall times looked at before giving up on finding a run (about 4 years of a daily job).
_MAX_WALL_TIMES = 1500
# A gap (clocks jumping forward) is at most a few hours long anywhere.
_MAX_GAP = timedelta(hours=3)


class RecurrenceError(ValueError):
    """The schedule cannot work; `field` names the request field at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class Recurrence(BaseModel):
    """A recurring job's schedule, as the caller gave it (checked by `check_recurrence`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # Lengths and forms are checked by check_recurrence, whose errors name the field.
    cron: str
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


def check_cron(expression: str) -> str:
    """The expression, if it is five cron fields or an alias; RecurrenceError otherwise."""
    text = expression.strip()
    fields = text.split()
    if (
        len(text) > MAX_CRON_LENGTH
        or not (len(fields) == 5 or (len(fields) == 1 and text.lower() in ALIASES))
        or not croniter.is_valid(text)
    ):
        raise RecurrenceError(
            "cron",
            "cron must be five fields (minute hour day-of-month month day-of-week) or one of "
            + ", ".join(sorted(ALIASES)),
        )
    return text


def wall_to_utc(wall: datetime, zone: ZoneInfo, gap: DstGap, fold: DstFold) -> list[datetime]:
    """The UTC instants a naive wall time in `zone` stands for, under the DST rules."""
    first = wall.replace(tzinfo=zone, fold=0)
    second = wall.replace(tzinfo=zone, fold=1)
    if not _exists(first, wall):
        if gap == "skip":
            return []
        return [_first_valid_after(wall, zone)]
    early, late = first.astimezone(UTC), second.astimezone(UTC)
    if early == late:
        return [early]
    return {"first": [early], "last": [late], "both": [early, late]}[fold]


def _exists(moment: datetime, wall: datetime) -> bool:
    # A wall time in a gap does not survive the round trip through UTC.
    return moment.astimezone(UTC).astimezone(moment.tzinfo).replace(tzinfo=None) == wall


def _first_valid_after(wall: datetime, zone: ZoneInfo) -> datetime:
    """The instant the clocks jumped to: the first wall time after `wall` that exists."""
    probe = wall
    while probe - wall <= _MAX_GAP:
        probe += timedelta(minutes=1)
        candidate = probe.replace(tzinfo=zone, fold=0)
        if _exists(candidate, probe):
            return candidate.astimezone(UTC)
    raise RecurrenceError("timezone", "the time zone has a gap longer than any known")


def fire_times(schedule: Recurrence, after: datetime) -> Iterator[datetime]:
    """Every fire instant (UTC) strictly after `after`, in order, within start_at/end_at.

    `max_runs` is the caller's to count. Ends when end_at is passed or no run can be found.
    """
    zone = zone_of(schedule.timezone)
    floor = max(after, schedule.start_at) if schedule.start_at else after
    try:
        # From a little before, in wall time: a repeated hour's second pass comes after its
        # wall time has already gone by once.
        start_wall = (floor.astimezone(zone) - timedelta(hours=3)).replace(tzinfo=None)
    except OverflowError:
        return  # past the calendar's end (year 9999) in this zone: no run
    walls = croniter(check_cron(schedule.cron), start_wall)
    last: datetime | None = None
    for _ in range(_MAX_WALL_TIMES):
        try:
            wall = walls.get_next(datetime)
            instants = wall_to_utc(wall, zone, schedule.dst_gap, schedule.dst_fold)
        except (CroniterBadDateError, CroniterBadCronError, CroniterError, OverflowError):
            return  # no run can be found (the calendar ends in 9999)
        for moment in instants:
            if schedule.end_at is not None and moment > schedule.end_at:
                return
            if schedule.start_at is not None and moment < schedule.start_at:
                continue
            if moment <= after or (last is not None and moment <= last):
                continue  # shifted onto an instant already given
            last = moment
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
    check_cron(schedule.cron)
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
    try:
        instants = wall_to_utc(wall, zone_of(zone_name), gap, fold)
    except OverflowError:
        raise RecurrenceError(
            "exec_local", "exec_local in that time zone is past the calendar's end (year 9999)"
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
