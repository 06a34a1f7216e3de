"""The shapes a job takes: the request that creates it, the record that runs it, the result."""

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


class Job(BaseModel):
    """An accepted job: the orchestration's input, and all it needs to fire."""

    transaction_id: str
    exec_at: UtcDatetime
    prompt_type: str
    payload: dict[str, Any]
    accepted_at: UtcDatetime
    registry_shard: str
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    # Set when the job was created with an Idempotency-Key (see scheduling/idempotency.py).
    request_fingerprint: str | None = None


class Attempt(BaseModel):
    """The activity's input: which job, and which attempt at it (1 for the first)."""

    job: Job
    number: int = Field(ge=1)


class PendingJob(BaseModel):
    """What the registry keeps of a job until it has fired."""

    transaction_id: str
    exec_at: UtcDatetime
    prompt_type: str
    accepted_at: UtcDatetime
    firing: bool = False
    # A delete met a running attempt: it is the last one.
    cancel_requested: bool = False

    @classmethod
    def of(cls, job: Job) -> "PendingJob":
        return cls(
            transaction_id=job.transaction_id,
            exec_at=job.exec_at,
            prompt_type=job.prompt_type,
            accepted_at=job.accepted_at,
        )


class JobResult(BaseModel):
    """What a fired (or cancelled) job ends with: its orchestration's output."""

    transaction_id: str
    prompt_type: str
    ok: bool
    fired_at: UtcDatetime | None = None
    attempts: int = 0
    cancelled: bool = False
    outcome: dict[str, Any] = Field(default_factory=dict)
    log_errors: list[str] = Field(default_factory=list)
