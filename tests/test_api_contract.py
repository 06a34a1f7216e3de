"""Schemathesis against the running app over real HTTP: no server error, and every answer
is what the OpenAPI document says (status, content type, body schema, headers).

The app runs on a loopback socket (local_durable_host's AppServer, keys enforced) over the
durable stand-in and Azurite; every request carries the master key (and the dashboard's pages a
signed-in session, unless the case leaves the cookie out). Each operation gets generated
requests, valid and invalid (an invalid one must be refused with a 4xx), then the stateful
phase follows the document's links (create -> status, log, pause, resume, PATCH, delete).

Count the generated cases with `--hypothesis-show-statistics` (docs/api-reference.md).
"""

import copy
import os
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import hypothesis
import pytest
import schemathesis
from schemathesis import checks
from schemathesis.config import SchemathesisConfig

from api.openapi import openapi_document
from local_durable_host.app_server import AppServer
from scheduling.models import ScheduleRequest
from tests.support.scheduler import Scheduler
from tests.support.served_app import TEST_KEYS, served_app

CHECKED = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.response_headers_conformance,
    checks.negative_data_rejection,
]
# Enough for every run of the suite; a deeper run: SCHEDULER_CONTRACT_EXAMPLES=500.
EXAMPLES_PER_OPERATION = int(os.environ.get("SCHEDULER_CONTRACT_EXAMPLES", "40"))
STATEFUL_SCENARIOS = max(EXAMPLES_PER_OPERATION * 3 // 4, 1)
FOLLOWED = {
    "GET /api/schedule/{transaction_id}/status",
    "GET /api/schedule/{transaction_id}/logs",
    "DELETE /api/schedule/{transaction_id}",
    "PATCH /api/schedule/{transaction_id}",
    "POST /api/schedule/{transaction_id}/pause",
    "POST /api/schedule/{transaction_id}/resume",
}
KEY = {"x-functions-key": TEST_KEYS.master_key}
# The document the app serves (tests/test_openapi.py checks that it serves this one). Not
# schemathesis.pytest.from_fixture: its lazy loading needs pytest internals pytest 9 dropped.
# A request the document refuses may also be refused for its size (a batch of more jobs
# than maxItems is usually more than the body limit too): 413 is a refusal as well.
REFUSALS = SchemathesisConfig.from_dict(
    {
        "checks": {
            "negative_data_rejection": {
                "expected-statuses": [
                    *("400", "401", "403", "404", "405", "406", "409", "413"),
                    *("415", "422", "428", "429", "5xx"),
                ]
            }
        }
    }
)
schema = schemathesis.openapi.from_dict(openapi_document(), config=REFUSALS)
# The dashboard's session cookie, when the app has a dashboard.
SESSION_COOKIE: str | None = (
    openapi_document()["components"]["securitySchemes"].get("dashboardSession", {}).get("name")
)


@pytest.fixture
def served(scheduler: Scheduler) -> Iterator[AppServer]:
    with served_app(scheduler) as running:
        yield running


@pytest.fixture
def session_token(served: AppServer) -> str | None:
    """A dashboard session (when the app has a dashboard), so that its pages render with the
    generated input instead of all answering 401."""
    if SESSION_COOKIE is None:
        return None
    reply = httpx.get(f"{served.base_url}/api/dashboard", headers=KEY)
    assert reply.status_code == 303, reply.text
    return reply.cookies[SESSION_COOKIE]


def with_session(case: schemathesis.Case[Any], token: str | None) -> None:
    """Where the case sends a session cookie, the real one; a case that leaves it out (to
    see it refused) keeps it out."""
    if token is not None and SESSION_COOKIE and case.cookies and SESSION_COOKIE in case.cookies:
        case.cookies[SESSION_COOKIE] = token


@schema.parametrize()
@hypothesis.settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    suppress_health_check=list(hypothesis.HealthCheck),
)
def test_every_operation_conforms(
    served: AppServer, session_token: str | None, case: schemathesis.Case[Any]
) -> None:
    with_session(case, session_token)
    case.call_and_validate(base_url=served.base_url, headers=KEY, checks=CHECKED)


def creating_schema() -> Any:
    """The document with create's body narrowed to its example (a job that is accepted at
    any time): random bodies are nearly all refused, and then no link is ever followed."""
    document = copy.deepcopy(openapi_document())
    example = ScheduleRequest.model_json_schema()["examples"][0]
    create = document["paths"]["/api/schedule"]["post"]
    create["requestBody"]["content"]["application/json"]["schema"] = {"const": example}
    return schemathesis.openapi.from_dict(document)


def test_stateful_links_conform(served: AppServer) -> None:
    """Create, then follow the links from its answer (status, log, PATCH, pause, resume,
    delete) with generated inputs; the same checks on every step."""

    answers: Counter[tuple[str, int]] = Counter()

    class Workflow(creating_schema().as_state_machine()):  # type: ignore[misc]
        def get_call_kwargs(self, case: schemathesis.Case[Any]) -> dict[str, Any]:
            return {"base_url": served.base_url, "headers": KEY}

        def validate_response(
            self, response: Any, case: schemathesis.Case[Any], **kwargs: Any
        ) -> None:
            answers[case.operation.label, response.status_code] += 1
            case.validate_response(response, checks=CHECKED)

    Workflow.run(
        settings=hypothesis.settings(
            max_examples=STATEFUL_SCENARIOS,
            stateful_step_count=6,
            deadline=None,
            suppress_health_check=list(hypothesis.HealthCheck),
        )
    )
    created = answers["POST /api/schedule", 202]
    followed = sum(
        count
        for (operation, status), count in answers.items()
        if operation in FOLLOWED and status < 400
    )
    print(
        f"stateful: {sum(answers.values())} requests, {created} jobs created, "
        f"{followed} successful follow-ups"
    )
    assert created > 0, answers
    assert followed > 0, answers
