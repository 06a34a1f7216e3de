"""The HTTP API's operations: which route takes and answers which body, and who may call it.

The table the OpenAPI document (`api.openapi`) is generated from; the dashboard's pages are
`api.dashboard_operations`.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel

from api.batch import MAX_BATCH_JOBS
from api.job_views import JobStatus
from api.queries import (
    CancelQuery,
    FailedListQuery,
    JobListQuery,
    JobLogQuery,
    JobStatusQuery,
    PreviewQuery,
)
from api.responses import (
    AcceptedJob,
    BatchOutcome,
    CancelOutcome,
    ClearOutcome,
    DeletedJob,
    FailedPage,
    FireTimes,
    Health,
    HealthDetails,
    JobPage,
    JobStatusAnswer,
    WipeOutcome,
)
from scheduling.idempotency import IDEMPOTENCY_KEY
from storage.job_log.entries import JobLogPage

Auth = Literal["anonymous", "function", "admin"]

# What each status of a problem means, whichever route answers it.
PROBLEM_STATUSES: Mapping[int, str] = {
    400: "malformed request: JSON syntax, query parameter, cursor, transaction id or "
    "Idempotency-Key",
    401: "the dashboard: not signed in (open /api/dashboard with the master key)",
    403: "the dashboard: a form that did not come from its pages (origin, CSRF token)",
    404: "no such job (or asset)",
    409: "the job's state does not allow this now, its record cannot be read (DELETE it), "
    "or an Idempotency-Key was reused",
    413: "the body is larger than MAX_REQUEST_BYTES",
    415: "the body is not application/json",
    422: "the request is well-formed but not valid; `errors` names each field at fault",
    500: "an unexpected error; the details are in the app's logs only",
    503: "a backend (job store, job log, durable extension, key vault) did not answer",
}
_ALWAYS = (500,)
_READ = (400, 404, 500, 503)
_CHANGE = (400, 404, 409, 500, 503)
_BODY = (400, 413, 415, 422)


@dataclass(frozen=True)
class Answer:
    """A documented non-problem answer: its model (or a bare media type) and headers."""

    description: str
    model: type[BaseModel] | None = None
    # None: no body (a redirect).
    media_type: str | None = "application/json"
    headers: Mapping[str, str] = field(default_factory=dict)
    links: tuple[str, ...] = ()


@dataclass(frozen=True)
class Operation:
    """One route and method. `operation_id` is the app's function name for it."""

    operation_id: str
    method: str
    path: str
    summary: str
    auth: Auth
    tag: str
    answers: Mapping[int, Answer]
    problems: tuple[int, ...] = _ALWAYS
    body: Literal["schedule", "change", "form", "batch"] | None = None
    query: type[BaseModel] | None = None
    # Request headers: name -> (description, JSON schema).
    headers: Mapping[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)
    path_enums: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # A dashboard page: the app checks its session cookie (the host sees it as anonymous),
    # and its errors are HTML pages, not problem details.
    session: bool = False
    pages: bool = False


# Where a created job's id leads (schemathesis follows these in its stateful phase).
_ID_LINKS = (
    "job_status",
    "job_log",
    "delete_job",
    "reschedule_job",
    "pause_job",
    "resume_job",
    "replay_job",
)
_STATUS = Answer("the job", JobStatus)
_READ_STATUS = Answer(
    "the job, or what can be said of it when its record cannot be read", JobStatusAnswer
)
_JOB_PATH = "/api/schedule/{transaction_id}"
REFERENCE_ASSETS = ("swagger-ui.css", "swagger-ui-bundle.js", "reference.js")

