"""Idempotency-Key: a retried create gets the first answer; a reused key is refused."""

import asyncio
import json

import pytest

from scheduling.idempotency import InvalidIdempotencyKey, request_fingerprint, transaction_id_for
from tests.support.app_client import Reply
from tests.support.scheduler import Scheduler

JOB = {
    "exec_at": "2026-12-01T09:30:00+01:00",
    "prompt_type": "log.append",
    "payload": {"message": "m"},
}


async def create(scheduler: Scheduler, body: object, key: str | None) -> Reply:
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["Idempotency-Key"] = key
    return await scheduler.api.request(
        "POST", "/api/schedule", body=json.dumps(body).encode(), headers=headers
    )


def test_a_key_always_means_the_same_transaction_id() -> None:
    assert transaction_id_for("order-42") == transaction_id_for("order-42")
    assert transaction_id_for("order-42") != transaction_id_for("order-43")
    with pytest.raises(InvalidIdempotencyKey):
        transaction_id_for("has space")
    with pytest.raises(InvalidIdempotencyKey):
        transaction_id_for("x" * 256)


def test_fingerprint_ignores_key_order_only() -> None:
    assert request_fingerprint({"a": 1, "b": [1, 2]}) == request_fingerprint({"b": [1, 2], "a": 1})
    assert request_fingerprint({"a": 1}) != request_fingerprint({"a": 2})


async def test_a_retried_create_returns_the_first_answer_and_starts_once(
    scheduler: Scheduler,
) -> None:
    first = await create(scheduler, JOB, "order-42")
    assert first.status == 202
    scheduler.host.run()
    # Same request, written differently (offset, field order): still the same job.
    same = {
        "payload": {"message": "m"},
        "prompt_type": "log.append",
        "exec_at": "2026-12-01T08:30:00Z",
    }
    again = await create(scheduler, same, "order-42")

    assert again.status == 202
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert scheduler.orchestrations_started() == [first.json()["transaction_id"]]


async def test_a_key_reused_for_another_request_is_409(scheduler: Scheduler) -> None:
    assert (await create(scheduler, JOB, "order-42")).status == 202
    scheduler.host.run()
    other = {**JOB, "payload": {"message": "different"}}
    reply = await create(scheduler, other, "order-42")
    assert reply.status == 409
    assert reply.content_type == "application/problem+json"
    assert len(scheduler.orchestrations_started()) == 1


async def test_a_replay_after_the_job_fired_does_not_fire_it_again(scheduler: Scheduler) -> None:
    first = await create(scheduler, JOB, "order-42")
    scheduler.host.advance(3600)
    assert (
        scheduler.host.instance(first.json()["transaction_id"]).runtime_status.value == "Completed"
    )
    again = await create(scheduler, JOB, "order-42")
    assert again.status == 202
    assert len(scheduler.orchestrations_started()) == 1


async def test_a_duplicate_racing_the_first_before_it_started(scheduler: Scheduler) -> None:
    # Concurrent: both pass the "does it exist" check, both register, one start loses.
    first, second = await asyncio.gather(
        create(scheduler, JOB, "race"), create(scheduler, JOB, "race")
    )
    starts = [call.status for call in scheduler.host.client_calls if "orchestrators/" in call.path]
    assert sorted(starts) == [202, 500]
    assert first.status == second.status == 202
    assert second.json()["transaction_id"] == first.json()["transaction_id"]
    scheduler.host.advance(3600)
    status = (
        await scheduler.api.get(f"/api/schedule/{first.json()['transaction_id']}/status")
    ).json()
    assert status["runtime_status"] == "Completed"
    assert status["output"]["ok"] is True


async def test_an_invalid_key_is_400_and_creates_nothing(scheduler: Scheduler) -> None:
    reply = await create(scheduler, JOB, "bad key")
    assert reply.status == 400
    assert scheduler.host.client_calls == []


async def test_without_a_key_every_create_is_a_new_job(scheduler: Scheduler) -> None:
    first = await create(scheduler, JOB, None)
    second = await create(scheduler, JOB, None)
    assert first.json()["transaction_id"] != second.json()["transaction_id"]


async def test_a_retry_after_the_lead_window_closed_still_gets_the_first_answer(
    scheduler: Scheduler,
) -> None:
    first = await create(scheduler, JOB, "late-retry")
    scheduler.host.advance_to(scheduler.now().replace(minute=29, second=30))
    again = await create(scheduler, JOB, "late-retry")
    assert again.status == 202
    assert again.json() == first.json()
