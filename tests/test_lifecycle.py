"""A job's whole life through the public routes only: accepted, waiting, fired once, visible."""

import asyncio
import random
import socket
import time
from datetime import timedelta
from typing import Any

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from delivery.prompts.http_call import TRANSACTION_HEADER
from tests.support.app_client import Reply
from tests.support.scheduler import START, Scheduler


async def status_of(scheduler: Scheduler, transaction_id: str) -> dict[str, Any]:
    reply = await scheduler.api.get(f"/api/schedule/{transaction_id}/status")
    assert reply.status == 200, reply.body
    status: dict[str, Any] = reply.json()
    return status


async def listed_ids(scheduler: Scheduler) -> list[str]:
    reply = await scheduler.api.get("/api/schedule?limit=500")
    assert reply.status == 200, reply.body
    return [job["transaction_id"] for job in reply.json()["jobs"]]


def call_route(scheduler: Scheduler, method: str, path: str) -> Reply:
    """Call a route from a target server's thread, while an attempt is in flight."""
    return asyncio.run(scheduler.api.request(method, path))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def test_http_call_fires_once_at_its_time(
    scheduler: Scheduler, httpserver: HTTPServer
) -> None:
    httpserver.expect_request("/reminder", method="PUT").respond_with_json({"got": "it"})
    exec_at = START + timedelta(hours=3)
    transaction_id = await scheduler.accepted(
        "http.call",
        {
            "method": "PUT",
            "url": httpserver.url_for("/reminder"),
            "headers": {"X-Team": "blue"},
            "json": {"text": "stand-up"},
        },
        at=exec_at,
    )
    scheduler.host.run()
    assert await listed_ids(scheduler) == [transaction_id]

    scheduler.host.advance_to(exec_at - timedelta(seconds=1))
    assert httpserver.log == []
    assert (await status_of(scheduler, transaction_id))["state"] == "pending"

    scheduler.host.advance_to(exec_at + timedelta(seconds=1))
    assert len(httpserver.log) == 1
    request, _ = httpserver.log[0]
    assert request.method == "PUT"
    assert request.headers["X-Team"] == "blue"
    assert request.headers[TRANSACTION_HEADER] == transaction_id
    assert request.get_json() == {"text": "stand-up"}

    status = await status_of(scheduler, transaction_id)
    assert status["state"] == "succeeded"
    assert status["attempts"] == 1
    assert status["fired_at"] == "2026-12-01T11:00:00Z"
    assert status["last_outcome"]["ok"] is True
    assert status["last_outcome"]["status_code"] == 200
    assert status["destination"] == f"PUT http://127.0.0.1:{httpserver.port}"
    assert scheduler.orchestration(transaction_id).output == {
        "transaction_id": transaction_id,
        "state": "succeeded",
        "attempts": 1,
    }
    assert await listed_ids(scheduler) == []

    scheduler.host.advance(7 * 24 * 3600)
    assert len(httpserver.log) == 1


async def test_log_append_fires_and_its_entry_is_readable(scheduler: Scheduler) -> None:
    exec_at = START + timedelta(minutes=5)
    transaction_id = await scheduler.accepted(
        "log.append",
        {"message": "backup finished", "level": "warning", "fields": {"size_gb": 12}},
        at=exec_at,
    )
    scheduler.host.advance_to(exec_at)

    reply = await scheduler.api.get(f"/api/schedule/{transaction_id}/logs")
    assert reply.status == 200
    entries = reply.json()["entries"]
    assert [entry["kind"] for entry in entries] == ["accepted", "fired", "log", "outcome"]
    user_entry = entries[2]
    assert user_entry["message"] == "backup finished"
    assert user_entry["level"] == "warning"
    assert user_entry["fields"] == {"size_gb": 12}
    status = await status_of(scheduler, transaction_id)
    assert status["last_outcome"]["entry_id"] == user_entry["entry_id"]


