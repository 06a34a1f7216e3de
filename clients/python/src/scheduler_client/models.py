"""The API's request and answer bodies, as the client reads and writes them.

Whole at ~420 lines: one copy per component of the OpenAPI document, compared as one set.

These are copies of the app's own models (scheduling/models.py; api/responses.py, job_views.py
and queries.py; the prompt payloads in delivery/prompts/), without their server-side checks:
the client package never imports the app. tests/live/test_cli_contract.py compares the JSON
schema of every model here with the same component of the running app's GET
/api/openapi.json, field by field (types, bounds, defaults, required): when the API changes,
that test fails until the copy here is changed to match.

Answers ignore fields they do not name, so an older client still reads a newer app's
answers; requests forbid them, so a misspelt field is caught before it is sent.
"""

from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    RootModel,
    StringConstraints,
    WithJsonSchema,
)

# An instant with an offset, written RFC 3339 both ways.
UtcDatetime = Annotated[AwareDatetime, WithJsonSchema({"type": "string", "format": "date-time"})]
# A local date and time without an offset (`exec_local`), e.g. 2027-03-28T09:00:00.
WallTime = Annotated[str, Field(pattern=r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?$")]

JobState = Literal["pending", "firing", "retrying", "paused", "succeeded", "failed", "cancelled"]
LiveState = Literal["pending", "firing", "retrying", "paused"]
ENDED_STATES: frozenset[str] = frozenset({"succeeded", "failed", "cancelled"})
DstGap = Literal["shift", "skip"]
DstFold = Literal["first", "last", "both"]
HttpMethod = Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
LogLevel = Literal["debug", "info", "warning", "error", "critical"]
LogKind = Literal[
    "accepted",
    "fired",
    "outcome",
    "cancelled",
    "wiped",
    "deleted",
    "log",
    "skipped",
    "paused",
    "resumed",
    "rescheduled",
    "replayed",
    "cleared",
    "expired",
    "kept",
    "callback",
]
# `delay`: how long from when the server accepts the job (90s, 5m, 1h30m, 2d, PT5M, P1DT2H).
DELAY_PATTERN = (
    r"^(?:(?:([0-9]{1,9})d)?(?:([0-9]{1,9})h)?(?:([0-9]{1,9})m)?(?:([0-9]{1,9})s)?"
    r"|P(?:([0-9]{1,9})D)?(?:T(?:([0-9]{1,9})H)?(?:([0-9]{1,9})M)?(?:([0-9]{1,9})S)?)?)$"
)
FLOW_KEY_PATTERN = r"^[A-Za-z0-9._:~\-\[\]]{1,128}$"
# Labels: up to 10 key=value pairs; keys as Kubernetes label keys, values of a safe charset.
LABEL_KEY_PATTERN = r"^[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?$"
LABEL_VALUE_PATTERN = r"^[A-Za-z0-9._:-]{1,63}$"
LABEL_FILTER_PATTERN = f"{LABEL_KEY_PATTERN[:-1]}={LABEL_VALUE_PATTERN[1:]}"
Labels = Annotated[
    dict[
        Annotated[str, StringConstraints(min_length=1, max_length=63, pattern=LABEL_KEY_PATTERN)],
        Annotated[str, StringConstraints(min_length=1, max_length=63, pattern=LABEL_VALUE_PATTERN)],
    ],
    Field(max_length=10),
]
LabelFilters = Annotated[
    list[Annotated[str, Field(pattern=LABEL_FILTER_PATTERN)]] | None, Field(max_length=10)
]
TRANSACTION_ID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class _Answer(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


# --- requests ------------------------------------------------------------------------------


class RetryPolicy(_Request):
    max_attempts: int = Field(default=1, ge=1, le=10)
    initial_delay_seconds: float = Field(default=30, ge=1, le=3600)
    max_delay_seconds: float = Field(default=3600, ge=1, le=86400)


class Callbacks(_Request):
    on_success: str | None = Field(default=None, min_length=1, max_length=2048)
    on_failure: str | None = Field(default=None, min_length=1, max_length=2048)


class FlowControlRequest(_Request):
    key: str | None = Field(default=None, pattern=FLOW_KEY_PATTERN)
    max_parallel: int | None = Field(default=None, ge=1)
    rate_per_second: float | None = Field(default=None, gt=0)


class HttpCallPayload(_Request):
    """The payload of an `http.call` job."""

    method: HttpMethod = "POST"
    url: str = Field(min_length=1, max_length=2048)
    headers: dict[str, str] = Field(default_factory=dict, max_length=64)
    body: str | None = None
    json_body: Any = Field(default=None, alias="json")
    timeout_seconds: float | None = Field(default=None, gt=0)
    record_response_body: bool = False


class LogAppendPayload(_Request):
    """The payload of a `log.append` job."""

    message: str = Field(min_length=1, max_length=8192)
    level: LogLevel = "info"
    fields: dict[str, Any] = Field(default_factory=dict)


class ScheduleRequest(_Request):
    """The body of POST /api/schedule: one of exec_at, exec_local, cron or delay says when."""

    exec_at: UtcDatetime | None = None
    exec_local: WallTime | None = None
    cron: str | None = None
    delay: str | None = Field(default=None, max_length=40, pattern=DELAY_PATTERN)
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
    # Shown in clear in status and listing: never a secret.
    labels: Labels | None = None


class JobListQuery(_Request):
    limit: int = Field(default=50, ge=1, le=500)
    state: LiveState | None = None
    due_from: UtcDatetime | None = Field(default=None, alias="from")
    due_to: UtcDatetime | None = Field(default=None, alias="to")
    prompt_type: str | None = None
    # `key=value`, all of them: a labelled listing comes in transaction id order.
    label: LabelFilters = None
    cursor: str | None = None


class FailedListQuery(_Request):
    limit: int = Field(default=50, ge=1, le=500)
    due_from: UtcDatetime | None = Field(default=None, alias="from")
    due_to: UtcDatetime | None = Field(default=None, alias="to")
    prompt_type: str | None = None
    cursor: str | None = None


class BatchItem(ScheduleRequest):
    """One job of POST /api/schedule/batch: a create body, and its own idempotency key."""

    idempotency_key: str | None = Field(default=None, pattern=r"^[\x21-\x7e]{1,255}$")


class BatchRequest(_Request):
    """The body of POST /api/schedule/batch: 1 to 1,000 jobs, each accepted on its own."""

    jobs: list[BatchItem] = Field(min_length=1, max_length=1000)


class CancelQuery(_Request):
    """DELETE /api/schedule: the live jobs a filter names (at least one filter)."""

    label: LabelFilters = None
    prompt_type: str | None = None
    due_from: UtcDatetime | None = Field(default=None, alias="from")
    due_to: UtcDatetime | None = Field(default=None, alias="to")
    cursor: str | None = None


class JobStatusQuery(_Request):
    history: bool = False


class JobLogQuery(_Request):
    limit: int = Field(default=100, ge=1, le=1000)
    cursor: str | None = None


class PreviewQuery(_Request):
    cron: str
    timezone: str = "UTC"
    dst_gap: DstGap = "shift"
    dst_fold: DstFold = "first"
    start_at: UtcDatetime | None = None
    end_at: UtcDatetime | None = None
    count: int = Field(default=10, ge=1, le=100)


# --- answers -------------------------------------------------------------------------------


class AttemptSummary(_Answer):
    attempt: int = Field(ge=1)
    due_at: UtcDatetime
    fired_at: UtcDatetime
    lateness_ms: int
    finished_at: UtcDatetime | None = None
    ok: bool | None = None
    status_code: int | None = None
    error: str | None = None


class FlowLimits(_Answer):
    key: str = Field(pattern=FLOW_KEY_PATTERN)
    max_parallel: int = Field(ge=1)
    rate_per_second: float = Field(gt=0)


class Recurrence(_Answer):
    cron: str
    timezone: str = "UTC"
    dst_gap: DstGap = "shift"
    dst_fold: DstFold = "first"
    start_at: UtcDatetime | None = None
    end_at: UtcDatetime | None = None
    max_runs: int | None = Field(default=None, ge=1)


class SlotWait(_Answer):
    phase: Literal["waiting for a slot"]
    flow_key: str
    attempt: int
    position: int | None = None
    start_at: UtcDatetime | None = None


class AcceptedJob(_Answer):
    transaction_id: str
    state: JobState
    exec_at: UtcDatetime
    next_fire_at: UtcDatetime | None
    status_url: str


class ListedJob(_Answer):
    transaction_id: str
    state: JobState
    prompt_type: str
    exec_at: UtcDatetime
    attempts: int = 0
    next_attempt_at: UtcDatetime | None = None
    labels: Labels = Field(default_factory=dict)
    next_fire_at: UtcDatetime | None
    last_attempt: AttemptSummary | None


class JobStatus(_Answer):
    transaction_id: str
    state: JobState
    prompt_type: str
    exec_at: UtcDatetime
    attempts: int = 0
    next_attempt_at: UtcDatetime | None = None
    attempt_history: list[AttemptSummary] = Field(default_factory=list)
    accepted_at: UtcDatetime
    updated_at: UtcDatetime
    fired_at: UtcDatetime | None = None
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    destination: str | None = None
    flow: FlowLimits | None = None
    last_outcome: dict[str, Any] | None = None
    recurrence: Recurrence | None = None
    runs: int = 0
    skipped_runs: int = 0
    last_run: dict[str, Any] | None = None
    failed_at: UtcDatetime | None = None
    replayed_at: UtcDatetime | None = None
    callbacks: dict[Literal["on_success", "on_failure"], str] | None = None
    labels: Labels = Field(default_factory=dict)
    next_fire_at: UtcDatetime | None
    orchestration: dict[str, Any] | None = None
    waiting: SlotWait | None = None


class UnreadableJob(_Answer):
    """A job whose record the app cannot read; only deleting it is possible."""

    transaction_id: str
    unreadable: Literal[True]
    why: str
    state: JobState | None
    prompt_type: str | None
    exec_at: UtcDatetime | None


class JobStatusAnswer(RootModel[JobStatus | UnreadableJob]):
    """A job's status, or what can be said of it when its record cannot be read."""


class JobPage(_Answer):
    jobs: list[ListedJob | UnreadableJob]
    next_cursor: str | None


class FailedPage(_Answer):
    jobs: list[JobStatus | UnreadableJob]
    next_cursor: str | None


class JobLogEntry(_Answer):
    transaction_id: str = Field(min_length=1, max_length=255)
    entry_id: str = Field(min_length=1, max_length=255)
    timestamp: AwareDatetime
    kind: LogKind
    level: LogLevel = "info"
    message: str = ""
    fields: dict[str, Any] = Field(default_factory=dict)


class JobLogPage(_Answer):
    entries: list[JobLogEntry]
    next_cursor: str | None = None


class DeletedJob(_Answer):
    transaction_id: str
    deleted: Literal[True]
    state_before: JobState | None


class FireTimes(_Answer):
    fire_times: list[UtcDatetime]


class FieldError(_Answer):
    loc: list[str | int]
    msg: str
    type: str


class Problem(_Answer):
    """An RFC 9457 problem document: every error the API answers with."""

    type: str
    title: str
    status: int
    detail: str
    errors: list[FieldError] = Field(default_factory=list)


class BatchItemResult(_Answer):
    index: int = Field(ge=0)
    result: Literal["created", "existed", "failed"]
    job: AcceptedJob | None = None
    problem: Problem | None = None


class BatchOutcome(_Answer):
    results: list[BatchItemResult]
    created: int = Field(ge=0)
    existed: int = Field(ge=0)
    failed: int = Field(ge=0)


class CancelOutcome(_Answer):
    cancelled: int = Field(ge=0)
    firing: list[str]
    unreadable: int = Field(ge=0)
    complete: bool
    next_cursor: str | None


# What tests/live/test_cli_contract.py compares with the app's OpenAPI components, in the
# mode the app documents each in (requests as validated, answers as serialised).
REQUEST_MODELS: tuple[type[BaseModel], ...] = (
    ScheduleRequest,
    RetryPolicy,
    Callbacks,
    FlowControlRequest,
    HttpCallPayload,
    LogAppendPayload,
    JobListQuery,
    CancelQuery,
    FailedListQuery,
    JobStatusQuery,
    JobLogQuery,
    PreviewQuery,
)
ANSWER_MODELS: tuple[type[BaseModel], ...] = (
    AcceptedJob,
    BatchItemResult,
    BatchOutcome,
    CancelOutcome,
    AttemptSummary,
    DeletedJob,
    FailedPage,
    FieldError,
    FireTimes,
    FlowLimits,
    JobLogEntry,
    JobLogPage,
    JobPage,
    JobStatus,
    JobStatusAnswer,
    ListedJob,
    Problem,
    Recurrence,
    SlotWait,
    UnreadableJob,
)
