"""The OpenAPI document covers every route the app registers, and the reference page is
served by the app itself (no CDN)."""

import json
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import get_args

import httpx
import pytest
import schemathesis
from pytest_httpserver import HTTPServer

from api.job_views import JobStatus
from api.openapi import OPERATIONS, openapi_document, route_of
from api.operations import PROBLEM_STATUSES, REFERENCE_ASSETS
from api.queries import JobListQuery
from api.responses import FailedPage, JobPage
from function_app import app
from local_durable_host.app_server import AppServer
from local_durable_host.worker_calls import index_functions
from scheduling.job_record import LIVE_STATES
from tests.support.layout import APP_PACKAGES
from tests.support.scheduler import Scheduler
from tests.support.served_app import served_app

REPO_ROOT = Path(__file__).resolve().parents[1]
NO_SCOPES: list[str] = []
EXPECTED_SECURITY = {
    "anonymous": [],
    "function": [{"functionKey": NO_SCOPES}, {"functionKeyQuery": NO_SCOPES}],
    "admin": [{"masterKey": NO_SCOPES}, {"masterKeyQuery": NO_SCOPES}],
}
_AUTH = {"ANONYMOUS": "anonymous", "FUNCTION": "function", "ADMIN": "admin"}


def registered_routes() -> dict[str, tuple[str, str]]:
    """`METHOD /api/route` of every HTTP function: (function name, auth level)."""
    routes = {}
    for function in index_functions(app):
        for binding in json.loads(function.get_function_json())["bindings"]:
            if binding["type"] != "httpTrigger":
                continue
            path = re.sub(r"\{\w+\}", "{}", f"/api/{binding['route']}")
            for method in binding["methods"]:
                routes[f"{method.upper()} {path}"] = (
                    str(function.get_function_name()),
                    _AUTH[binding["authLevel"].upper()],
                )
    return routes


def test_every_registered_route_is_documented_and_nothing_else() -> None:
    documented = {route_of(op): (op.operation_id, op.auth) for op in OPERATIONS}
    assert documented == registered_routes()


def test_the_document_is_openapi_3_1_that_schemathesis_can_read() -> None:
    document = openapi_document()
    assert document["openapi"] == "3.1.0"
    schema = schemathesis.openapi.from_dict(document)
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    assert {f"{op.method.upper()} {op.path}" for op in operations} == {
        f"{op.method} {op.path}" for op in OPERATIONS
    }


def test_create_body_is_one_schema_per_prompt_type_with_its_payload_model() -> None:
    document = openapi_document()
    body = document["paths"]["/api/schedule"]["post"]["requestBody"]["content"]
    variants = [
        ref["$ref"].rsplit("/", 1)[1] for ref in body["application/json"]["schema"]["oneOf"]
    ]
    schemas = document["components"]["schemas"]
    payloads = {
        schemas[name]["properties"]["prompt_type"]["const"]: schemas[name]["properties"]["payload"]
        for name in variants
    }
    assert payloads == {
        "http.call": {"$ref": "#/components/schemas/HttpCallPayload"},
        "log.append": {"$ref": "#/components/schemas/LogAppendPayload"},
    }
    # The payload models' own constraints, not a copy of them.
    assert schemas["LogAppendPayload"]["properties"]["message"]["maxLength"] == 8192


def test_every_problem_status_the_code_raises_is_documented() -> None:
    raised = set()
    for source in (s for package in APP_PACKAGES for s in REPO_ROOT.glob(f"{package}/**/*.py")):
        text = source.read_text()
        raised |= {int(s) for s in re.findall(r"\bproblem\(\s*(\d{3})\b", text)}
        raised |= {int(s) for s in re.findall(r"\b_problem\(\s*(\d{3})\b", text)}
    assert raised, "the scan found no problem() call: has the helper been renamed?"
    assert raised <= set(PROBLEM_STATUSES)
    documented = {
        int(s)
        for op in openapi_document()["paths"].values()
        for o in op.values()
        for s in o["responses"]
        if int(s) >= 400
    }
    assert raised <= documented


def test_keyed_routes_declare_their_key_and_anonymous_ones_none() -> None:
    document = openapi_document()
    schemes = document["components"]["securitySchemes"]
    assert schemes["functionKey"] == {
        **schemes["functionKey"],
        "in": "header",
        "name": "x-functions-key",
    }
    assert schemes["functionKeyQuery"]["in"] == "query"
    assert schemes["functionKeyQuery"]["name"] == "code"
    for op in OPERATIONS:
        security = document["paths"][op.path][op.method.lower()]["security"]
        # A dashboard page is anonymous to the host: the app checks its session cookie.
        expected = [{"dashboardSession": NO_SCOPES}] if op.session else EXPECTED_SECURITY[op.auth]
        assert security == expected, op.operation_id


