"""A job's whole life through the public routes only: accepted, waiting, fired once, visible."""

import random
import socket
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import azure.durable_functions as df
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from scheduling.prompts.http_call import TRANSACTION_HEADER
from scheduling.registry import REGISTRY_ENTITY
from tests.support.scheduler import START, Scheduler


async def status_of(scheduler: Scheduler, transaction_id: str) -> dict[str, Any]:
    reply = await scheduler.api.get(f"/api/schedule/{transaction_id}/status")
    assert reply.status == 200, reply.body
    status: dict[str, Any] = reply.json()
    return status


async def listed_ids(scheduler: Scheduler) -> list[str]:
    reply = await scheduler.api.get("/api/schedule?limit=500")
    return [job["transaction_id"] for job in reply.json()["jobs"]]


def registry_is_empty(scheduler: Scheduler) -> bool:
    shards = [
        scheduler.host.entity(REGISTRY_ENTITY, f"shard-{index}")
        for index in range(scheduler.settings.registry_shards)
    ]
    return all(not (shard.state or {}).get("jobs") for shard in shards)


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
    assert (await status_of(scheduler, transaction_id))["runtime_status"] == "Running"

    scheduler.host.advance_to(exec_at + timedelta(seconds=1))
    assert len(httpserver.log) == 1
    request, _ = httpserver.log[0]
    assert request.method == "PUT"
    assert request.headers["X-Team"] == "blue"
    assert request.headers[TRANSACTION_HEADER] == transaction_id
    assert request.get_json() == {"text": "stand-up"}

    status = await status_of(scheduler, transaction_id)
    assert status["runtime_status"] == "Completed"
    assert status["output"]["ok"] is True
    assert status["output"]["fired_at"] == "2026-12-01T11:00:00Z"
    assert status["output"]["outcome"]["status_code"] == 200
    assert status["custom_status"] == {"phase": "done", "ok": True, "attempts": 1}
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
    assert status["output"]["outcome"]["entry_id"] == user_entry["entry_id"]


async def test_a_deleted_job_never_fires(scheduler: Scheduler, httpserver: HTTPServer) -> None:
    httpserver.expect_request("/never").respond_with_data("no")
    exec_at = START + timedelta(hours=1)
    transaction_id = await scheduler.accepted(
        "http.call", {"url": httpserver.url_for("/never")}, at=exec_at
    )
    scheduler.host.advance_to(exec_at - timedelta(minutes=1))

    deleted = await scheduler.api.delete(f"/api/schedule/{transaction_id}")
    assert deleted.status == 200
    scheduler.host.advance_to(exec_at + timedelta(days=1))

    assert httpserver.log == []
    assert (await scheduler.api.get(f"/api/schedule/{transaction_id}/status")).status == 404
    assert await listed_ids(scheduler) == []
    assert registry_is_empty(scheduler)
    logs = (await scheduler.api.get(f"/api/schedule/{transaction_id}/logs")).json()["entries"]
    assert [entry["kind"] for entry in logs] == ["accepted", "cancelled"]


async def job_then_registry_operation(
    scheduler: Scheduler,
    httpserver: HTTPServer,
    exec_at: datetime,
    operation: str,
    argument: Callable[[dict[str, str]], dict[str, Any]],
) -> str:
    """An http.call job whose shard then gets `operation`, sent by hand to the entity."""
    httpserver.expect_request("/never").respond_with_data("no")
    transaction_id = await scheduler.accepted(
        "http.call", {"url": httpserver.url_for("/never")}, at=exec_at
    )
    scheduler.host.run()
    job = (await status_of(scheduler, transaction_id))["input"]
    ref = {"transaction_id": transaction_id, "accepted_at": job["accepted_at"]}
    client = df.DurableOrchestrationClient(scheduler.host.client_binding())
    await client.signal_entity(
        df.EntityId(REGISTRY_ENTITY, job["registry_shard"]), operation, argument(ref)
    )
    return transaction_id


async def test_a_job_cancelled_in_its_shard_never_fires_even_if_not_terminated(
    scheduler: Scheduler, httpserver: HTTPServer
) -> None:
    # A delete cancels in the registry first; should its termination never arrive, the
    # orchestration still finds the job cancelled when it comes due.
    exec_at = START + timedelta(minutes=30)
    transaction_id = await job_then_registry_operation(
        scheduler, httpserver, exec_at, "cancel", lambda ref: {"request_id": "r", "jobs": [ref]}
    )
    scheduler.host.advance_to(exec_at)

    assert httpserver.log == []
    assert scheduler.host.instance(transaction_id).output["cancelled"] is True
    # Ended as cancelled: to the API, a deleted job.
    assert (await scheduler.api.get(f"/api/schedule/{transaction_id}/status")).status == 404


async def test_a_registration_that_never_arrives_ends_as_a_visible_failure(
    scheduler: Scheduler, httpserver: HTTPServer
) -> None:
    exec_at = START + timedelta(minutes=30)
    # Lost, as if never delivered (not cancelled: no tombstone).
    transaction_id = await job_then_registry_operation(
        scheduler, httpserver, exec_at, "remove", lambda ref: ref
    )
    scheduler.host.advance_to(exec_at + timedelta(minutes=1))
    assert (await status_of(scheduler, transaction_id))["runtime_status"] == "Running"
    scheduler.host.advance_to(exec_at + timedelta(minutes=10))

    assert httpserver.log == []
    status = await status_of(scheduler, transaction_id)
    assert status["runtime_status"] == "Completed"
    assert status["output"]["cancelled"] is False
    assert status["output"]["outcome"]["error"] == "the job's registration never arrived"