async def test_a_deleted_job_never_fires(scheduler: Scheduler, httpserver: HTTPServer) -> None:
    httpserver.expect_request("/never").respond_with_data("no")
    exec_at = START + timedelta(hours=1)
    transaction_id = await scheduler.accepted(
        "http.call", {"url": httpserver.url_for("/never")}, at=exec_at
    )
    scheduler.host.advance_to(exec_at - timedelta(minutes=1))

    deleted = await scheduler.api.delete(f"/api/schedule/{transaction_id}")
    assert deleted.status == 200
    assert deleted.json()["state_before"] == "pending"
    scheduler.host.advance_to(exec_at + timedelta(days=1))

    assert httpserver.log == []
    assert (await status_of(scheduler, transaction_id))["state"] == "cancelled"
    assert (await scheduler.api.delete(f"/api/schedule/{transaction_id}")).status == 404
    assert await listed_ids(scheduler) == []
    assert scheduler.orchestration(transaction_id).runtime_status.value == "Terminated"
    logs = (await scheduler.api.get(f"/api/schedule/{transaction_id}/logs")).json()["entries"]
    assert [entry["kind"] for entry in logs] == ["accepted", "cancelled"]


async def test_a_cancelled_job_never_fires_even_if_its_orchestration_was_not_stopped(
    scheduler: Scheduler, httpserver: HTTPServer
) -> None:
    # The delete's terminate is only a courtesy: the record's state is what the claim reads.
    httpserver.expect_request("/never").respond_with_data("no")
    exec_at = START + timedelta(minutes=30)
    transaction_id = await scheduler.accepted(
        "http.call", {"url": httpserver.url_for("/never")}, at=exec_at
    )
    scheduler.host.run()
    scheduler.host.fail_next("POST", "instances/")
    assert (await scheduler.api.delete(f"/api/schedule/{transaction_id}")).status == 200
    scheduler.host.advance_to(exec_at)

    assert httpserver.log == []
    assert scheduler.orchestration(transaction_id).output["state"] == "cancelled"


async def test_an_orchestration_whose_record_is_gone_sends_nothing(
    scheduler: Scheduler, httpserver: HTTPServer
) -> None:
    httpserver.expect_request("/never").respond_with_data("no")
    exec_at = START + timedelta(minutes=30)
    transaction_id = await scheduler.accepted(
        "http.call", {"url": httpserver.url_for("/never")}, at=exec_at
    )
    scheduler.host.run()
    stored = scheduler.job_store.get(transaction_id)
    assert stored is not None
    scheduler.job_store.delete(stored)
    scheduler.host.advance_to(exec_at)

    assert httpserver.log == []
    assert scheduler.orchestration(transaction_id).output["state"] == "gone"


async def test_wipe_of_fifty_jobs(scheduler: Scheduler, httpserver: HTTPServer) -> None:
    httpserver.expect_request("/never").respond_with_data("no")
    ids = [
        await scheduler.accepted(
            "http.call", {"url": httpserver.url_for("/never")}, at=START + timedelta(minutes=5 + n)
        )
        for n in range(50)
    ]
    scheduler.host.run()

    wiped = await scheduler.api.post("/api/wipe")
    assert wiped.json() == {"cancelled": 50, "firing": 0, "unreadable": 0, "complete": True}
    scheduler.host.advance(3600 * 2)

    assert httpserver.log == []
    assert await listed_ids(scheduler) == []
    for transaction_id in ids[:5]:
        assert (await status_of(scheduler, transaction_id))["state"] == "cancelled"
        logs = (await scheduler.api.get(f"/api/schedule/{transaction_id}/logs")).json()
        assert [entry["kind"] for entry in logs["entries"]] == ["accepted", "wiped"]
    again = await scheduler.api.post("/api/wipe")
    assert again.json() == {"cancelled": 0, "firing": 0, "unreadable": 0, "complete": True}


async def test_a_far_future_job_fires_with_small_histories(scheduler: Scheduler) -> None:
    exec_at = START + timedelta(days=300, hours=5)
    transaction_id = await scheduler.accepted("log.append", {"message": "see you"}, at=exec_at)

    scheduler.host.advance_to(exec_at - timedelta(seconds=1))
    assert (await status_of(scheduler, transaction_id))["state"] == "pending"
    scheduler.host.advance_to(exec_at)

    status = await status_of(scheduler, transaction_id)
    assert status["state"] == "succeeded"
    assert status["fired_at"] == "2027-09-27T13:00:00Z"
    instance = scheduler.orchestration(transaction_id)
    assert instance.episode_count == 101
    # 3-day chunks with continue-as-new: no episode's history grows with the wait.
    assert max(instance.max_history_length_per_episode) <= 20


