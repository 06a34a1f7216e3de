"""The request that creates a job, and the one way every time is read and written."""

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    WithJsonSchema,
    create_model,
)

from scheduling.cron import normalised_cron
from scheduling.labels import Labels
from scheduling.retry import RetryPolicy
from scheduling.timing import ExecAtError, format_utc, parse_exec_at

# What POST /api/schedule returns as the job's id (a lower-case UUID); routes check it.
TRANSACTION_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


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
    # An RFC 3339 date-time both ways (parse_exec_at takes no other form).
    WithJsonSchema({"type": "string", "format": "date-time"}),
]


# A cron expression as stored and fingerprinted: one schedule written two ways is one schedule.
# Whether the API takes it is checked with the rest of the schedule (scheduling/cron.py), so that
# the refusal names the field and says why.
CronExpression = Annotated[str, AfterValidator(normalised_cron)]


# What fires when a local wall time does not exist (clocks jump forward) or happens twice.
DstGap = Literal["shift", "skip"]
DstFold = Literal["first", "last", "both"]
_WALL_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?")


def _wall_time(value: object) -> datetime:
    """A local date and time with no offset (`2027-03-28T09:00:00`), as a naive datetime."""
    if isinstance(value, datetime) and value.tzinfo is None:
        return value
    if not isinstance(value, str) or not _WALL_TIME.fullmatch(value):
        raise ValueError(
            "must be a local date and time without an offset, e.g. 2027-03-28T09:00:00"
        )
    return datetime.fromisoformat(value)


WallTime = Annotated[
    datetime,
    BeforeValidator(_wall_time),
    PlainSerializer(lambda moment: moment.isoformat(), return_type=str),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": f"^{_WALL_TIME.pattern}$",
            "examples": ["2027-03-28T09:00:00"],
        }
    ),
]


# Printable, no `/`, `\`, `#`, `?`, `@` or space: a flow key is part of its entity's instance id
# (`@flow_control@{key}`), which Azure Storage keeps in table keys.
FLOW_KEY = r"[A-Za-z0-9._:~\-\[\]]{1,128}"
FLOW_KEY_PATTERN = f"^{FLOW_KEY}$"


CallbackKind = Literal["on_success", "on_failure"]


class Callbacks(BaseModel):
    """Where to POST a job's outcome when a run ends: on success, on failure, or both.

    The URLs are checked like an http.call target when the job is created (accepting.py),
    sealed with the job, and shown only redacted: they may carry credentials.
    """

    model_config = ConfigDict(extra="forbid", strict=True)

    on_success: str | None = Field(default=None, min_length=1, max_length=2048)
    on_failure: str | None = Field(default=None, min_length=1, max_length=2048)

    def urls(self) -> dict[CallbackKind, str]:
        given: dict[CallbackKind, str | None] = {
            "on_success": self.on_success,
            "on_failure": self.on_failure,
        }
        return {kind: url for kind, url in given.items() if url is not None}


class FlowControlRequest(BaseModel):
    """A job's own flow control: another flow key, or limits up to the settings' bounds.

    The key is shown in clear (status, durable state): it must not carry a secret.
    """

    model_config = ConfigDict(extra="forbid", strict=True)

    key: str | None = Field(default=None, pattern=FLOW_KEY_PATTERN)
    max_parallel: int | None = Field(default=None, ge=1)
    rate_per_second: float | None = Field(default=None, gt=0)


class ScheduleRequest(BaseModel):
    """The body of `POST /api/schedule`: one of exec_at, exec_local or cron says when.

    Which combinations make sense is checked with the schedule itself (accepting.py), so a
    422 can name the field at fault; the payload is checked against its prompt type.
    """

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "cron": "0 9 * * MON-FRI",
                    "timezone": "Europe/Paris",
                    "prompt_type": "log.append",
                    "payload": {"message": "stand-up reminder"},
                }
            ]
        },
    )

    exec_at: UtcDatetime | None = None
    exec_local: WallTime | None = None
    cron: CronExpression | None = None
    timezone: str | None = None
    dst_gap: DstGap = "shift"
    dst_fold: DstFold = "first"
    start_at: UtcDatetime | None = None
    end_at: UtcDatetime | None = None
    max_runs: int | None = Field(default=None, ge=1, le=1_000_000)
    prompt_type: str = Field(min_length=1, max_length=64)
    payload: dict[str, Any]
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    callbacks: Callbacks | None = None
    flow_control: FlowControlRequest | None = None
    # None when not given: a request without labels fingerprints as it did before labels.
    labels: Labels | None = None


class ScheduleChange(BaseModel):
    """The body of PATCH /api/schedule/{id}: the schedule fields to change, nothing else."""

    model_config = ConfigDict(extra="forbid")

    exec_at: UtcDatetime | None = None
    exec_local: WallTime | None = None
    cron: CronExpression | None = None
    timezone: str | None = None
    dst_gap: DstGap | None = None
    dst_fold: DstFold | None = None
    start_at: UtcDatetime | None = None
    end_at: UtcDatetime | None = None
    max_runs: int | None = None


def fields_of(name: str, model: type[BaseModel], names: tuple[str, ...]) -> type[BaseModel]:
    """A model of `model`'s fields in `names`, with their types, defaults and docs; extra
    fields forbidden. Views and queries derive from it instead of restating those fields."""
    fields: dict[str, Any] = {
        field: (model.model_fields[field].annotation, model.model_fields[field]) for field in names
    }
    return create_model(name, __config__=ConfigDict(extra="forbid"), **fields)