async def test_wipe_of_fifty_jobs_over_the_shards(
    scheduler: Scheduler, httpserver: HTTPServer
) -> None:
    httpserver.expect_request("/never").respond_with_data("no")
    ids = [
        await scheduler.accepted(
            "http.call", {"url": httpserver.url_for("/never")}, at=START + timedelta(minutes=5 + n)
        )
        for n in range(50)
    ]
    scheduler.host.run()
    shards = {(await status_of(scheduler, tid))["input"]["registry_shard"] for tid in ids}
    assert len(shards) >= 10

    wiped = await scheduler.api.delete("/api/schedule")
    assert wiped.json() == {"cancelled": 50, "firing": 0, "incomplete_shards": []}
    scheduler.host.advance(3600 * 2)

    assert httpserver.log == []
    assert await listed_ids(scheduler) == []
    for transaction_id in ids[:5]:
        assert (await scheduler.api.get(f"/api/schedule/{transaction_id}/status")).status == 404
    assert registry_is_empty(scheduler)
    assert not [op for op in scheduler.host.entity_operations if op.is_error]
    again = await scheduler.api.delete("/api/schedule")
    assert again.json() == {"cancelled": 0, "firing": 0, "incomplete_shards": []}


async def test_a_far_future_job_fires_with_small_histories(scheduler: Scheduler) -> None:
    exec_at = START + timedelta(days=300, hours=5)
    transaction_id = await scheduler.accepted("log.append", {"message": "see you"}, at=exec_at)

    scheduler.host.advance_to(exec_at - timedelta(seconds=1))
    assert (await status_of(scheduler, transaction_id))["runtime_status"] == "Running"
    scheduler.host.advance_to(exec_at)

    status = await status_of(scheduler, transaction_id)
    assert status["runtime_status"] == "Completed"
    assert status["output"]["fired_at"] == "2027-09-27T13:00:00Z"
    instance = scheduler.host.instance(transaction_id)
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
        "500": {"url": httpserver.url_for("/fails")},
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
        assert status["runtime_status"] == "Completed"
        assert status["output"]["ok"] is False
        outcomes[name] = status["output"]["outcome"]
    assert outcomes["down"]["error"].startswith("could not connect")
    assert outcomes["500"]["status_code"] == 500
    assert outcomes["500"]["body_excerpt"] == "broken"
    assert outcomes["timeout"]["error"] == "timed out after 0.2 s"
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
    assert status["runtime_status"] == "Completed"
    assert status["output"]["ok"] is True
    assert status["output"]["attempts"] == 3
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
    assert status["custom_status"]["phase"] == "retrying"

    assert (await scheduler.api.delete(f"/api/schedule/{transaction_id}")).status == 200
    scheduler.host.advance_to(exec_at + timedelta(days=2))
    assert len(httpserver.log) == 1


async def test_a_delete_that_meets_a_firing_attempt_is_409_and_the_job_completes(
    scheduler: Scheduler, httpserver: HTTPServer
) -> None:
    httpserver.expect_request("/hook").respond_with_data("ok")
    exec_at = START + timedelta(minutes=5)
    transaction_id = await scheduler.accepted(
        "http.call", {"url": httpserver.url_for("/hook")}, at=exec_at
    )
    scheduler.step_until_claimed(exec_at)

    reply = await scheduler.api.delete(f"/api/schedule/{transaction_id}")
    assert reply.status == 409
    assert reply.json()["type"].endswith("job-firing")
    scheduler.host.run()
    assert len(httpserver.log) == 1
    status = await status_of(scheduler, transaction_id)
    assert status["runtime_status"] == "Completed"
    assert status["output"]["ok"] is True
    # Once it has finished, it can be deleted.
    assert (await scheduler.api.delete(f"/api/schedule/{transaction_id}")).status == 200


async def test_a_delete_queued_behind_a_sent_claim_is_409(
    scheduler: Scheduler, httpserver: HTTPServer
) -> None:
    httpserver.expect_request("/hook").respond_with_data("ok")
    exec_at = START + timedelta(minutes=5)
    transaction_id = await scheduler.accepted(
        "http.call", {"url": httpserver.url_for("/hook")}, at=exec_at
    )
    scheduler.host.run()
    scheduler.host.set_clock(exec_at)
    # The timer fires and the claim is sent, but the shard has not processed it yet...
    while not scheduler.host.queued_message_count():
        assert scheduler.host.step()
    assert not any(op.operation == "claim" for op in scheduler.host.entity_operations)

    # ...so the cancel, processed after the claim, finds the job firing: it says so.
    reply = await scheduler.api.delete(f"/api/schedule/{transaction_id}")
    assert reply.status == 409
    scheduler.host.run()
    assert len(httpserver.log) == 1


async def test_a_wipe_that_meets_a_firing_attempt_makes_it_the_last(
    scheduler: Scheduler, httpserver: HTTPServer
) -> None:
    httpserver.expect_request("/down").respond_with_data("", status=503)
    exec_at = START + timedelta(minutes=5)
    transaction_id = await scheduler.accepted(
        "http.call",
        {"url": httpserver.url_for("/down")},
        at=exec_at,
        retry={"max_attempts": 5, "initial_delay_seconds": 60},
    )
    scheduler.step_until_claimed(exec_at)

    wiped = await scheduler.api.delete("/api/schedule")
    assert wiped.json() == {"cancelled": 0, "firing": 1, "incomplete_shards": []}
    scheduler.host.advance_to(exec_at + timedelta(hours=2))

    # The running attempt finished (one request); none of the four retries started.
    assert len(httpserver.log) == 1
    output = scheduler.host.instance(transaction_id).output
    assert output["cancelled"] is True
    assert output["attempts"] == 1
    assert output["outcome"]["status_code"] == 503
    assert registry_is_empty(scheduler)
