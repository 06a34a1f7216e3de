"""Outcome callbacks through the whole app: real loopback receivers, signatures checked with
the third-party `standardwebhooks` library, the job's own outcome untouched by them."""

import base64
import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from standardwebhooks.webhooks import Webhook
from werkzeug import Request, Response

from blueprints import dependencies
from scheduling.timing import format_utc
from storage.job_store import TableJobStore
from tests.support.scheduler import START, Scheduler, running_scheduler
from tests.support.services import AzuriteService, unreachable_table_endpoint
from tests.test_sealed_secrets import durable_state, table_rows

# A test secret made for this file only.
SIGNING_SECRET = "whsec_" + base64.b64encode(bytes(range(40, 72))).decode()
CALLBACK_TOKEN = "cb-S3cret-token"


@pytest.fixture
def signed_scheduler(azurite: AzuriteService) -> Iterator[Scheduler]:
    with running_scheduler(azurite, webhook_signing_secrets=SIGNING_SECRET) as running:
        yield running


async def schedule_with_callbacks(
    scheduler: Scheduler,
    payload: dict[str, Any],
    callbacks: dict[str, str],
    retry: dict[str, Any] | None = None,
) -> str:
    body: dict[str, Any] = {
        "exec_at": format_utc(START + timedelta(minutes=5)),
        "prompt_type": "http.call",
        "payload": payload,
        "callbacks": callbacks,
    }
    if retry is not None:
        body["retry"] = retry
    reply = await scheduler.api.post("/api/schedule", body)
    assert reply.status == 202, reply.json()
    transaction_id: str = reply.json()["transaction_id"]
    return transaction_id


def requests_to(httpserver: HTTPServer, path: str) -> list[Request]:
    return [request for request, _ in httpserver.log if request.path == path]


def verified(request: Request) -> Any:
    """The callback's JSON body, once the third-party library has verified its signature."""
    return Webhook(SIGNING_SECRET).verify(request.get_data(), dict(request.headers))


async def status_of(scheduler: Scheduler, transaction_id: str) -> dict[str, Any]:
    reply = await scheduler.api.get(f"/api/schedule/{transaction_id}/status")
    assert reply.status == 200, reply.body
    status: dict[str, Any] = reply.json()
    return status


async def log_of(scheduler: Scheduler, transaction_id: str) -> list[dict[str, Any]]:
    reply = await scheduler.api.get(f"/api/schedule/{transaction_id}/logs")
    entries: list[dict[str, Any]] = reply.json()["entries"]
    return entries


async def test_a_success_posts_a_signed_summary_to_on_success_only(
    signed_scheduler: Scheduler, httpserver: HTTPServer
) -> None:
    httpserver.expect_request("/job").respond_with_data("done")
    httpserver.expect_request("/succeeded").respond_with_data("thanks")
    httpserver.expect_request("/failed").respond_with_data("thanks")
    transaction_id = await schedule_with_callbacks(
        signed_scheduler,
        {"url": httpserver.url_for("/job"), "json": {"n": 1}},
        {
            "on_success": httpserver.url_for(f"/succeeded?token={CALLBACK_TOKEN}"),
            "on_failure": httpserver.url_for("/failed"),
        },
    )

    signed_scheduler.host.advance_to(START + timedelta(hours=1))

    [job_request] = requests_to(httpserver, "/job")
    [callback] = requests_to(httpserver, "/succeeded")
    assert requests_to(httpserver, "/failed") == []
    assert callback.method == "POST"
    assert callback.args["token"] == CALLBACK_TOKEN  # the receiver gets its URL whole
    summary = verified(callback)
    assert summary["type"] == "job.succeeded"
    assert summary["data"] | {"outcome": None} == {
        "transaction_id": transaction_id,
        "prompt_type": "http.call",
        "destination": f"POST http://{httpserver.host}:{httpserver.port}",
        "due_at": format_utc(START + timedelta(minutes=5)),
        "state": "succeeded",
        "attempts": 1,
        "outcome": None,
        "next_fire_at": None,
    }
    assert summary["data"]["outcome"]["status_code"] == 200
    # The callback is its own message, not a copy of the job's request.
    assert callback.headers["Webhook-Id"] != job_request.headers["Webhook-Id"]
    status = await status_of(signed_scheduler, transaction_id)
    assert status["state"] == "succeeded"
    assert CALLBACK_TOKEN not in json.dumps(status)
    assert (
        status["callbacks"]["on_success"]
        == f"http://{httpserver.host}:{httpserver.port}/[redacted]"
    )
    entries = await log_of(signed_scheduler, transaction_id)
    assert entries[-1]["kind"] == "callback"
    # Neither the callback's token nor the signing secret is anywhere the app keeps state.
    kept = "\n".join(
        [
            *durable_state(signed_scheduler),
            *table_rows(signed_scheduler),
            json.dumps(entries),
            json.dumps(status),
        ]
    )
    assert CALLBACK_TOKEN not in kept
    assert SIGNING_SECRET.removeprefix("whsec_") not in kept


