"""The OpenAPI 3.1 document of the HTTP API, generated from the pydantic models.

The models (requests, queries, answers, problems) are the only description of a body; this
module says which route takes and answers which, and who may call it. A test compares the
routes here with the routes the app registers, so a new route cannot go undocumented.
"""

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Literal

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from api.batch import ITEM_KEY, MAX_BATCH_BYTES, MAX_BATCH_JOBS
from api.job_views import JobStatus
from api.problems import Problem
from api.queries import (
    CancelQuery,
    DashboardFailedQuery,
    DashboardForm,
    DashboardJobsQuery,
    DashboardNotice,
    DashboardRecurringQuery,
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
from dashboard.sessions import COOKIE_NAME as SESSION_COOKIE
from delivery.prompts import PROMPT_TYPES
from scheduling.idempotency import IDEMPOTENCY_KEY
from scheduling.models import TRANSACTION_ID, ScheduleChange, ScheduleRequest
from storage.job_log.entries import JobLogPage

Auth = Literal["anonymous", "function", "admin"]
_REF = "#/components/schemas/{model}"
_PATH_PARAMETER = re.compile(r"\{\w+\}")

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

_PAGE = Answer("the page", media_type="text/html")
_SEE_OTHER = Answer(
    "done: the browser is sent to the page that shows it",
    media_type=None,
    headers={"Location": "that page"},
)
_DASHBOARD = "/api/dashboard"
_PAGE_ERRORS = (400, 401, 500, 503)
_FORM_ERRORS = (401, 403, 500, 503)
DASHBOARD_OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "dashboard_sign_in",
        "GET",
        _DASHBOARD,
        "Sign in to the dashboard (a session cookie) and go to its jobs page",
        "admin",
        "dashboard",
        {
            303: Answer(
                "signed in",
                media_type=None,
                headers={"Location": "the jobs page", "Set-Cookie": "the session"},
            )
        },
        (500, 503),
        pages=True,
    ),
    Operation(
        "dashboard_pending",
        "GET",
        f"{_DASHBOARD}/jobs",
        "Live jobs",
        "anonymous",
        "dashboard",
        {200: _PAGE},
        _PAGE_ERRORS,
        query=DashboardJobsQuery,
        session=True,
        pages=True,
    ),
    Operation(
        "dashboard_recurring",
        "GET",
        f"{_DASHBOARD}/recurring",
        "Recurring jobs",
        "anonymous",
        "dashboard",
        {200: _PAGE},
        _PAGE_ERRORS,
        query=DashboardRecurringQuery,
        session=True,
        pages=True,
    ),
    Operation(
        "dashboard_charts",
        "GET",
        f"{_DASHBOARD}/charts",
        "Attempts per minute and their lateness",
        "anonymous",
        "dashboard",
        {200: _PAGE},
        (401, 500, 503),
        session=True,
        pages=True,
    ),
    Operation(
        "dashboard_failed",
        "GET",
        f"{_DASHBOARD}/failed",
        "Failed jobs, with Replay and Clear",
        "anonymous",
        "dashboard",
        {200: _PAGE},
        _PAGE_ERRORS,
        query=DashboardFailedQuery,
        session=True,
        pages=True,
    ),
    Operation(
        "dashboard_clear_failed",
        "POST",
        f"{_DASHBOARD}/failed/clear",
        "Clear the failed list",
        "anonymous",
        "dashboard",
        {303: _SEE_OTHER},
        _FORM_ERRORS,
        body="form",
        session=True,
        pages=True,
    ),
    Operation(
        "dashboard_timeline",
        "GET",
        f"{_DASHBOARD}/jobs/{{transaction_id}}",
        "One job: its attempts and its log",
        "anonymous",
        "dashboard",
        {200: _PAGE},
        (400, 401, 404, 500, 503),
        query=DashboardNotice,
        session=True,
        pages=True,
    ),
    Operation(
        "dashboard_action",
        "POST",
        f"{_DASHBOARD}/jobs/{{transaction_id}}/{{action}}",
        "Delete, pause, resume or replay a job",
        "anonymous",
        "dashboard",
        {303: _SEE_OTHER},
        (400, 401, 403, 404, 409, 500, 503),
        body="form",
        path_enums={"action": ("delete", "pause", "resume", "replay")},
        session=True,
        pages=True,
    ),
    Operation(
        "dashboard_sign_out",
        "POST",
        f"{_DASHBOARD}/sign-out",
        "Sign out (the cookie is cleared)",
        "anonymous",
        "dashboard",
        {
            303: Answer(
                "signed out",
                media_type=None,
                headers={"Location": "the signed-out page", "Set-Cookie": "the cleared session"},
            )
        },
        _FORM_ERRORS,
        body="form",
        session=True,
        pages=True,
    ),
    Operation(
        "dashboard_signed_out",
        "GET",
        f"{_DASHBOARD}/signed-out",
        "The signed-out page",
        "anonymous",
        "dashboard",
        {200: _PAGE},
        (500,),
        pages=True,
    ),
    Operation(
        "dashboard_stylesheet",
        "GET",
        f"{_DASHBOARD}/assets/dashboard.css",
        "The dashboard's style sheet",
        "anonymous",
        "dashboard",
        {200: Answer("the style sheet", media_type="text/css")},
        (),
    ),
)
OPERATIONS = (*API_OPERATIONS, *DASHBOARD_OPERATIONS)