API_OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "create_job",
        "POST",
        "/api/schedule",
        "Schedule a job",
        "function",
        "jobs",
        {
            202: Answer(
                "accepted (or, with the same Idempotency-Key and request, accepted before)",
                AcceptedJob,
                headers={
                    "Location": "the job's status URL",
                    "Idempotent-Replayed": "`true` when this answers an earlier request",
                },
                links=_ID_LINKS,
            )
        },
        (*_BODY, 409, 500, 503),
        body="schedule",
        headers={
            "Idempotency-Key": (
                "the same key and request always mean the same job (REQUEST_FINGERPRINT_KEY "
                "must be set)",
                {"type": "string", "pattern": f"^{IDEMPOTENCY_KEY.pattern}$"},
            )
        },
    ),
    Operation(
        "list_jobs",
        "GET",
        "/api/schedule",
        "List live jobs",
        "function",
        "jobs",
        {200: Answer("a page of live jobs", JobPage)},
        (400, 500, 503),
        query=JobListQuery,
    ),
    Operation(
        "cancel_jobs",
        "DELETE",
        "/api/schedule",
        "Cancel the live jobs a filter names (bounded work per call, a cursor to go on)",
        "function",
        "jobs",
        {200: Answer("what this call cancelled, and the firing jobs it left alone", CancelOutcome)},
        (400, 500, 503),
        query=CancelQuery,
    ),
    Operation(
        "create_batch",
        "POST",
        "/api/schedule/batch",
        f"Schedule up to {MAX_BATCH_JOBS} jobs, each accepted or refused on its own",
        "function",
        "jobs",
        {200: Answer("one result per job, in request order", BatchOutcome)},
        (400, 413, 415, 422, 500),
        body="batch",
    ),
    Operation(
        "preview_schedule",
        "GET",
        "/api/schedule/preview",
        "Preview a cron schedule's next fire times",
        "function",
        "jobs",
        {200: Answer("the next fire times, in UTC", FireTimes)},
        (400, 422, 500),
        query=PreviewQuery,
    ),
    Operation(
        "job_status",
        "GET",
        f"{_JOB_PATH}/status",
        "Read a job",
        "function",
        "jobs",
        {200: _READ_STATUS},
        _READ,
        query=JobStatusQuery,
    ),
    Operation(
        "job_log",
        "GET",
        f"{_JOB_PATH}/logs",
        "Read a job's log",
        "function",
        "jobs",
        {200: Answer("entries in time order; a deleted job keeps its log", JobLogPage)},
        _READ,
        query=JobLogQuery,
    ),
    Operation(
        "delete_job",
        "DELETE",
        _JOB_PATH,
        "Delete a job (409 while an attempt runs)",
        "function",
        "jobs",
        {200: Answer("deleted", DeletedJob)},
        _CHANGE,
    ),
    Operation(
        "reschedule_job",
        "PATCH",
        _JOB_PATH,
        "Move a pending one-time job, or change a recurring job's schedule",
        "function",
        "jobs",
        {200: _STATUS},
        (*_BODY, 404, 409, 500, 503),
        body="change",
    ),
    Operation(
        "pause_job",
        "POST",
        f"{_JOB_PATH}/pause",
        "Pause a recurring job",
        "function",
        "jobs",
        {200: _STATUS},
        _CHANGE,
    ),
    Operation(
        "resume_job",
        "POST",
        f"{_JOB_PATH}/resume",
        "Resume a paused recurring job",
        "function",
        "jobs",
        {200: _STATUS},
        _CHANGE,
    ),
    Operation(
        "replay_job",
        "POST",
        f"{_JOB_PATH}/replay",
        "Run a failed job again, now, as a new run (409 unless it failed)",
        "function",
        "failed",
        {
            202: Answer(
                "the job, pending again (a repeat while that run goes on: the same)", JobStatus
            )
        },
        _CHANGE,
    ),
    Operation(
        "list_failed",
        "GET",
        "/api/failed",
        "List failed jobs with their attempts",
        "function",
        "failed",
        {200: Answer("a page of failed jobs", FailedPage)},
        (400, 500, 503),
        query=FailedListQuery,
    ),
    Operation(
        "clear_failed",
        "DELETE",
        "/api/failed",
        "Remove every failed job (bounded work per call)",
        "admin",
        "failed",
        {200: Answer("what this call removed", ClearOutcome)},
        (500, 503),
    ),
    Operation(
        "healthz",
        "GET",
        "/api/healthz",
        "Whether the app works",
        "anonymous",
        "health",
        {200: Answer("working", Health), 503: Answer("degraded", Health)},
        (),
    ),
    Operation(
        "healthz_details",
        "GET",
        "/api/healthz/details",
        "Health with versions and the backend's state",
        "admin",
        "health",
        {200: Answer("working", HealthDetails), 503: Answer("degraded", HealthDetails)},
        (),
    ),
    Operation(
        "admin_list_jobs",
        "GET",
        "/api/schedules",
        "List live jobs (the older app's admin route)",
        "admin",
        "admin",
        {200: Answer("a page of live jobs", JobPage)},
        (400, 500, 503),
        query=JobListQuery,
    ),
    Operation(
        "admin_job_status",
        "GET",
        "/api/status/{instance_id}",
        "Read a job (the older app's admin route)",
        "admin",
        "admin",
        {200: _READ_STATUS},
        _READ,
        query=JobStatusQuery,
    ),
    Operation(
        "admin_terminate_job",
        "POST",
        "/api/terminate/{instance_id}",
        "Delete a job (the older app's admin route)",
        "admin",
        "admin",
        {200: Answer("deleted", DeletedJob)},
        _CHANGE,
    ),
    Operation(
        "admin_wipe",
        "POST",
        "/api/wipe",
        "Cancel every live job (the older app's admin route)",
        "admin",
        "admin",
        {200: Answer("what this call cancelled", WipeOutcome)},
        (500, 503),
    ),
    Operation(
        "openapi_document",
        "GET",
        "/api/openapi.json",
        "This document",
        "anonymous",
        "reference",
        {200: Answer("the OpenAPI 3.1 document")},
        (),
    ),
    Operation(
        "api_reference",
        "GET",
        "/api/docs",
        "The API reference page (Swagger UI, served by the app)",
        "anonymous",
        "reference",
        {200: Answer("the page", media_type="text/html")},
        (),
    ),
    Operation(
        "api_reference_asset",
        "GET",
        "/api/docs/{asset}",
        "A script or style sheet of the reference page",
        "anonymous",
        "reference",
        {200: Answer("the asset", media_type="*/*")},
        (404,),
        path_enums={"asset": REFERENCE_ASSETS},
    ),
)
