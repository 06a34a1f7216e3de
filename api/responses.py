"""The bodies the API answers with (besides job views and problems): one model each.

The handlers build their answers from these models, and the OpenAPI document is generated
from them, so what is documented is what is sent.
"""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel

from api.job_views import JobStatus, ListedJob, UnreadableJob
from api.problems import Problem
from scheduling.job_record import JobState
from scheduling.models import UtcDatetime


class _Answer(BaseModel):
    # A field the model does not name is a bug in the handler, not something to pass on.
    model_config = ConfigDict(extra="forbid")


class AcceptedJob(_Answer):
    """202 to a create (or its replay with the same Idempotency-Key)."""

    transaction_id: str
    state: JobState
    exec_at: UtcDatetime
    next_fire_at: UtcDatetime | None = Field(
        description="when the job next fires; null once it has ended or while it is paused"
    )
    status_url: str


class BatchItemResult(_Answer):
    """What became of one job of a batch, at its place in the request."""

    index: int = Field(ge=0, description="the job's place in the request's `jobs`, from 0")
    result: Literal["created", "existed", "failed"] = Field(
        description="created now; existed: accepted before under its `idempotency_key` (a "
        "retried batch); failed: nothing was scheduled for it, `problem` says why"
    )
    job: AcceptedJob | None = Field(
        default=None, description="created or existed: what a single create answers"
    )
    problem: Problem | None = Field(
        default=None,
        description="failed: the problem a single create of this job would answer (its "
        "`errors` name fields of the job itself)",
    )


class BatchOutcome(_Answer):
    """What a batch did: one result per job, in request order, and their counts."""

    results: list[BatchItemResult]
    created: int = Field(ge=0)
    existed: int = Field(ge=0)
    failed: int = Field(ge=0)


class JobPage(_Answer):
    """One page of the live-job listing, in exec_at order; a page may come back short."""

    jobs: list[ListedJob | UnreadableJob]
    next_cursor: str | None = Field(
        description="pass as `cursor` for the next page; null at the end"
    )


class FailedPage(_Answer):
    """One page of the failed list, in failure-time order, each job with its attempts."""

    jobs: list[JobStatus | UnreadableJob]
    next_cursor: str | None = Field(
        description="pass as `cursor` for the next page; null at the end (a short or empty "
        "page can still have one)"
    )


class ClearOutcome(_Answer):
    """What one clear of the failed list did; `complete: false` means send it again."""

    removed: int = Field(ge=0)
    complete: bool


class JobStatusAnswer(RootModel[JobStatus | UnreadableJob]):
    """A job's status, or what can be said of it when its record cannot be read."""


class DeletedJob(_Answer):
    transaction_id: str
    deleted: Literal[True]
    state_before: JobState | None = Field(
        description="null when the record could not be read well enough to tell"
    )


class WipeOutcome(_Answer):
    """What one wipe request did; `complete: false` means send it again."""

    cancelled: int = Field(ge=0)
    firing: int = Field(ge=0, description="jobs left alone because an attempt was running")
    unreadable: int = Field(
        ge=0,
        description="jobs left alone because their record cannot be read (each is listed as "
        "such; DELETE it by its id)",
    )
    complete: bool


class CancelOutcome(_Answer):
    """What one filtered delete did; `complete: false`: send it again with `next_cursor`."""

    cancelled: int = Field(ge=0)
    firing: list[str] = Field(
        description="the transaction ids of matching jobs left alone because an attempt was "
        "running (a firing job is never cut off): delete each once it has its outcome"
    )
    unreadable: int = Field(
        ge=0,
        description="index rows of this filter's jobs whose record cannot be read, left alone "
        "(DELETE each by its id)",
    )
    complete: bool = Field(description="true: every matching job was looked at")
    next_cursor: str | None = Field(
        description="pass as `cursor` (with the same filter) to go on; null when complete"
    )


class FireTimes(_Answer):
    fire_times: list[UtcDatetime]


class Health(_Answer):
    status: Literal["ok", "degraded"]


class HealthDetails(Health):
    python_version: str
    functions_runtime_version: str
    azure_functions_version: str
    durable_sdk_version: str
    tzdata_version: str = Field(
        description="the IANA time zone database release every zone is read from (the pinned "
        "tzdata package, never the host's files), e.g. 2026f"
    )
    durable_backend: Literal["ok", "unavailable"]
    durable_backend_error: str | None = None
    settings: Literal["ok", "invalid"]
    settings_errors: list[str] | None = Field(
        default=None,
        description="which app setting is wrong and why, one line each (never its value)",
    )
