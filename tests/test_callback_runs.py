"""Outcome callbacks against what happens to the job meanwhile: a replay, a store outage, the
next run of a recurring job. Real loopback receivers, signatures checked with the third-party
`standardwebhooks` library, the whole app on the virtual clock."""

import base64
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from standardwebhooks.webhooks import Webhook
from werkzeug import Request, Response

from blueprints import dependencies
from scheduling.timing import format_utc
from storage.job_log.entries import make_entry_id
from storage.job_log.table_store import TableJobLog
from storage.job_store import TableJobStore
from tests.support.scheduler import START, Scheduler, running_scheduler
from tests.support.services import AzuriteService, unreachable_table_endpoint

# A test secret made for this file only.
SIGNING_SECRET = "whsec_" + base64.b64encode(bytes(range(80, 112))).decode()


@pytest.fixture
def signed(azurite: AzuriteService) -> Iterator[Scheduler]:
    with running_scheduler(azurite, webhook_signing_secrets=SIGNING_SECRET) as running:
        yield running


class Receiver:
    """Answers each request with the next status of `statuses` (the last one from then on),
    and notes the virtual time each request came at."""

    def __init__(self, scheduler: Scheduler, httpserver: HTTPServer, path: str, *statuses: int):
        self.scheduler, self.statuses = scheduler, list(statuses)
        self.received: list[tuple[datetime, Request]] = []
        httpserver.expect_request(path).respond_with_handler(self._answer)

    def _answer(self, request: Request) -> Response:
        self.received.append((self.scheduler.now(), request))
        status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        return Response("", status=status)

    @property
    def requests(self) -> list[Request]:
        return [request for _, request in self.received]


def verified(request: Request) -> Any:
    """The JSON body, once the third-party library has verified its signature."""
    return Webhook(SIGNING_SECRET).verify(request.get_data(), dict(request.headers))


async def accepted(scheduler: Scheduler, body: dict[str, Any]) -> str:
    reply = await scheduler.api.post("/api/schedule", body)
    assert reply.status == 202, reply.json()
    transaction_id: str = reply.json()["transaction_id"]
    return transaction_id


async def callback_entries(scheduler: Scheduler, transaction_id: str) -> list[dict[str, Any]]:
    reply = await scheduler.api.get(f"/api/schedule/{transaction_id}/logs")
    assert reply.status == 200, reply.body
    return [entry for entry in reply.json()["entries"] if entry["kind"] == "callback"]


async def status_of(scheduler: Scheduler, transaction_id: str) -> dict[str, Any]:
    reply = await scheduler.api.get(f"/api/schedule/{transaction_id}/status")
    assert reply.status == 200, reply.body
    status: dict[str, Any] = reply.json()
    return status


def run_until_the_first_attempt_is_recorded(scheduler: Scheduler, due: datetime) -> None:
    host = scheduler.host
    host.advance_to(due - timedelta(seconds=1))
    host.set_clock(due)
    while not any(call.name == "execute_prompt" for call in host.activity_calls):
        assert host.step()


async def test_a_replay_does_not_drop_the_failed_runs_callback(
    signed: Scheduler, httpserver: HTTPServer
) -> None:
    job = Receiver(signed, httpserver, "/job", 503, 503, 503, 200)
    failed = Receiver(signed, httpserver, "/failed", 503, 200)
    due = START + timedelta(minutes=5)
    transaction_id = await accepted(
        signed,
        {
            "exec_at": format_utc(due),
            "prompt_type": "http.call",
            "payload": {"url": httpserver.url_for("/job")},
            "callbacks": {"on_failure": httpserver.url_for("/failed")},
            "retry": {"max_attempts": 3, "initial_delay_seconds": 600},
        },
    )
    # Three attempts by 08:38 at the latest; the callback's first try answers 503 and its
    # second is due 600 s (and a little jitter) later.
    signed.host.advance_to(START + timedelta(minutes=40))
    assert len(job.received) == 3
    assert len(failed.received) == 1

    reply = await signed.api.post(f"/api/schedule/{transaction_id}/replay")
    assert reply.status == 202, reply.body
    signed.host.advance_to(START + timedelta(hours=3))

    assert len(job.received) == 4  # the replay's run, which succeeds
    assert (await status_of(signed, transaction_id))["state"] == "succeeded"
    # The failed run's callback is still delivered, as one message, telling that run's end.
    first, second = failed.requests
    assert first.headers["Webhook-Id"] == second.headers["Webhook-Id"]
    summary = verified(second)
    assert summary["type"] == "job.failed"
    assert summary["data"]["due_at"] == format_utc(due)
    assert summary["data"]["state"] == "failed"
    assert summary["data"]["attempts"] == 3
    assert summary["data"]["outcome"]["status_code"] == 503
    assert summary["data"]["outcome"]["error"] == "target answered 503 SERVICE UNAVAILABLE"
    assert [entry["fields"]["ok"] for entry in await callback_entries(signed, transaction_id)] == [
        False,
        True,
    ]


