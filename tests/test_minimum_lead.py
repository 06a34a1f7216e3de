"""One minimum-lead rule (MIN_LEAD_SECONDS) for a create, a resume and the preview: the first
run is the first fire time at or after now + the lead, so the preview's first listed run is the
one a create at the same moment gets, and a resume gets it too."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.support.scheduler import START, Scheduler, running_scheduler
from tests.support.services import AzuriteService

EVERY_MINUTE = {"cron": "* * * * *", "prompt_type": "log.append", "payload": {"message": "m"}}


def at(clock: str) -> datetime:
    """A moment on START's day, `hh:mm:ss` UTC."""
    hours, minutes, seconds = (int(part) for part in clock.split(":"))
    return START.replace(hour=hours, minute=minutes, second=seconds)


async def previewed_first(scheduler: Scheduler) -> str:
    reply = await scheduler.api.get("/api/schedule/preview?cron=*%20*%20*%20*%20*&count=3")
    assert reply.status == 200, reply.body
    times: list[str] = reply.json()["fire_times"]
    return times[0]


async def created_first(scheduler: Scheduler, body: dict[str, Any]) -> str:
    reply = await scheduler.api.post("/api/schedule", body)
    assert reply.status == 202, reply.body
    first: str = reply.json()["next_fire_at"]
    return first


@pytest.mark.parametrize(
    ("lead", "now", "first"),
    [
        # The case: 60 s of lead at hh:59:30 is hh+1:00:30, so hh+1:01 (not hh+1:00).
        (60, "08:59:30", "2026-12-01T09:01:00Z"),
        # A fire time exactly at now + lead is taken.
        (60, "09:02:00", "2026-12-01T09:03:00Z"),
        # The local rule (MIN_LEAD_SECONDS=1): the next minute.
        (1, "08:59:30", "2026-12-01T09:00:00Z"),
        (1, "09:02:59", "2026-12-01T09:03:00Z"),
    ],
)
async def test_the_preview_lists_first_the_run_a_create_at_that_moment_gets(
    azurite: AzuriteService, lead: int, now: str, first: str
) -> None:
    with running_scheduler(azurite, start=at(now), min_lead_seconds=lead) as scheduler:
        assert await previewed_first(scheduler) == first
        assert await created_first(scheduler, EVERY_MINUTE) == first
        # A one-time job at that instant is accepted; a microsecond earlier is refused.
        one_time = {**EVERY_MINUTE, "cron": None, "exec_at": first}
        assert await created_first(scheduler, one_time) == first
        too_soon = datetime.fromisoformat(first) - timedelta(microseconds=1)
        if too_soon < scheduler.now() + timedelta(seconds=lead):
            refused = await scheduler.api.post(
                "/api/schedule", {**one_time, "exec_at": too_soon.isoformat()}
            )
            assert refused.status == 422
            assert refused.json()["errors"][0]["type"] == "min_lead"


@pytest.mark.parametrize(
    ("lead", "first"),
    [
        # Locally (MIN_LEAD_SECONDS=1) a resume at 09:02:55 does not skip 09:03.
        (1, "2026-12-01T09:03:00Z"),
        # With Azure's 60 s it is 09:04: the same run the preview lists first and a create gets.
        (60, "2026-12-01T09:04:00Z"),
    ],
)
async def test_a_resume_gets_the_run_a_create_at_that_moment_gets(
    azurite: AzuriteService, lead: int, first: str
) -> None:
    with running_scheduler(azurite, start=at("09:00:10"), min_lead_seconds=lead) as scheduler:
        transaction_id = (await scheduler.api.post("/api/schedule", EVERY_MINUTE)).json()[
            "transaction_id"
        ]
        assert (await scheduler.api.post(f"/api/schedule/{transaction_id}/pause")).status == 200
        scheduler.host.advance_to(at("09:02:55"))

        resumed = await scheduler.api.post(f"/api/schedule/{transaction_id}/resume")
        assert resumed.status == 200, resumed.body
        assert resumed.json()["next_fire_at"] == first
        assert await previewed_first(scheduler) == first
        assert await created_first(scheduler, EVERY_MINUTE) == first
        # And it fires then.
        scheduler.host.advance_to(datetime.fromisoformat(first) + timedelta(seconds=5))
        status = (await scheduler.api.get(f"/api/schedule/{transaction_id}/status")).json()
        assert status["last_run"]["due_at"] == first


async def test_a_delay_under_the_lead_is_refused_and_at_the_lead_accepted(
    azurite: AzuriteService,
) -> None:
    with running_scheduler(azurite, start=at("09:00:00"), min_lead_seconds=10) as scheduler:
        body = {"prompt_type": "log.append", "payload": {"message": "m"}}
        refused = await scheduler.api.post("/api/schedule", {"delay": "9s", **body})
        assert refused.status == 422
        assert await created_first(scheduler, {"delay": "10s", **body}) == (
            datetime(2026, 12, 1, 9, 0, 10, tzinfo=UTC).isoformat().replace("+00:00", "Z")
        )
