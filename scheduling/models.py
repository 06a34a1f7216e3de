"""The request that creates a job, and the one way every time is read and written."""

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer

from scheduling.retry import RetryPolicy
from scheduling.timing import ExecAtError, format_utc, parse_exec_at


def _utc_datetime(value: object) -> datetime:
    """An ISO-8601 string with an offset, or (built in code) an aware datetime, in UTC.

    Anything else, a number of seconds included, is refused the way `parse_exec_at` refuses
    it: pydantic's own datetime parsing would take 1796119200 as a Unix time.
    """
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ExecAtError("offset", "a datetime without a UTC offset is ambiguous")
        try:
            return value.astimezone(UTC)
        except OverflowError:
            raise ExecAtError("format", "the datetime is out of range once in UTC") from None
    return parse_exec_at(value)


UtcDatetime = Annotated[
    AwareDatetime,
    BeforeValidator(_utc_datetime),
    PlainSerializer(format_utc, return_type=str),
]


class ScheduleRequest(BaseModel):
    """The body of `POST /api/schedule`; the payload is checked against its prompt type later."""

    model_config = ConfigDict(extra="forbid")

    exec_at: UtcDatetime
    prompt_type: str = Field(min_length=1, max_length=64)
    payload: dict[str, Any]
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