async def test_a_replay_is_signed_as_a_new_message(
    signed: Scheduler, httpserver: HTTPServer
) -> None:
    job = Receiver(signed, httpserver, "/job", 500, 200)
    transaction_id = await accepted(
        signed,
        {
            "exec_at": format_utc(START + timedelta(minutes=5)),
            "prompt_type": "http.call",
            "payload": {"url": httpserver.url_for("/job"), "json": {"n": 1}},
        },
    )
    signed.host.advance_to(START + timedelta(minutes=10))
    assert (await status_of(signed, transaction_id))["state"] == "failed"

    reply = await signed.api.post(f"/api/schedule/{transaction_id}/replay")
    assert reply.status == 202, reply.body
    signed.host.advance_to(START + timedelta(minutes=20))

    original, replayed = job.requests
    assert verified(original) == verified(replayed) == {"n": 1}
    # A receiver that drops repeated webhook-ids must not drop the replay.
    assert original.headers["Webhook-Id"] != replayed.headers["Webhook-Id"]
    assert (await status_of(signed, transaction_id))["state"] == "succeeded"


async def test_a_store_outage_during_a_callback_does_not_hold_the_next_run(
    signed: Scheduler, httpserver: HTTPServer
) -> None:
    job = Receiver(signed, httpserver, "/job", 200)
    Receiver(signed, httpserver, "/succeeded", 200)
    transaction_id = await accepted(
        signed,
        {
            "cron": "*/5 * * * *",
            "max_runs": 3,
            "prompt_type": "http.call",
            "payload": {"url": httpserver.url_for("/job")},
            "callbacks": {"on_success": httpserver.url_for("/succeeded")},
        },
    )
    run_until_the_first_attempt_is_recorded(signed, START + timedelta(minutes=5))
    dead = TableJobStore.open(unreachable_table_endpoint(), "jobs")
    with dependencies.overridden(job_store=lambda _settings: dead):
        signed.host.advance_to(START + timedelta(minutes=9))  # the store is down for 4 minutes
    dead.close()
    signed.host.advance_to(START + timedelta(minutes=30))

    # Each run fired when it was due, the one after the outage too.
    assert [moment for moment, _ in job.received] == [
        START + timedelta(minutes=5),
        START + timedelta(minutes=10),
        START + timedelta(minutes=15),
    ]
    # The 08:05 run's callback was given up when the next run came, and the log says so.
    entries = await callback_entries(signed, transaction_id)
    abandoned = [entry for entry in entries if "abandoned" in entry["message"]]
    assert [entry["message"] for entry in abandoned] == [
        "callback on_success abandoned: the job store did not answer"
    ]
    assert abandoned[0]["entry_id"] < entries[-1]["entry_id"]  # before the next runs' ones