_SECURITY_SCHEMES = {
    "functionKey": {
        "type": "apiKey",
        "in": "header",
        "name": "x-functions-key",
        "description": "a function key (or the host's master key)",
    },
    "functionKeyQuery": {
        "type": "apiKey",
        "in": "query",
        "name": "code",
        "description": "a function key (or the host's master key) as `?code=`",
    },
    "masterKey": {
        "type": "apiKey",
        "in": "header",
        "name": "x-functions-key",
        "description": "the host's master key (admin level); function keys are refused",
    },
    "dashboardSession": {
        "type": "apiKey",
        "in": "cookie",
        "name": SESSION_COOKIE,
        "description": "the dashboard's session, set by GET /api/dashboard (master key)",
    },
    "masterKeyQuery": {
        "type": "apiKey",
        "in": "query",
        "name": "code",
        "description": "the host's master key as `?code=`",
    },
}
_SECURITY: Mapping[Auth, list[dict[str, list[str]]]] = {
    "anonymous": [],
    "function": [{"functionKey": []}, {"functionKeyQuery": []}],
    "admin": [{"masterKey": []}, {"masterKeyQuery": []}],
}


def route_of(operation: Operation) -> str:
    """`METHOD /path` with every path parameter written `{}`, as a route table compares."""
    return f"{operation.method} {_PATH_PARAMETER.sub('{}', operation.path)}"


def openapi_document(server_url: str | None = None) -> dict[str, Any]:
    """The whole document; `server_url` (the app's origin) becomes its only server."""
    document = copy.deepcopy(_document())
    if server_url:
        document["servers"] = [{"url": server_url}]
    return document


@cache
def _document() -> dict[str, Any]:
    schemas = _component_schemas()
    paths: dict[str, dict[str, Any]] = {}
    for operation in OPERATIONS:
        paths.setdefault(operation.path, {})[operation.method.lower()] = _operation(
            operation, schemas
        )
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Durable Scheduler",
            "version": "1",
            "description": "Run an HTTP call or a log entry exactly once, at a given time or on "
            "a cron schedule. Every error of the API is `application/problem+json` (RFC 9457); "
            "the dashboard's pages answer theirs as HTML pages.",
        },
        "jsonSchemaDialect": "https://spec.openapis.org/oas/3.1/dialect/base",
        "paths": paths,
        "components": {"schemas": schemas, "securitySchemes": _SECURITY_SCHEMES},
    }


def _models() -> list[tuple[type[BaseModel], JsonSchemaMode]]:
    inputs: list[type[BaseModel]] = [
        ScheduleRequest,
        ScheduleChange,
        *(prompt.payload_model for prompt in PROMPT_TYPES.values()),
        JobListQuery,
        CancelQuery,
        FailedListQuery,
        JobLogQuery,
        JobStatusQuery,
        PreviewQuery,
        DashboardJobsQuery,
        DashboardFailedQuery,
        DashboardRecurringQuery,
        DashboardNotice,
        DashboardForm,
    ]
    outputs = {a.model for o in OPERATIONS for a in o.answers.values() if a.model is not None}
    outputs.add(Problem)
    return [
        *((model, "validation") for model in inputs),
        *((model, "serialization") for model in sorted(outputs, key=lambda m: m.__name__)),
    ]


def _component_schemas() -> dict[str, Any]:
    _, top = models_json_schema(_models(), ref_template=_REF)
    schemas: dict[str, Any] = top.get("$defs", {})
    base = schemas["ScheduleRequest"]
    for name, prompt in PROMPT_TYPES.items():
        # One create body per prompt type: its payload's own model, chosen by prompt_type.
        variant = copy.deepcopy(base)
        variant["title"] = f"ScheduleRequest ({name})"
        variant["properties"]["prompt_type"] = {"const": name}
        variant["properties"]["payload"] = {"$ref": _REF.format(model=_name(prompt.payload_model))}
        schemas[_variant_name(name)] = variant
        # A job of a batch: the same body, and its own idempotency key.
        item = copy.deepcopy(variant)
        item["title"] = f"BatchItem ({name})"
        item["properties"][ITEM_KEY] = {
            "type": "string",
            "pattern": f"^{IDEMPOTENCY_KEY.pattern}$",
            "description": "what the Idempotency-Key header is to a single create: the same "
            "key and job always mean the same job, so a batch sent again creates no duplicate",
        }
        schemas[_batch_item_name(name)] = item
    schemas["BatchRequest"] = {
        "title": "BatchRequest",
        "type": "object",
        "description": f"Up to {MAX_BATCH_JOBS} jobs and {MAX_BATCH_BYTES} bytes; each job as "
        "the body of POST /api/schedule (at most MAX_REQUEST_BYTES), checked and accepted on "
        "its own",
        "required": ["jobs"],
        "additionalProperties": False,
        "properties": {
            "jobs": {
                "type": "array",
                "minItems": 1,
                "maxItems": MAX_BATCH_JOBS,
                # Any object: each is checked on its own, and one that is not valid is a
                # failed result in the answer, not a refusal of the batch.
                "items": {
                    "type": "object",
                    "description": "a job: one of "
                    + ", ".join(f"`{_batch_item_name(name)}`" for name in PROMPT_TYPES)
                    + " (the body of POST /api/schedule, and its own `idempotency_key`)",
                },
            }
        },
    }
    return schemas


