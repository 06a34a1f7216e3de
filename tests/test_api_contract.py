"""Schemathesis against the running app over real HTTP: no server error, and every answer
is what the OpenAPI document says (status, content type, body schema, headers).

The app runs on a loopback socket (tests/support/loopback_app.py) over the durable stand-in
and Azurite. Each operation gets generated
requests, valid and invalid (an invalid one must be refused with a 4xx), then the stateful
phase follows the document's links (create -> status, log, pause, resume, PATCH, delete).

Count the generated cases with `--hypothesis-show-statistics` (docs/testing.md).
"""

import copy
from collections.abc import Iterator
from typing import Any

import hypothesis
import pytest
import schemathesis
from schemathesis import checks

from scheduling.models import ScheduleRequest
from scheduling.openapi import openapi_document
from tests.support.loopback_app import LoopbackApp, serving
from tests.support.scheduler import Scheduler

CHECKED = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.response_headers_conformance,
    checks.negative_data_rejection,
]
EXAMPLES_PER_OPERATION = 40
STATEFUL_SCENARIOS = 30
FOLLOWED = {"job_status", "job_log", "delete_job", "reschedule_job", "pause_job", "resume_job"}


@pytest.fixture
def served(scheduler: Scheduler) -> Iterator[LoopbackApp]:
    with serving(scheduler.host.client_binding()) as running:
        yield running


# The document the app serves (tests/test_openapi.py checks that it serves this one). Not
# schemathesis.pytest.from_fixture: its lazy loading needs pytest internals pytest 9 dropped.
schema = schemathesis.openapi.from_dict(openapi_document())


@schema.parametrize()
@hypothesis.settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    suppress_health_check=list(hypothesis.HealthCheck),
)
def test_every_operation_conforms(served: LoopbackApp, case: schemathesis.Case[Any]) -> None:
    case.call_and_validate(base_url=served.url, checks=CHECKED)


def creating_schema() -> Any:
    """The document with create's body narrowed to its example (a job that is accepted at
    any time): random bodies are nearly all refused, and then no link is ever followed."""
    document = copy.deepcopy(openapi_document())
    example = ScheduleRequest.model_json_schema()["examples"][0]
    create = document["paths"]["/api/schedule"]["post"]
    create["requestBody"]["content"]["application/json"]["schema"] = {"const": example}
    return schemathesis.openapi.from_dict(document)


def test_stateful_links_conform(served: LoopbackApp) -> None:
    """Create, then follow the links from its answer (status, log, PATCH, pause, resume,
    delete) with generated inputs; the same checks on every step."""

    class Workflow(creating_schema().as_state_machine()):  # type: ignore[misc]
        def get_call_kwargs(self, case: schemathesis.Case[Any]) -> dict[str, Any]:
            return {"base_url": served.url}

        def validate_response(
            self, response: Any, case: schemathesis.Case[Any], **kwargs: Any
        ) -> None:
            case.validate_response(response, checks=CHECKED)

    Workflow.run(
        settings=hypothesis.settings(
            max_examples=STATEFUL_SCENARIOS,
            stateful_step_count=6,
            deadline=None,
            suppress_health_check=list(hypothesis.HealthCheck),
        )
    )
    created = served.answers["create_job", 202]
    followed = sum(
        count
        for (function, status), count in served.answers.items()
        if function in FOLLOWED and status < 400
    )
    print(
        f"stateful: {sum(served.answers.values())} requests, {created} jobs created, "
        f"{followed} successful follow-ups"
    )
    assert created > 0, served.answers
    assert followed > 0, served.answers
