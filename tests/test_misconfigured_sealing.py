"""A malformed SEALING_KEYS (the review's trailing comma): creates are the documented 503,
due jobs wait without losing anything until it is fixed, a log line says what is wrong, and
the health details name the setting, never its value."""

import json
import logging
from collections.abc import Iterator
from datetime import timedelta

import pytest
from pydantic import SecretStr

from blueprints import dependencies
from tests.support.layout import APP_PACKAGES
from tests.support.scheduler import TEST_SEALING_KEYS, Scheduler, running_scheduler
from tests.support.services import AzuriteService

BROKEN = TEST_SEALING_KEYS + ","
KEY_MATERIAL = TEST_SEALING_KEYS.split(":", 1)[1]
WHAT_IS_WRONG = "SEALING_KEYS entry 2 is not of the form <id>:<base64 key>"


@pytest.fixture
def misconfigured(azurite: AzuriteService) -> Iterator[Scheduler]:
    with running_scheduler(azurite, sealing_keys=BROKEN) as running:
        yield running


async def test_a_create_is_a_503_naming_the_setting_and_nothing_is_stored(
    misconfigured: Scheduler, caplog: pytest.LogCaptureFixture
) -> None:
    reply = await misconfigured.schedule("log.append", {"message": "m"})
    assert reply.status == 503, reply.json()
    problem = reply.json()
    assert problem["type"].endswith(":not-configured")
    assert "SEALING_KEYS" in problem["detail"]
    assert misconfigured.orchestrations_started() == []
    assert (await misconfigured.api.get("/api/schedule")).json()["jobs"] == []
    assert WHAT_IS_WRONG in caplog.text
    assert KEY_MATERIAL not in caplog.text + json.dumps(problem)


async def test_the_health_details_name_the_setting_never_its_value(
    misconfigured: Scheduler,
) -> None:
    details = await misconfigured.api.get("/api/healthz/details")
    assert details.status == 503
    body = details.json()
    assert body["status"] == "degraded"
    assert body["durable_backend"] == "ok"
    assert body["settings"] == "invalid"
    assert body["settings_errors"] == [WHAT_IS_WRONG]
    assert KEY_MATERIAL not in json.dumps(body)
    anonymous = await misconfigured.api.get("/api/healthz")
    assert (anonymous.status, anonymous.json()) == (503, {"status": "degraded"})


async def test_a_due_job_waits_while_the_keys_are_broken_and_fires_once_they_are_fixed(
    scheduler: Scheduler, caplog: pytest.LogCaptureFixture
) -> None:
    due = scheduler.now() + timedelta(minutes=5)
    job = await scheduler.accepted("log.append", {"message": "kept"}, at=due)
    broken = scheduler.settings.model_copy(update={"sealing_keys": SecretStr(BROKEN)})
    with caplog.at_level(logging.ERROR), dependencies.overridden(settings=lambda: broken):
        scheduler.host.advance_to(due + timedelta(minutes=10))
        status = (await scheduler.api.get(f"/api/schedule/{job}/status")).json()
    assert status["state"] == "pending"
    assert any(
        record.name.startswith(APP_PACKAGES) and WHAT_IS_WRONG in record.getMessage()
        for record in caplog.records
    ), caplog.text
    assert KEY_MATERIAL not in caplog.text

    scheduler.host.advance(3600)
    status = (await scheduler.api.get(f"/api/schedule/{job}/status")).json()
    assert status["state"] == "succeeded"
    assert status["attempts"] == 1