async def test_target_failures_are_visible_outcomes(
    scheduler: Scheduler, httpserver: HTTPServer
) -> None:
    def slow(request: Request) -> Response:
        time.sleep(0.6)
        return Response("late")

    httpserver.expect_request("/fails").respond_with_data("broken", status=500)
    httpserver.expect_request("/slow").respond_with_handler(slow)
    exec_at = START + timedelta(minutes=2)
    cases: dict[str, dict[str, Any]] = {
        "down": {"url": f"http://127.0.0.1:{free_port()}/"},
        "500": {"url": httpserver.url_for("/fails"), "record_response_body": True},
        "timeout": {"url": httpserver.url_for("/slow"), "timeout_seconds": 0.2},
    }
    ids = {
        name: await scheduler.accepted("http.call", payload, at=exec_at)
        for name, payload in cases.items()
    }
    scheduler.host.advance_to(exec_at)

    outcomes = {}
    for name, transaction_id in ids.items():
        status = await status_of(scheduler, transaction_id)
        assert status["state"] == "failed"
        assert status["last_outcome"]["ok"] is False
        outcomes[name] = status["last_outcome"]
    assert outcomes["down"]["error"].startswith("could not connect")
    assert outcomes["500"]["status_code"] == 500
    assert outcomes["500"]["body_excerpt"] == "broken"
    assert outcomes["timeout"]["error"] == "no complete response within 0.2 s"
    assert await listed_ids(scheduler) == []


async def test_two_hundred_jobs_fire_in_order_exactly_once(
    scheduler: Scheduler, httpserver: HTTPServer
) -> None:
    fired: list[str] = []

    def record(request: Request) -> Response:
        fired.append(request.headers[TRANSACTION_HEADER])
        return Response("ok")

    httpserver.expect_request("/tick").respond_with_handler(record)
    rng = random.Random(20261126)
    planned: dict[str, Any] = {}
    for _ in range(200):
        exec_at = START + timedelta(seconds=rng.randint(60, 6 * 24 * 3600))
        transaction_id = await scheduler.accepted(
            "http.call", {"url": httpserver.url_for("/tick")}, at=exec_at
        )
        planned[transaction_id] = exec_at
    scheduler.host.advance_to(START + timedelta(days=7))

    assert sorted(fired) == sorted(planned)
    assert len(set(fired)) == 200
    fire_times = [planned[transaction_id] for transaction_id in fired]
    assert fire_times == sorted(fire_times)
    assert await listed_ids(scheduler) == []


async def test_a_retryable_failure_is_retried_on_its_backoff(
    scheduler: Scheduler, httpserver: HTTPServer
) -> None:
    arrivals: list[Any] = []
    answers = iter([503, 503, 200])

    def flaky(request: Request) -> Response:
        arrivals.append(scheduler.now())
        return Response("", status=next(answers), headers={"Retry-After": "90"})

    httpserver.expect_request("/flaky").respond_with_handler(flaky)
    exec_at = START + timedelta(minutes=5)
    transaction_id = await scheduler.accepted(
        "http.call",
        {"url": httpserver.url_for("/flaky")},
        at=exec_at,
        retry={"max_attempts": 5, "initial_delay_seconds": 30},
    )
    scheduler.host.advance_to(exec_at + timedelta(hours=1))

    # Retry-After (90 s) outweighs the 30 s and 60 s backoffs (plus at most 10 % jitter).
    assert arrivals == [
        exec_at,
        exec_at + timedelta(seconds=90),
        exec_at + timedelta(seconds=180),
    ]
    status = await status_of(scheduler, transaction_id)
    assert status["state"] == "succeeded"
    assert status["attempts"] == 3
    logs = (await scheduler.api.get(f"/api/schedule/{transaction_id}/logs")).json()["entries"]
    assert [(entry["kind"], entry["fields"].get("attempt")) for entry in logs] == [
        ("accepted", None),
        ("fired", 1),
        ("outcome", 1),
        ("fired", 2),
        ("outcome", 2),
        ("fired", 3),
        ("outcome", 3),
    ]
    assert await listed_ids(scheduler) == []