async def test_a_callback_given_up_while_the_job_log_was_down_too_is_logged_later(
    signed: Scheduler, httpserver: HTTPServer
) -> None:
    job = Receiver(signed, httpserver, "/job", 200)
    Receiver(signed, httpserver, "/succeeded", 200)
    transaction_id = await accepted(
        signed,
        {
            "cron": "*/5 * * * *",
            "max_runs": 3,
            "prompt_type": "http.call",
            "payload": {"url": httpserver.url_for("/job")},
            "callbacks": {"on_success": httpserver.url_for("/succeeded")},
        },
    )
    run_until_the_first_attempt_is_recorded(signed, START + timedelta(minutes=5))
    # Both tables unreachable, as when their storage account is down.
    dead_store = TableJobStore.open(unreachable_table_endpoint(), "jobs")
    dead_log = TableJobLog.open(unreachable_table_endpoint(), "joblog")
    with dependencies.overridden(
        job_store=lambda _settings: dead_store, job_log=lambda _settings: dead_log
    ):
        signed.host.advance_to(START + timedelta(minutes=9))
    dead_store.close()
    dead_log.close()
    signed.host.advance_to(START + timedelta(minutes=30))

    assert len(job.received) == 3
    abandoned = [
        entry
        for entry in await callback_entries(signed, transaction_id)
        if "abandoned" in entry["message"]
    ]
    assert [(entry["fields"]["callback"], entry["entry_id"][:15]) for entry in abandoned] == [
        ("on_success", "20261201T080500")  # the 08:05 run's, written when the store was back
    ]


async def test_a_callback_given_up_in_a_long_store_outage_says_so(
    signed: Scheduler, httpserver: HTTPServer
) -> None:
    Receiver(signed, httpserver, "/job", 200)
    delivered = Receiver(signed, httpserver, "/succeeded", 200)
    due = START + timedelta(minutes=5)
    transaction_id = await accepted(
        signed,
        {
            "exec_at": format_utc(due),
            "prompt_type": "http.call",
            "payload": {"url": httpserver.url_for("/job")},
            "callbacks": {"on_success": httpserver.url_for("/succeeded")},
        },
    )
    run_until_the_first_attempt_is_recorded(signed, due)
    dead = TableJobStore.open(unreachable_table_endpoint(), "jobs")
    with dependencies.overridden(job_store=lambda _settings: dead):
        signed.host.advance_to(START + timedelta(hours=3))
    dead.close()

    assert delivered.received == []
    orchestration = signed.orchestration(transaction_id)
    assert orchestration.runtime_status == "Completed"
    assert orchestration.custom_status == {
        "phase": "callback abandoned",
        "callback": "on_success",
        "attempt": 1,
        "failures": 9,
    }
    [entry] = await callback_entries(signed, transaction_id)
    assert entry["message"] == "callback on_success abandoned: the job store did not answer"
    assert entry["level"] == "warning"
    assert (await status_of(signed, transaction_id))["state"] == "succeeded"


async def test_a_recurring_jobs_callback_retries_end_by_its_next_run(
    signed: Scheduler, httpserver: HTTPServer
) -> None:
    Receiver(signed, httpserver, "/job", 200)
    callbacks = Receiver(signed, httpserver, "/succeeded", 503)
    transaction_id = await accepted(
        signed,
        {
            "cron": "0 * * * *",
            "max_runs": 2,
            "prompt_type": "http.call",
            "payload": {"url": httpserver.url_for("/job")},
            "callbacks": {"on_success": httpserver.url_for("/succeeded")},
            # Retries 10, 20, 40 minutes apart: the third would come after the next run.
            "retry": {"max_attempts": 10, "initial_delay_seconds": 600},
        },
    )

    signed.host.advance_to(START + timedelta(hours=4))

    first_run = START + timedelta(hours=1)
    next_run = START + timedelta(hours=2)
    of_first = [
        moment
        for moment, request in callbacks.received
        if verified(request)["data"]["due_at"] == format_utc(first_run)
    ]
    assert len(of_first) == 3
    assert all(first_run <= moment < next_run for moment in of_first)
    # The first run's callback entries: their ids start with that run's time.
    prefix = make_entry_id(first_run, "cb-")
    entries = [
        entry
        for entry in await callback_entries(signed, transaction_id)
        if entry["entry_id"].startswith(prefix)
    ]
    assert [entry["fields"]["attempt"] for entry in entries] == [1, 2, 3]
    assert entries[-1]["message"].endswith("; giving up")