def _batch_item_name(prompt_type: str) -> str:
    return "BatchItem_" + re.sub(r"[^A-Za-z0-9]", "_", prompt_type)


def _name(model: type[BaseModel]) -> str:
    return model.__name__


def _variant_name(prompt_type: str) -> str:
    return "ScheduleRequest_" + re.sub(r"[^A-Za-z0-9]", "_", prompt_type)


def _operation(operation: Operation, schemas: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {
        "operationId": operation.operation_id,
        "summary": operation.summary,
        "tags": [operation.tag],
        "security": [{"dashboardSession": []}] if operation.session else _SECURITY[operation.auth],
        "parameters": [
            *_path_parameters(operation),
            *_query_parameters(operation.query, schemas),
            *(
                {"name": name, "in": "header", "description": text, "schema": schema}
                for name, (text, schema) in operation.headers.items()
            ),
        ],
        "responses": _responses(operation),
    }
    if operation.body is not None:
        media_type = (
            "application/x-www-form-urlencoded" if operation.body == "form" else "application/json"
        )
        body["requestBody"] = {"required": True, "content": {media_type: _body(operation)}}
    return body


def _body(operation: Operation) -> dict[str, Any]:
    if operation.body == "form":
        return {"schema": {"$ref": _REF.format(model=_name(DashboardForm))}}
    if operation.body == "change":
        return {"schema": {"$ref": _REF.format(model=_name(ScheduleChange))}}
    if operation.body == "batch":
        return {"schema": {"$ref": _REF.format(model="BatchRequest")}}
    return {
        "schema": {
            "oneOf": [{"$ref": _REF.format(model=_variant_name(name))} for name in PROMPT_TYPES]
        }
    }


def _path_parameters(operation: Operation) -> list[dict[str, Any]]:
    parameters = []
    for name in re.findall(r"\{(\w+)\}", operation.path):
        if name in operation.path_enums:
            schema: dict[str, Any] = {"type": "string", "enum": list(operation.path_enums[name])}
            text = "the asset's file name"
        else:
            schema = {"type": "string", "pattern": f"^{TRANSACTION_ID.pattern}$"}
            text = "the job's transaction id (a lower-case UUID)"
        parameters.append(
            {"name": name, "in": "path", "required": True, "description": text, "schema": schema}
        )
    return parameters


def _query_parameters(
    query: type[BaseModel] | None, schemas: dict[str, Any]
) -> list[dict[str, Any]]:
    if query is None:
        return []
    model = schemas[_name(query)]
    parameters = []
    for name, schema in model["properties"].items():
        schema = _without_null(schema)
        parameter: dict[str, Any] = {
            "name": name,
            "in": "query",
            "required": name in model.get("required", ()),
            "schema": schema,
        }
        if "description" in schema:
            parameter["description"] = schema["description"]
        if not parameter["required"]:
            # The handlers read `?name=` as the parameter left out (http_io's readers).
            parameter["allowEmptyValue"] = True
        parameters.append(parameter)
    return parameters


def _without_null(schema: dict[str, Any]) -> dict[str, Any]:
    """An optional query parameter is one left out: it has no null form."""
    schema = {k: v for k, v in schema.items() if k not in ("title", "default")}
    options = [o for o in schema.pop("anyOf", []) if o != {"type": "null"}]
    if len(options) == 1:
        schema.update(options[0])
    elif options:
        schema["anyOf"] = options
    return schema


def _responses(operation: Operation) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    for status, answer in operation.answers.items():
        response: dict[str, Any] = {"description": answer.description}
        schema = {"$ref": _REF.format(model=_name(answer.model))} if answer.model else {}
        if answer.media_type is not None:
            response["content"] = {answer.media_type: {"schema": schema}}
        if answer.headers:
            response["headers"] = {
                name: {"description": text, "schema": {"type": "string"}}
                for name, text in answer.headers.items()
            }
        if answer.links:
            response["links"] = {
                target: {
                    "operationId": target,
                    "parameters": {"transaction_id": "$response.body#/transaction_id"},
                }
                for target in answer.links
            }
        responses[str(status)] = response
    problem_ref = {"$ref": _REF.format(model=_name(Problem))}
    for status in operation.problems:
        content = (
            {"text/html": {"schema": {"type": "string"}}}
            if operation.pages
            else {"application/problem+json": {"schema": problem_ref}}
        )
        responses[str(status)] = {"description": PROBLEM_STATUSES[status], "content": content}
    if operation.auth != "anonymous":
        # Answered by the Functions host before the app runs: no body of ours.
        responses["401"] = {"description": "no key, or a key of too low a level"}
    return responses
