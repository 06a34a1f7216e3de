"""The OpenAPI 3.1 document of the HTTP API, generated from the pydantic models.

The models (requests, queries, answers, problems) are the only description of a body;
`api.operations` and `api.dashboard_operations` say which route takes and answers which, and
who may call it. A test compares those routes with the routes the app registers, so a new
route cannot go undocumented.
"""

import copy
import re
from collections.abc import Mapping
from functools import cache
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from api.batch import ITEM_KEY, MAX_BATCH_BYTES, MAX_BATCH_JOBS
from api.dashboard_operations import DASHBOARD_OPERATIONS
from api.operations import API_OPERATIONS, PROBLEM_STATUSES, Auth, Operation
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
from dashboard.sessions import COOKIE_NAME as SESSION_COOKIE
from delivery.prompts import PROMPT_TYPES
from scheduling.idempotency import IDEMPOTENCY_KEY
from scheduling.models import TRANSACTION_ID, ScheduleChange, ScheduleRequest

_REF = "#/components/schemas/{model}"
_PATH_PARAMETER = re.compile(r"\{\w+\}")
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