async def test_a_job_deleted_while_waiting_to_retry_stops(
    scheduler: Scheduler, httpserver: HTTPServer
) -> None:
    httpserver.expect_request("/down").respond_with_data("", status=503)
    exec_at = START + timedelta(minutes=5)
    transaction_id = await scheduler.accepted(
        "http.call",
        {"url": httpserver.url_for("/down")},
        at=exec_at,
        retry={"max_attempts": 10, "initial_delay_seconds": 600},
    )
    scheduler.host.advance_to(exec_at + timedelta(minutes=1))
    assert len(httpserver.log) == 1
    status = await status_of(scheduler, transaction_id)
    assert status["state"] == "retrying"
    assert status["next_attempt_at"] is not None
    assert await listed_ids(scheduler) == [transaction_id]

    deleted = await scheduler.api.delete(f"/api/schedule/{transaction_id}")
    assert deleted.status == 200
    assert deleted.json()["state_before"] == "retrying"
    scheduler.host.advance_to(exec_at + timedelta(days=2))
    assert len(httpserver.log) == 1
    assert (await status_of(scheduler, transaction_id))["state"] == "cancelled"


async def test_a_delete_that_meets_a_firing_attempt_is_409_and_the_job_completes(
    scheduler: Scheduler, httpserver: HTTPServer
) -> None:
    answers: list[Reply] = []

    def delete_meanwhile(request: Request) -> Response:
        answers.append(call_route(scheduler, "DELETE", f"/api/schedule/{transaction_id}"))
        return Response("ok")

    httpserver.expect_request("/hook").respond_with_handler(delete_meanwhile)
    exec_at = START + timedelta(minutes=5)
    transaction_id = await scheduler.accepted(
        "http.call", {"url": httpserver.url_for("/hook")}, at=exec_at
    )
    scheduler.host.advance_to(exec_at)

    assert [answer.status for answer in answers] == [409]
    assert answers[0].json()["type"].endswith("job-firing")
    assert len(httpserver.log) == 1
    status = await status_of(scheduler, transaction_id)
    assert status["state"] == "succeeded"
    # Once it has its outcome, its record can be deleted.
    deleted = await scheduler.api.delete(f"/api/schedule/{transaction_id}")
    assert deleted.json()["state_before"] == "succeeded"
    assert (await scheduler.api.get(f"/api/schedule/{transaction_id}/status")).status == 404


async def test_a_wipe_that_meets_a_firing_attempt_lets_it_finish_and_a_second_wipe_stops_it(
    scheduler: Scheduler, httpserver: HTTPServer
) -> None:
    wipes: list[Reply] = []

    def wipe_meanwhile(request: Request) -> Response:
        if not wipes:
            wipes.append(call_route(scheduler, "POST", "/api/wipe"))
        return Response("", status=503)

    httpserver.expect_request("/down").respond_with_handler(wipe_meanwhile)
    exec_at = START + timedelta(minutes=5)
    transaction_id = await scheduler.accepted(
        "http.call",
        {"url": httpserver.url_for("/down")},
        at=exec_at,
        retry={"max_attempts": 5, "initial_delay_seconds": 60},
    )
    scheduler.host.advance_to(exec_at)

    assert wipes[0].json() == {"cancelled": 0, "firing": 1, "unreadable": 0, "complete": True}
    assert (await status_of(scheduler, transaction_id))["state"] == "retrying"
    again = await scheduler.api.post("/api/wipe")
    assert again.json() == {"cancelled": 1, "firing": 0, "unreadable": 0, "complete": True}
    scheduler.host.advance_to(exec_at + timedelta(hours=2))

    # The running attempt finished (one request); none of the four retries started.
    assert len(httpserver.log) == 1
    status = await status_of(scheduler, transaction_id)
    assert status["state"] == "cancelled"
    assert status["attempts"] == 1
    assert status["last_outcome"]["status_code"] == 503