async def test_a_failure_after_its_retries_posts_to_on_failure(
    signed_scheduler: Scheduler, httpserver: HTTPServer
) -> None:
    httpserver.expect_request("/job").respond_with_data("down", status=503)
    httpserver.expect_request("/failed").respond_with_data("noted")
    transaction_id = await schedule_with_callbacks(
        signed_scheduler,
        {"url": httpserver.url_for("/job")},
        {"on_failure": httpserver.url_for("/failed")},
        retry={"max_attempts": 3, "initial_delay_seconds": 30},
    )

    signed_scheduler.host.advance_to(START + timedelta(hours=1))

    assert len(requests_to(httpserver, "/job")) == 3
    [callback] = requests_to(httpserver, "/failed")  # once, after the last attempt
    summary = verified(callback)
    assert summary["type"] == "job.failed"
    assert summary["data"]["state"] == "failed"
    assert summary["data"]["attempts"] == 3
    assert summary["data"]["outcome"]["status_code"] == 503
    assert summary["data"]["outcome"]["error"] == "target answered 503 SERVICE UNAVAILABLE"
    assert (await status_of(signed_scheduler, transaction_id))["state"] == "failed"


async def test_a_failing_callback_is_retried_as_one_message(
    signed_scheduler: Scheduler, httpserver: HTTPServer
) -> None:
    answers = iter([500, 503, 200])

    def flaky(request: Request) -> Response:
        return Response("", status=next(answers))

    httpserver.expect_request("/job").respond_with_data("done")
    httpserver.expect_request("/succeeded").respond_with_handler(flaky)
    await schedule_with_callbacks(
        signed_scheduler,
        {"url": httpserver.url_for("/job")},
        {"on_success": httpserver.url_for("/succeeded")},
        retry={"max_attempts": 5, "initial_delay_seconds": 30},
    )

    signed_scheduler.host.advance_to(START + timedelta(hours=1))

    deliveries = requests_to(httpserver, "/succeeded")
    assert len(deliveries) == 3
    assert len({request.headers["Webhook-Id"] for request in deliveries}) == 1
    for request in deliveries:
        assert verified(request)["type"] == "job.succeeded"


async def test_a_callback_receiver_that_is_down_does_not_change_the_jobs_outcome(
    signed_scheduler: Scheduler, httpserver: HTTPServer
) -> None:
    httpserver.expect_request("/job").respond_with_data("done")
    # Port 9 (discard): nothing listens there in tests; the connection is refused.
    transaction_id = await schedule_with_callbacks(
        signed_scheduler,
        {"url": httpserver.url_for("/job")},
        {"on_success": f"http://127.0.0.1:9/succeeded?token={CALLBACK_TOKEN}"},
        retry={"max_attempts": 3, "initial_delay_seconds": 30},
    )

    signed_scheduler.host.advance_to(START + timedelta(hours=1))

    status = await status_of(signed_scheduler, transaction_id)
    assert status["state"] == "succeeded"
    assert status["last_outcome"]["ok"]
    callbacks = [
        entry
        for entry in await log_of(signed_scheduler, transaction_id)
        if entry["kind"] == "callback"
    ]
    assert [(entry["fields"]["attempt"], entry["fields"]["ok"]) for entry in callbacks] == [
        (1, False),
        (2, False),
        (3, False),
    ]
    assert callbacks[-1]["message"].endswith("; giving up")
    assert callbacks[-1]["level"] == "warning"
    assert CALLBACK_TOKEN not in json.dumps(callbacks)
    # The orchestration finished: nothing is left waiting on the callback.
    orchestration = signed_scheduler.orchestration(transaction_id)
    assert orchestration.runtime_status == "Completed"


