"""When a job may be scheduled and how its orchestration waits for it."""

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

# Each wait is an ordinary durable timer of at most this length: longer timers become
# uncancellable chains inside the SDK (see ARCHITECTURE.md), which would break delete.
MAX_TIMER_CHUNK = timedelta(days=3)

# RFC 3339 date-time (section 5.6), `T` and `Z` in either case, ASCII digits only; the offset is
# optional here only so that a local time can be refused with the rule that says why. Anything
# else ISO 8601 or datetime.fromisoformat accepts (week and ordinal dates, comma fractions,
# missing seconds, offsets with seconds, trailing text) is not an exec_at.
_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?"
    r"(?P<offset>[Zz]|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])?"
)
# Room for nanoseconds and more; longer is not a time anyone means, and is not echoed back.
_MAX_EXEC_AT_LENGTH = 64


class ExecAtError(ValueError):
    """`exec_at` is not an acceptable time; `rule` names which check failed."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(message)
        self.rule = rule


def parse_exec_at(value: object) -> datetime:
    """Parse an RFC 3339 date-time, which carries an offset, and return it in UTC."""
    if not isinstance(value, str):
        raise ExecAtError("format", "exec_at must be an ISO-8601 string with an offset")
    match = _RFC3339.fullmatch(value) if len(value) <= _MAX_EXEC_AT_LENGTH else None
    if match is None:
        raise ExecAtError(
            "format",
            f"exec_at {_shown(value)} is not an RFC 3339 date and time "
            "such as 2026-12-01T09:30:00Z or 2026-12-01T10:30:00.5+01:00",
        )
    if match["offset"] is None:
        raise ExecAtError(
            "offset",
            "exec_at must carry a UTC offset (`Z` or `+hh:mm`); a local time is ambiguous",
        )
    try:
        # The grammar is settled above; fromisoformat checks the calendar (no 2027-02-29, no
        # hour 24) and cuts digits past microseconds. It takes only upper-case T and Z.
        parsed = datetime.fromisoformat(value.upper())
    except ValueError:
        raise ExecAtError(
            "format", f"exec_at {_shown(value)} is not a valid date and time"
        ) from None
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        raise ExecAtError(
            "format",
            f"exec_at {_shown(value)} is out of range: in UTC it falls outside years 1 to 9999",
        ) from None


def _shown(value: str) -> str:
    return repr(value if len(value) <= _MAX_EXEC_AT_LENGTH else value[:_MAX_EXEC_AT_LENGTH] + "…")


def earliest_run(now: datetime, min_lead_seconds: int) -> datetime:
    """The soonest a run the API accepts or picks may be: MIN_LEAD_SECONDS after now.

    One rule for every way of saying when (exec_at, exec_local, delay, cron), for a PATCH, a
    resume and the preview's first listed run, so that what a preview lists first is what a
    create at the same moment gets. (A recurring job's later runs follow its schedule: the
    lead is for the API's answer, which must not name a run the app may not get to in time.)
    """
    return now + timedelta(seconds=min_lead_seconds)


def check_schedule_window(
    exec_at: datetime, now: datetime, *, min_lead_seconds: int, max_horizon_days: int
) -> None:
    """Refuse a time that is too soon to be reliable or too far away to be accepted."""
    earliest = earliest_run(now, min_lead_seconds)
    if exec_at < earliest:
        raise ExecAtError(
            "min_lead",
            f"exec_at must be at least {min_lead_seconds} s in the future "
            f"(earliest now: {format_utc(earliest)})",
        )
    latest = now + timedelta(days=max_horizon_days)
    if exec_at > latest:
        raise ExecAtError(
            "max_horizon",
            f"exec_at must be at most {max_horizon_days} days in the future "
            f"(latest now: {format_utc(latest)})",
        )


@dataclass(frozen=True)
class WaitStep:
    """What an orchestration episode does before firing: wait until `until`, then go on."""

    until: datetime
    reaches_exec_at: bool


def next_wait(now: datetime, exec_at: datetime) -> WaitStep | None:
    """The next timer an orchestration waiting for `exec_at` sets, or None when it is due."""
    if now >= exec_at:
        return None
    chunk_end = now + MAX_TIMER_CHUNK
    if chunk_end >= exec_at:
        return WaitStep(until=exec_at, reaches_exec_at=True)
    return WaitStep(until=chunk_end, reaches_exec_at=False)


def format_utc(moment: datetime) -> str:
    """ISO-8601 in UTC with a `Z`, as every response and record shows time."""
    text = moment.astimezone(UTC).isoformat()
    return text.removesuffix("+00:00") + "Z"