@pytest.fixture
def served(scheduler: Scheduler) -> Iterator[AppServer]:
    with served_app(scheduler) as running:
        yield running


def test_the_app_serves_its_document_with_its_own_origin(served: AppServer) -> None:
    reply = httpx.get(f"{served.base_url}/api/openapi.json")
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("application/json")
    document = reply.json()
    assert document["servers"] == [{"url": served.base_url}]
    assert document["paths"] == openapi_document()["paths"]


def test_the_reference_page_loads_its_assets_from_the_app(served: AppServer) -> None:
    page = httpx.get(f"{served.base_url}/api/docs")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert sorted(sources) == [
        "docs/reference.js",
        "docs/swagger-ui-bundle.js",
        "docs/swagger-ui.css",
    ]
    start = httpx.get(f"{served.base_url}/api/docs/reference.js")
    assert start.headers["content-type"].startswith("text/javascript")
    assert b'url: "openapi.json"' in start.content
    # Relative to /api/docs, as a browser resolves them.
    script = httpx.get(f"{served.base_url}/api/docs/swagger-ui-bundle.js")
    style = httpx.get(f"{served.base_url}/api/docs/swagger-ui.css")
    assert script.status_code == style.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    assert style.headers["content-type"].startswith("text/css")
    assert b"SwaggerUIBundle" in script.content
    assert b".swagger-ui" in style.content


def test_the_reference_page_and_its_assets_say_what_the_browser_may_do(
    served: AppServer,
) -> None:
    page = httpx.get(f"{served.base_url}/api/docs")
    policy = [part.strip() for part in page.headers["content-security-policy"].split(";")]
    assert "default-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    assert page.headers["x-frame-options"] == "DENY"
    # No script on the page itself: the policy allows none inline.
    assert "<script>" not in page.text
    for name in REFERENCE_ASSETS:
        asset = httpx.get(f"{served.base_url}/api/docs/{name}")
        assert asset.headers["x-content-type-options"] == "nosniff"
    assert page.headers["x-content-type-options"] == "nosniff"


def test_an_unknown_asset_is_a_404_problem_and_no_path_is_followed(served: AppServer) -> None:
    for name in ("index.html", "..%2F..%2Ffunction_app.py", "swagger-ui.css.map"):
        reply = httpx.get(f"{served.base_url}/api/docs/{name}")
        assert reply.status_code == 404
        assert reply.headers["content-type"] == "application/problem+json"


def test_the_listing_state_filter_names_exactly_the_live_states() -> None:
    state = JobListQuery.model_fields["state"].annotation
    assert set(get_args(get_args(state)[0])) == LIVE_STATES


async def test_views_of_real_jobs_are_what_their_documented_models_say(
    scheduler: Scheduler, httpserver: HTTPServer
) -> None:
    """The listings are not validated per request (a drifted view must not fail a caller), so
    this is where a field added to a view without its model is caught: every kind of job,
    through every view, against the models the document is generated from (extra fields
    forbidden)."""
    httpserver.expect_request("/broken").respond_with_data("no", status=400)
    due = scheduler.now() + timedelta(minutes=5)
    failing = await scheduler.accepted("http.call", {"url": httpserver.url_for("/broken")}, at=due)
    waiting = await scheduler.accepted("log.append", {"message": "later"})
    recurring = (
        await scheduler.api.post(
            "/api/schedule",
            {"cron": "0 9 * * *", "prompt_type": "log.append", "payload": {"message": "daily"}},
        )
    ).json()["transaction_id"]
    paused = (
        await scheduler.api.post(
            "/api/schedule",
            {"cron": "0 10 * * *", "prompt_type": "log.append", "payload": {"message": "held"}},
        )
    ).json()["transaction_id"]
    assert (await scheduler.api.post(f"/api/schedule/{paused}/pause")).status == 200
    scheduler.host.advance_to(due + timedelta(seconds=1))

    for transaction_id in (failing, waiting, recurring, paused):
        status = await scheduler.api.get(f"/api/schedule/{transaction_id}/status?history=true")
        assert status.status == 200
        JobStatus.model_validate(status.json())
    listing = (await scheduler.api.get("/api/schedule")).json()
    assert {job.transaction_id for job in JobPage.model_validate(listing).jobs} == {
        waiting,
        recurring,
        paused,
    }
    failed = FailedPage.model_validate((await scheduler.api.get("/api/failed")).json())
    assert [job.transaction_id for job in failed.jobs] == [failing]
    [view] = failed.jobs
    assert isinstance(view, JobStatus)
    assert view.attempt_history
