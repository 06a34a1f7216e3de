"""When a new job first fires: from exec_at, exec_local, cron or delay, within the lead and
horizon.

Pure, so the same rules answer POST /api/schedule, PATCH and the preview; every refusal names
the request field at fault.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from scheduling.models import ScheduleRequest
from scheduling.recurrence import (
    Recurrence,
    RecurrenceError,
    check_recurrence,
    local_exec_at,
    preview,
)
from scheduling.timing import ExecAtError, check_schedule_window, earliest_run, format_utc

# A delay last: combined with any other, it is the field a refusal names.
# fire_times() lists runs strictly after its start; a run at the earliest instant is allowed.
_JUST_BEFORE = timedelta(microseconds=1)
WHEN_FIELDS = ("exec_at", "exec_local", "cron", "delay")
# Fields that only a cron schedule (or, for the zone rules, an exec_local) takes.
_CRON_ONLY = ("start_at", "end_at", "max_runs")


class ScheduleError(ValueError):
    """The request's schedule cannot work: `field` is at fault, `rule` says how."""

    def __init__(self, field: str, rule: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.rule = rule


@dataclass(frozen=True)
class FirstRun:
    at: datetime
    recurrence: Recurrence | None


def first_run(
    request: ScheduleRequest, now: datetime, *, min_lead_seconds: int, max_horizon_days: int
) -> FirstRun:
    """The first fire instant (UTC) and, for cron, the schedule; ScheduleError otherwise."""
    given = [name for name in WHEN_FIELDS if getattr(request, name) is not None]
    if len(given) != 1:
        raise ScheduleError(
            given[1] if len(given) > 1 else "exec_at",
            "one_of",
            "give exactly one of exec_at (an instant), exec_local (a local wall time with "
            "timezone), cron (a recurring schedule with timezone) or delay (how long from now, "
            "such as 10s or PT5M)",
        )
    if request.cron is None:
        for name in _CRON_ONLY:
            if getattr(request, name) is not None:
                raise ScheduleError(name, "cron_only", f"{name} applies to cron schedules only")
    if request.exec_at is not None and request.timezone is not None:
        raise ScheduleError("timezone", "exec_at_has_offset", "exec_at carries its own offset")
    if request.delay is not None and request.timezone is not None:
        raise ScheduleError("timezone", "delay_is_relative", "a delay counts from now, in no zone")
    earliest = earliest_run(now, min_lead_seconds)
    try:
        if request.cron is not None:
            recurrence = Recurrence(
                cron=request.cron,
                timezone=request.timezone or "UTC",
                dst_gap=request.dst_gap,
                dst_fold=request.dst_fold,
                start_at=request.start_at,
                end_at=request.end_at,
                max_runs=request.max_runs,
            )
            # The first run is at least the lead away: sooner ones are not this job's.
            at = check_recurrence(recurrence, earliest - _JUST_BEFORE)
            if at > now + timedelta(days=max_horizon_days):
                raise ScheduleError(
                    "cron",
                    "max_horizon",
                    f"the first run must be within {max_horizon_days} days "
                    f"(it would be {format_utc(at)})",
                )
            return FirstRun(at=at, recurrence=recurrence)
        if request.exec_local is not None:
            if request.dst_fold == "both":
                raise ScheduleError(
                    "dst_fold", "one_time", "a one-time job fires once: dst_fold is first or last"
                )
            at = local_exec_at(
                request.exec_local, request.timezone or "UTC", request.dst_gap, request.dst_fold
            )
            field = "exec_local"
        elif request.exec_at is not None:
            at, field = request.exec_at, "exec_at"
        elif request.delay is not None:
            _check_delay(request.delay, min_lead_seconds, max_horizon_days)
            at, field = now + request.delay, "delay"
        else:  # not reached: exactly one of the three is set
            raise ScheduleError("exec_at", "one_of", "exec_at is missing")
    except RecurrenceError as error:
        raise ScheduleError(error.field, "schedule", str(error)) from None
    try:
        check_schedule_window(
            at, now, min_lead_seconds=min_lead_seconds, max_horizon_days=max_horizon_days
        )
    except ExecAtError as error:
        raise ScheduleError(field, error.rule, str(error).replace("exec_at", field)) from None
    return FirstRun(at=at, recurrence=None)


def first_runs(
    schedule: Recurrence, now: datetime, *, min_lead_seconds: int, count: int
) -> list[datetime]:
    """The first `count` runs a create of `schedule` at `now` would get (the preview)."""
    return preview(schedule, earliest_run(now, min_lead_seconds) - _JUST_BEFORE, count)


def _check_delay(delay: timedelta, min_lead_seconds: int, max_horizon_days: int) -> None:
    """The window's rules said in a delay's own terms (the instant is checked after it)."""
    if delay < timedelta(seconds=min_lead_seconds):
        raise ScheduleError(
            "delay",
            "min_lead",
            f"delay must be at least {min_lead_seconds} s (MIN_LEAD_SECONDS on this app)",
        )
    if delay > timedelta(days=max_horizon_days):
        raise ScheduleError(
            "delay",
            "max_horizon",
            f"delay must be at most {max_horizon_days} days (MAX_HORIZON_DAYS on this app)",
        )
