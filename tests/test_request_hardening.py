"""What the security review found the API accepted, refused now with a 422 that says why."""

from typing import Any

import pytest

from tests.support.app_client import Reply
from tests.support.scheduler import Scheduler


def validation_errors(reply: Reply) -> list[dict[str, Any]]:
    """The field errors of a 422 validation problem (asserting that it is one)."""
    assert reply.status == 422, reply.body
    assert reply.content_type == "application/problem+json"
    problem: dict[str, Any] = reply.json()
    assert problem["type"] == "urn:durable-scheduler:problem:validation"
    errors: list[dict[str, Any]] = problem["errors"]
    return errors


async def test_a_database_port_is_refused_when_the_job_is_created(scheduler: Scheduler) -> None:
    reply = await scheduler.schedule("http.call", {"url": "http://cache.example.com:6379/"})
    [error] = validation_errors(reply)
    assert error["loc"] == ["payload", "url"]
    assert "port 6379 (Redis) is not allowed by HTTP_CALL_ALLOWED_PORTS" in error["msg"]
    assert scheduler.orchestrations_started() == []


async def test_a_mail_port_is_refused_when_the_job_is_created(scheduler: Scheduler) -> None:
    reply = await scheduler.schedule("http.call", {"url": "http://mail.example.com:25/"})
    [error] = validation_errors(reply)
    assert "port 25 is not allowed by HTTP_CALL_ALLOWED_PORTS" in error["msg"]


@pytest.mark.parametrize(
    "name", ["x-scheduler-transaction-id", "X-SCHEDULER-TRANSACTION-ID", "X-Scheduler-Replay"]
)
async def test_a_payload_cannot_set_an_x_scheduler_header(scheduler: Scheduler, name: str) -> None:
    payload = {"url": "http://receiver.example.com/hook", "headers": {name: "forged"}}
    [error] = validation_errors(await scheduler.schedule("http.call", payload))
    assert error["loc"] == ["payload", "headers"]
    assert "reserved" in error["msg"]


async def test_a_header_name_ending_in_a_newline_is_refused(scheduler: Scheduler) -> None:
    payload = {"url": "http://receiver.example.com/hook", "headers": {"Host\n": "internal"}}
    [error] = validation_errors(await scheduler.schedule("http.call", payload))
    assert error["loc"] == ["payload", "headers"]
    assert "not a valid HTTP token" in error["msg"]
