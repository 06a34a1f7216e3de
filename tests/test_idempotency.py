"""Idempotency-Key: a retried create gets the first answer; a reused key is refused."""

import asyncio
import json

import pytest

from scheduling.idempotency import (
    FingerprintKeyMissing,
    InvalidIdempotencyKey,
    fingerprint_key,
    request_fingerprint,
    transaction_id_for,
)
from tests.support.app_client import Reply
from tests.support.scheduler import Scheduler, running_scheduler
from tests.support.services import AzuriteService

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


KEY = bytes(range(32))


def test_fingerprint_ignores_key_order_only() -> None:
    assert request_fingerprint({"a": 1, "b": [1, 2]}, KEY) == request_fingerprint(
        {"b": [1, 2], "a": 1}, KEY
    )
    assert request_fingerprint({"a": 1}, KEY) != request_fingerprint({"a": 2}, KEY)


def test_fingerprint_depends_on_the_server_key() -> None:
    # A stored digest cannot be matched against guesses of a secret without the server key.
    assert request_fingerprint({"a": 1}, KEY) != request_fingerprint({"a": 1}, bytes(32))


@pytest.mark.parametrize("setting", ["", "c2hvcnQ=", "not base64!", "A" * 40 + "\n"])
def test_an_unusable_fingerprint_key_is_refused_without_being_quoted(setting: str) -> None:
    with pytest.raises(FingerprintKeyMissing) as raised:
        fingerprint_key(setting)
    assert "REQUEST_FINGERPRINT_KEY" in str(raised.value)
    if setting:
        assert setting.strip() not in str(raised.value)


async def test_without_a_fingerprint_key_an_idempotent_create_is_503_and_creates_nothing(
    azurite: AzuriteService,
) -> None:
    with running_scheduler(azurite, request_fingerprint_key="") as scheduler:
        reply = await create(scheduler, JOB, "order-1")
        assert reply.status == 503
        assert reply.json()["type"].endswith("not-configured")
        assert scheduler.orchestrations_started() == []
        assert scheduler.job_store.get(transaction_id_for("order-1")) is None


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
    assert scheduler.orchestration(first.json()["transaction_id"]).output["state"] == "succeeded"
    again = await create(scheduler, JOB, "order-42")
    assert again.status == 202
    assert len(scheduler.orchestrations_started()) == 1


async def test_two_creates_with_one_key_at_once_make_one_job(scheduler: Scheduler) -> None:
    # Both pass the "does it exist" read; the store's insert-if-absent lets one in.
    replies = await asyncio.gather(*(create(scheduler, JOB, "race") for _ in range(4)))
    assert [reply.status for reply in replies] == [202] * 4
    assert len({reply.json()["transaction_id"] for reply in replies}) == 1
    assert sorted("idempotent-replayed" in reply.headers for reply in replies) == [
        False,
        True,
        True,
        True,
    ]
    transaction_id = replies[0].json()["transaction_id"]
    assert scheduler.orchestrations_started() == [transaction_id]
    scheduler.host.advance(3600)
    status = (await scheduler.api.get(f"/api/schedule/{transaction_id}/status")).json()
    assert status["state"] == "succeeded"
    assert status["attempts"] == 1


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
