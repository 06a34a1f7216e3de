"""When a job may be scheduled and how its orchestration waits for it."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

# Each wait is an ordinary durable timer of at most this length: longer timers become
# uncancellable chains inside the SDK (see ARCHITECTURE.md), which would break delete.
MAX_TIMER_CHUNK = timedelta(days=3)


class ExecAtError(ValueError):
    """`exec_at` is not an acceptable time; `rule` names which check failed."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(message)
        self.rule = rule


def parse_exec_at(value: object) -> datetime:
    """Parse an ISO-8601 timestamp that carries an offset and return it in UTC."""
    if not isinstance(value, str):
        raise ExecAtError("format", "exec_at must be an ISO-8601 string with an offset")
    text = value.strip()
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ExecAtError(
            "format", f"exec_at {value!r} is not a valid ISO-8601 date and time"
        ) from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise ExecAtError(
            "offset",
            "exec_at must carry a UTC offset (`Z` or `+hh:mm`); a local time is ambiguous",
        )
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        raise ExecAtError(
            "format",
            f"exec_at {value!r} is out of range: in UTC it falls outside years 1 to 9999",
        ) from None


def check_schedule_window(
    exec_at: datetime, now: datetime, *, min_lead_seconds: int, max_horizon_days: int
) -> None:
    """Refuse a time that is too soon to be reliable or too far away to be accepted."""
    earliest = now + timedelta(seconds=min_lead_seconds)
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
