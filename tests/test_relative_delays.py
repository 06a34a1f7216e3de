"""`"delay": "90s"` on POST /api/schedule (and PATCH): resolved against the server's clock when
accepted, answered and stored as the instant; a retry with its Idempotency-Key gets the first
answer, not a new time."""

import json
from datetime import timedelta
from typing import Any

import pytest

from tests.support.app_client import Reply
from tests.support.scheduler import START, Scheduler

LOG = {"prompt_type": "log.append", "payload": {"message": "m"}}


async def create(scheduler: Scheduler, body: dict[str, Any], key: str | None = None) -> Reply:
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["Idempotency-Key"] = key
    return await scheduler.api.request(
        "POST", "/api/schedule", body=json.dumps(body).encode(), headers=headers
    )


async def test_a_delay_is_answered_stored_and_fired_as_the_instant_it_resolves_to(
    scheduler: Scheduler,
) -> None:
    scheduler.host.advance(7.25)
    reply = await create(scheduler, {"delay": "1h30m", **LOG})

    assert reply.status == 202, reply.body
    due = START + timedelta(seconds=7.25) + timedelta(minutes=90)
    assert reply.json()["exec_at"] == "2026-12-01T09:30:07.250000Z"
    assert reply.json()["next_fire_at"] == reply.json()["exec_at"]
    transaction_id = reply.json()["transaction_id"]
    stored = scheduler.job_store.get(transaction_id)
    assert stored is not None
    assert stored.record.exec_at == due

    scheduler.host.advance_to(due - timedelta(seconds=1))
    status = (await scheduler.api.get(f"/api/schedule/{transaction_id}/status")).json()
    assert status["state"] == "pending"
    scheduler.host.advance_to(due + timedelta(seconds=1))
    status = (await scheduler.api.get(f"/api/schedule/{transaction_id}/status")).json()
    assert status["state"] == "succeeded"
    assert status["attempt_history"][0]["due_at"] == "2026-12-01T09:30:07.250000Z"


@pytest.mark.parametrize(
    ("body", "field", "rule"),
    [
        ({"delay": "5m", "exec_at": "2026-12-01T10:00:00Z"}, "delay", "one_of"),
        ({"delay": "5m", "exec_local": "2026-12-01T10:00:00"}, "delay", "one_of"),
        ({"delay": "5m", "cron": "@hourly"}, "delay", "one_of"),
        ({"delay": "5m", "timezone": "Europe/Paris"}, "timezone", "delay_is_relative"),
        ({"delay": "5m", "max_runs": 3}, "max_runs", "cron_only"),
        ({"delay": "59s"}, "delay", "min_lead"),
        ({"delay": "367d"}, "delay", "max_horizon"),
        ({"delay": "P1M"}, "delay", "value_error"),
        ({"delay": "1.5h"}, "delay", "value_error"),
        ({"delay": 300}, "delay", "value_error"),
    ],
)
async def test_a_delay_that_cannot_work_is_a_422_naming_the_field(
    scheduler: Scheduler, body: dict[str, Any], field: str, rule: str
) -> None:
    reply = await create(scheduler, {**body, **LOG})

    assert reply.status == 422, reply.body
    assert reply.content_type == "application/problem+json"
    errors = reply.json()["errors"]
    assert [(error["loc"], error["type"]) for error in errors] == [([field], rule)]
    assert scheduler.orchestrations_started() == []


async def test_a_refused_delay_says_which_forms_are_taken(scheduler: Scheduler) -> None:
    reply = await create(scheduler, {"delay": "P1M", **LOG})
    (error,) = reply.json()["errors"]
    assert "months" in error["msg"]
    assert "PT5M" in error["msg"]
    assert "1h30m" in error["msg"]
    too_soon = (await create(scheduler, {"delay": "10s", **LOG})).json()
    assert too_soon["errors"][0]["msg"] == (
        "delay must be at least 60 s (MIN_LEAD_SECONDS on this app)"
    )


async def test_a_retry_with_the_same_key_gets_the_first_instant_not_a_new_one(
    scheduler: Scheduler,
) -> None:
    first = await create(scheduler, {"delay": "5m", **LOG}, key="order-7")
    assert first.status == 202
    scheduler.host.advance(90)
    # The same delay, written another way, 90 s later: the same request, the first answer.
    for written in ("5m", "300s", "PT5M"):
        again = await create(scheduler, {"delay": written, **LOG}, key="order-7")
        assert again.status == 202, (written, again.body)
        assert again.json() == first.json()
        assert again.headers["idempotent-replayed"] == "true"
    assert first.json()["exec_at"] == "2026-12-01T08:05:00Z"
    assert len(scheduler.orchestrations_started()) == 1


@pytest.mark.parametrize(
    "other",
    [
        {"delay": "6m"},
        # The very instant the delay resolved to is still another request: a delay is not a time.
        {"exec_at": "2026-12-01T08:05:00Z"},
    ],
)
async def test_the_same_key_with_another_delay_or_an_instant_is_409(
    scheduler: Scheduler, other: dict[str, str]
) -> None:
    assert (await create(scheduler, {"delay": "5m", **LOG}, key="order-8")).status == 202
    reply = await create(scheduler, {**other, **LOG}, key="order-8")
    assert reply.status == 409
    assert reply.json()["type"].endswith("idempotency-key-reused")
    assert len(scheduler.orchestrations_started()) == 1


async def test_patch_moves_a_one_time_job_by_a_delay_from_now(scheduler: Scheduler) -> None:
    transaction_id = await scheduler.accepted("log.append", {"message": "m"})
    scheduler.host.advance(30)
    reply = await scheduler.api.request(
        "PATCH", f"/api/schedule/{transaction_id}", json_body={"delay": "P1DT2H"}
    )
    assert reply.status == 200, reply.body
    assert reply.json()["exec_at"] == "2026-12-02T10:00:30Z"

    recurring = await create(scheduler, {"cron": "@hourly", **LOG})
    refused = await scheduler.api.request(
        "PATCH",
        f"/api/schedule/{recurring.json()['transaction_id']}",
        json_body={"delay": "5m"},
    )
    assert refused.status == 422
    assert refused.json()["errors"][0]["loc"] == ["delay"]