async def test_a_callback_due_during_a_store_outage_goes_out_once_the_store_is_back(
    signed_scheduler: Scheduler, httpserver: HTTPServer
) -> None:
    httpserver.expect_request("/job").respond_with_data("done")
    httpserver.expect_request("/succeeded").respond_with_data("ok")
    transaction_id = await schedule_with_callbacks(
        signed_scheduler,
        {"url": httpserver.url_for("/job")},
        {"on_success": httpserver.url_for("/succeeded")},
    )
    host = signed_scheduler.host
    host.run()
    host.set_clock(START + timedelta(minutes=5))
    while not any(call.name == "execute_prompt" for call in host.activity_calls):
        assert host.step()
    dead = TableJobStore.open(unreachable_table_endpoint(), "jobs")
    with dependencies.overridden(job_store=lambda _settings: dead):
        host.advance_to(START + timedelta(minutes=15))  # the store is down for ten minutes
        assert requests_to(httpserver, "/succeeded") == []
    dead.close()
    assert any(
        call.name == "deliver_callback" and call.error_message for call in host.activity_calls
    )

    host.advance_to(START + timedelta(hours=2))

    [callback] = requests_to(httpserver, "/succeeded")
    assert verified(callback)["data"]["state"] == "succeeded"
    assert (await status_of(signed_scheduler, transaction_id))["state"] == "succeeded"


async def test_each_run_of_a_recurring_job_gets_its_own_callback(
    signed_scheduler: Scheduler, httpserver: HTTPServer
) -> None:
    httpserver.expect_request("/job").respond_with_data("done")
    httpserver.expect_request("/succeeded").respond_with_data("ok")
    reply = await signed_scheduler.api.post(
        "/api/schedule",
        {
            "cron": "0 * * * *",
            "max_runs": 2,
            "prompt_type": "http.call",
            "payload": {"url": httpserver.url_for("/job")},
            "callbacks": {"on_success": httpserver.url_for("/succeeded")},
        },
    )
    assert reply.status == 202, reply.json()

    signed_scheduler.host.advance_to(START + timedelta(hours=3))

    deliveries = requests_to(httpserver, "/succeeded")
    summaries = [verified(request) for request in deliveries]
    assert [summary["data"]["due_at"] for summary in summaries] == [
        format_utc(START + timedelta(hours=1)),
        format_utc(START + timedelta(hours=2)),
    ]
    assert summaries[0]["data"]["next_fire_at"] == format_utc(START + timedelta(hours=2))
    assert summaries[1]["data"]["next_fire_at"] is None
    assert len({request.headers["Webhook-Id"] for request in deliveries}) == 2


@pytest.mark.parametrize(
    ("callbacks", "loc"),
    [
        ({"on_failure": "http://10.0.0.1/hook"}, ["callbacks", "on_failure"]),
        ({"on_success": "ftp://hooks.example.com/x"}, ["callbacks", "on_success"]),
        ({"on_success": "http://169.254.169.254/latest"}, ["callbacks", "on_success"]),
        ({}, ["callbacks"]),
        ({"on_done": "https://hooks.example.com/"}, ["callbacks", "on_done"]),
    ],
)
async def test_a_callback_url_is_checked_like_an_http_call_target(
    scheduler: Scheduler, httpserver: HTTPServer, callbacks: dict[str, str], loc: list[str]
) -> None:
    reply = await scheduler.api.post(
        "/api/schedule",
        {
            "exec_at": format_utc(START + timedelta(minutes=5)),
            "prompt_type": "http.call",
            "payload": {"url": httpserver.url_for("/job")},
            "callbacks": callbacks,
        },
    )
    assert reply.status == 422, reply.body
    assert loc in [error["loc"] for error in reply.json()["errors"]]
    assert scheduler.orchestrations_started() == []
