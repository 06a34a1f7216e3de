"""Recurring jobs through the public routes: runs on a wall clock across DST, skips, limits."""

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from delivery.prompts.http_call import TRANSACTION_HEADER
from scheduling.timing import format_utc
from tests.support.app_client import Reply
from tests.support.scheduler import Scheduler, running_scheduler
from tests.support.services import AzuriteService


async def create(scheduler: Scheduler, **fields: Any) -> Reply:
    body = {"prompt_type": "log.append", "payload": {"message": "tick"}, **fields}
    return await scheduler.api.post("/api/schedule", body)


async def status_of(scheduler: Scheduler, transaction_id: str) -> dict[str, Any]:
    reply = await scheduler.api.get(f"/api/schedule/{transaction_id}/status")
    assert reply.status == 200, reply.body
    status: dict[str, Any] = reply.json()
    return status


def arrivals(scheduler: Scheduler, httpserver: HTTPServer, path: str) -> list[datetime]:
    """Each request's arrival on the scheduler's clock."""
    seen: list[datetime] = []

    def record(request: Request) -> Response:
        seen.append(scheduler.now())
        return Response("ok")

    httpserver.expect_request(path).respond_with_handler(record)
    return seen


async def test_a_daily_paris_job_fires_at_nine_local_across_the_dst_change(
    scheduler: Scheduler, httpserver: HTTPServer
) -> None:
    # 2026-12-01 starts the suite's clock; Paris is +01:00 until 2027-03-28, then +02:00.
    seen = arrivals(scheduler, httpserver, "/daily")
    scheduler.host.set_clock(datetime(2027, 3, 22, 12, tzinfo=UTC))
    reply = await create(
        scheduler,
        cron="0 9 * * *",
        timezone="Europe/Paris",
        prompt_type="http.call",
        payload={"url": httpserver.url_for("/daily")},
    )
    assert reply.status == 202, reply.body
    assert reply.json()["next_fire_at"] == "2027-03-23T08:00:00Z"
    transaction_id = reply.json()["transaction_id"]

    scheduler.host.advance_to(datetime(2027, 4, 1, 23, tzinfo=UTC))

    winter = [datetime(2027, 3, day, 8, tzinfo=UTC) for day in range(23, 28)]
    summer = [
        datetime(2027, 3, 28, 7, tzinfo=UTC),
        *(datetime(2027, 3, day, 7, tzinfo=UTC) for day in range(29, 32)),
        datetime(2027, 4, 1, 7, tzinfo=UTC),
    ]
    assert seen == winter + summer  # ten runs, each once, at 09:00 Paris time
    assert {request.headers[TRANSACTION_HEADER] for request, _ in httpserver.log} == {
        transaction_id
    }
    status = await status_of(scheduler, transaction_id)
    assert status["state"] == "pending"
    assert status["runs"] == 10
    assert status["next_fire_at"] == "2027-04-02T07:00:00Z"
    assert status["last_run"]["state"] == "succeeded"
    assert status["last_run"]["due_at"] == "2027-04-01T07:00:00Z"
    assert status["last_run"]["outcome"] == {"ok": True, "status_code": 200, "error": None}
    assert status["recurrence"]["cron"] == "0 9 * * *"
    listed = (await scheduler.api.get("/api/schedule")).json()["jobs"]
    assert [(job["transaction_id"], job["next_fire_at"]) for job in listed] == [
        (transaction_id, "2027-04-02T07:00:00Z")
    ]
    # One episode per run: the history of the tenth replays no more than the first's (20
    # events: 12, and the calls that take and give back the slot of its flow key).
    orchestration = scheduler.orchestration(transaction_id)
    assert orchestration.episode_count == 11
    assert max(orchestration.max_history_length_per_episode) <= 20


async def test_a_schedule_ends_at_max_runs_with_the_last_runs_outcome(
    scheduler: Scheduler,
) -> None:
    reply = await create(scheduler, cron="*/5 * * * *", max_runs=3)
    transaction_id = reply.json()["transaction_id"]
    scheduler.host.advance(3600)

    status = await status_of(scheduler, transaction_id)
    assert status["state"] == "succeeded"
    assert status["runs"] == 3
    logs = (await scheduler.api.get(f"/api/schedule/{transaction_id}/logs")).json()["entries"]
    assert [entry["kind"] for entry in logs].count("log") == 3
    assert (await scheduler.api.get("/api/schedule")).json()["jobs"] == []


async def test_a_run_still_retrying_when_the_next_is_due_skips_it(
    scheduler: Scheduler, httpserver: HTTPServer
) -> None:
    answers = iter([503, 503, 200, 200, 200])
    seen: list[datetime] = []

    def flaky(request: Request) -> Response:
        seen.append(scheduler.now())
        return Response("", status=next(answers))

    httpserver.expect_request("/flaky").respond_with_handler(flaky)
    reply = await create(
        scheduler,
        cron="*/10 * * * *",
        prompt_type="http.call",
        payload={"url": httpserver.url_for("/flaky")},
        retry={"max_attempts": 3, "initial_delay_seconds": 420, "max_delay_seconds": 420},
    )
    transaction_id = reply.json()["transaction_id"]
    first = datetime.fromisoformat(reply.json()["next_fire_at"])
    scheduler.host.advance_to(first + timedelta(minutes=35))

    # Run 1: attempts at +0, +7 and +14 min; the run due at +10 min fell inside it.
    assert seen[:3] == [first, first + timedelta(minutes=7), first + timedelta(minutes=14)]
    assert seen[3] == first + timedelta(minutes=20)
    status = await status_of(scheduler, transaction_id)
    assert status["skipped_runs"] == 1
    logs = (await scheduler.api.get(f"/api/schedule/{transaction_id}/logs")).json()["entries"]
    skipped = [entry for entry in logs if entry["kind"] == "skipped"]
    assert [entry["fields"]["count"] for entry in skipped] == [1]


async def test_bad_schedules_are_422_naming_the_field(scheduler: Scheduler) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"cron": "* * * * * *"}, "cron"),
        ({"cron": "0 9 * * *", "timezone": "Europe/Atlantis"}, "timezone"),
        ({"cron": "0 0 31 4 *"}, "cron"),
        ({"cron": "0 9 * * *", "exec_at": "2026-12-02T00:00:00Z"}, "cron"),
        ({"exec_at": "2026-12-02T00:00:00Z", "max_runs": 3}, "max_runs"),
        ({"exec_at": "2026-12-02T00:00:00Z", "timezone": "UTC"}, "timezone"),
        ({"exec_local": "2026-12-02T09:00:00", "dst_fold": "both"}, "dst_fold"),
        ({"exec_local": "2026-12-02T09:00:00+01:00"}, "exec_local"),
        ({"cron": "0 9 * * *", "end_at": "2026-11-01T00:00:00Z"}, "cron"),
        ({"cron": "0 9 * * *", "start_at": "9999-12-31T00:00:00Z"}, "cron"),
        ({"exec_local": "0001-01-01T00:00:00", "timezone": "Asia/Tokyo"}, "exec_local"),
        ({}, "exec_at"),
    ]
    for fields, field in cases:
        reply = await create(scheduler, **fields)
        assert reply.status == 422, (fields, reply.body)
        assert reply.json()["errors"][0]["loc"][0] == field, (fields, reply.json())
    assert scheduler.orchestrations_started() == []


async def test_a_one_time_job_at_a_local_wall_time(
    scheduler: Scheduler, httpserver: HTTPServer
) -> None:
    seen = arrivals(scheduler, httpserver, "/local")
    reply = await create(
        scheduler,
        exec_local="2026-12-01T18:30:00",
        timezone="Asia/Kathmandu",
        prompt_type="http.call",
        payload={"url": httpserver.url_for("/local")},
    )
    assert reply.status == 202, reply.body
    assert reply.json()["exec_at"] == "2026-12-01T12:45:00Z"
    scheduler.host.advance(24 * 3600)
    assert seen == [datetime(2026, 12, 1, 12, 45, tzinfo=UTC)]


async def test_pause_stops_runs_and_resume_fires_at_the_next_future_time_without_a_burst(
    scheduler: Scheduler, httpserver: HTTPServer
) -> None:
    seen = arrivals(scheduler, httpserver, "/hourly")
    reply = await create(
        scheduler,
        cron="0 * * * *",
        prompt_type="http.call",
        payload={"url": httpserver.url_for("/hourly")},
    )
    transaction_id = reply.json()["transaction_id"]
    scheduler.host.advance_to(datetime(2026, 12, 1, 10, 30, tzinfo=UTC))
    assert len(seen) == 2  # 09:00, 10:00

    paused = await scheduler.api.post(f"/api/schedule/{transaction_id}/pause")
    assert paused.status == 200, paused.body
    assert paused.json()["state"] == "paused"
    assert paused.json()["next_fire_at"] is None
    scheduler.host.advance_to(datetime(2026, 12, 1, 15, 30, tzinfo=UTC))
    assert len(seen) == 2  # nothing while paused

    resumed = await scheduler.api.post(f"/api/schedule/{transaction_id}/resume")
    assert resumed.status == 200, resumed.body
    assert resumed.json()["next_fire_at"] == "2026-12-01T16:00:00Z"
    scheduler.host.advance_to(datetime(2026, 12, 1, 17, 30, tzinfo=UTC))
    # The five missed runs are not made up: 16:00 and 17:00 only.
    assert seen[2:] == [
        datetime(2026, 12, 1, 16, tzinfo=UTC),
        datetime(2026, 12, 1, 17, tzinfo=UTC),
    ]
    kinds = [
        entry["kind"]
        for entry in (await scheduler.api.get(f"/api/schedule/{transaction_id}/logs")).json()[
            "entries"
        ]
    ]
    assert "paused" in kinds
    assert "resumed" in kinds
    assert (await scheduler.api.post(f"/api/schedule/{transaction_id}/resume")).status == 409


async def test_resuming_a_job_whose_schedule_ended_before_its_first_run_cancels_it(
    scheduler: Scheduler, httpserver: HTTPServer
) -> None:
    seen = arrivals(scheduler, httpserver, "/never")
    reply = await create(
        scheduler,
        cron="*/5 * * * *",
        end_at="2026-12-01T08:12:00Z",
        prompt_type="http.call",
        payload={"url": httpserver.url_for("/never")},
    )
    transaction_id = reply.json()["transaction_id"]
    assert (await scheduler.api.post(f"/api/schedule/{transaction_id}/pause")).status == 200
    scheduler.host.advance(3600)

    resumed = await scheduler.api.post(f"/api/schedule/{transaction_id}/resume")
    assert resumed.status == 200, resumed.body
    assert (resumed.json()["state"], resumed.json()["next_fire_at"]) == ("cancelled", None)
    assert (await scheduler.api.get("/api/schedule")).json()["jobs"] == []
    entries = (await scheduler.api.get(f"/api/schedule/{transaction_id}/logs")).json()["entries"]
    assert entries[-1]["kind"] == "cancelled"
    assert "no run left" in entries[-1]["message"]
    scheduler.host.advance(3600)
    assert seen == []


async def test_a_one_time_job_cannot_be_paused(scheduler: Scheduler) -> None:
    transaction_id = await scheduler.accepted("log.append", {"message": "m"})
    reply = await scheduler.api.post(f"/api/schedule/{transaction_id}/pause")
    assert reply.status == 409
    assert "recurring" in reply.json()["detail"]


async def test_patch_moves_a_pending_job_which_fires_at_the_new_time_never_the_old(
    scheduler: Scheduler, httpserver: HTTPServer
) -> None:
    seen = arrivals(scheduler, httpserver, "/moved")
    old_time = datetime(2026, 12, 1, 9, tzinfo=UTC)
    transaction_id = await scheduler.accepted(
        "http.call", {"url": httpserver.url_for("/moved")}, at=old_time
    )
    scheduler.host.run()

    moved = await scheduler.api.request(
        "PATCH",
        f"/api/schedule/{transaction_id}",
        json_body={"exec_at": "2026-12-01T11:00:00+01:00"},
    )
    assert moved.status == 200, moved.body
    assert moved.json()["exec_at"] == "2026-12-01T10:00:00Z"
    assert moved.json()["transaction_id"] == transaction_id
    scheduler.host.advance_to(datetime(2026, 12, 2, tzinfo=UTC))

    assert seen == [datetime(2026, 12, 1, 10, tzinfo=UTC)]
    assert (await status_of(scheduler, transaction_id))["state"] == "succeeded"
    listed = (await scheduler.api.get("/api/schedule")).json()["jobs"]
    assert listed == []


async def test_patch_changes_a_recurring_jobs_cron_and_zone(
    scheduler: Scheduler, httpserver: HTTPServer
) -> None:
    seen = arrivals(scheduler, httpserver, "/cron")
    reply = await create(
        scheduler,
        cron="0 9 * * *",
        prompt_type="http.call",
        payload={"url": httpserver.url_for("/cron")},
    )
    transaction_id = reply.json()["transaction_id"]
    changed = await scheduler.api.request(
        "PATCH",
        f"/api/schedule/{transaction_id}",
        json_body={"cron": "30 12 * * *", "timezone": "America/New_York", "max_runs": 2},
    )
    assert changed.status == 200, changed.body
    assert changed.json()["next_fire_at"] == "2026-12-01T17:30:00Z"
    scheduler.host.advance(4 * 24 * 3600)
    assert seen == [
        datetime(2026, 12, 1, 17, 30, tzinfo=UTC),
        datetime(2026, 12, 2, 17, 30, tzinfo=UTC),
    ]


async def test_patch_is_checked_like_a_create(scheduler: Scheduler) -> None:
    one_time = await scheduler.accepted("log.append", {"message": "m"})
    recurring = (await create(scheduler, cron="@hourly")).json()["transaction_id"]
    cases = [
        (one_time, {"exec_at": "2026-12-01T08:00:30Z"}, 422, "exec_at"),  # under the lead
        (one_time, {"cron": "@daily"}, 422, "cron"),
        (recurring, {"exec_at": "2026-12-02T00:00:00Z"}, 422, "exec_at"),
        (recurring, {"timezone": "Nowhere/Else"}, 422, "timezone"),
        (one_time, {"bogus": 1}, 422, "bogus"),
    ]
    for transaction_id, body, status, field in cases:
        reply = await scheduler.api.request(
            "PATCH", f"/api/schedule/{transaction_id}", json_body=body
        )
        assert reply.status == status, (body, reply.body)
        assert reply.json()["errors"][0]["loc"][0] == field, (body, reply.json())


async def test_patch_racing_the_fire_either_moves_the_job_or_is_409(
    scheduler: Scheduler, httpserver: HTTPServer
) -> None:
    answers: list[Reply] = []

    def patch_meanwhile(request: Request) -> Response:
        answers.append(
            asyncio.run(
                scheduler.api.request(
                    "PATCH",
                    f"/api/schedule/{transaction_id}",
                    json_body={"exec_at": "2026-12-02T00:00:00Z"},
                )
            )
        )
        return Response("ok")

    httpserver.expect_request("/racing").respond_with_handler(patch_meanwhile)
    transaction_id = await scheduler.accepted(
        "http.call", {"url": httpserver.url_for("/racing")}, at=datetime(2026, 12, 1, 9, tzinfo=UTC)
    )
    scheduler.host.advance_to(datetime(2026, 12, 3, tzinfo=UTC))
    # The attempt had claimed the job: the change is refused, and it fired once.
    assert [answer.status for answer in answers] == [409]
    assert len(httpserver.log) == 1
    ended = await scheduler.api.request(
        "PATCH", f"/api/schedule/{transaction_id}", json_body={"exec_at": "2026-12-04T00:00:00Z"}
    )
    assert ended.status == 409


async def test_a_recurring_job_deleted_between_runs_runs_no_more(
    scheduler: Scheduler, httpserver: HTTPServer
) -> None:
    seen = arrivals(scheduler, httpserver, "/between")
    reply = await create(
        scheduler,
        cron="0 * * * *",
        prompt_type="http.call",
        payload={"url": httpserver.url_for("/between")},
    )
    transaction_id = reply.json()["transaction_id"]
    scheduler.host.advance_to(datetime(2026, 12, 1, 10, 30, tzinfo=UTC))
    deleted = await scheduler.api.delete(f"/api/schedule/{transaction_id}")
    assert deleted.status == 200
    assert deleted.json()["state_before"] == "pending"
    scheduler.host.advance_to(datetime(2026, 12, 2, tzinfo=UTC))
    assert len(seen) == 2
    assert (await status_of(scheduler, transaction_id))["state"] == "cancelled"


async def test_preview_answers_fire_times_and_creates_nothing(scheduler: Scheduler) -> None:
    reply = await scheduler.api.get(
        "/api/schedule/preview?cron=30%201%20*%20*%20*&timezone=Europe/London&count=3"
        "&dst_gap=skip&start_at=2027-03-27T00:00:00Z"
    )
    assert reply.status == 200, reply.body
    assert reply.json() == {
        "fire_times": ["2027-03-27T01:30:00Z", "2027-03-29T00:30:00Z", "2027-03-30T00:30:00Z"]
    }
    bad = await scheduler.api.get("/api/schedule/preview?cron=61%20*%20*%20*%20*")
    assert bad.status == 422
    assert bad.json()["errors"][0]["loc"] == ["cron"]
    assert scheduler.orchestrations_started() == []


async def test_after_downtime_missed_runs_collapse_into_one_catch_up_run(
    scheduler: Scheduler, httpserver: HTTPServer
) -> None:
    seen = arrivals(scheduler, httpserver, "/catchup")
    reply = await create(
        scheduler,
        cron="0 * * * *",
        prompt_type="http.call",
        payload={"url": httpserver.url_for("/catchup")},
    )
    transaction_id = reply.json()["transaction_id"]
    scheduler.host.advance_to(datetime(2026, 12, 1, 9, 30, tzinfo=UTC))
    assert len(seen) == 1
    # The app is down from 09:30 to 14:20: nothing is processed, then everything due is.
    scheduler.host.set_clock(datetime(2026, 12, 1, 14, 20, tzinfo=UTC))
    scheduler.host.run()
    assert seen[1:] == [datetime(2026, 12, 1, 14, 20, tzinfo=UTC)]  # one catch-up run
    status = await status_of(scheduler, transaction_id)
    assert status["next_fire_at"] == "2026-12-01T15:00:00Z"
    assert status["skipped_runs"] == 4  # 11:00, 12:00, 13:00, 14:00


# -- the reproductions of issue 20, through the routes and fired jobs -------------------------


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


async def preview_of(scheduler: Scheduler, **params: str) -> list[str]:
    reply = await scheduler.api.get(f"/api/schedule/preview?{urlencode(params)}")
    assert reply.status == 200, reply.body
    fire_times: list[str] = reply.json()["fire_times"]
    return fire_times


async def test_vancouver_runs_on_the_pinned_zone_data(
    azurite: AzuriteService, httpserver: HTTPServer
) -> None:
    # tzdata 2026f keeps British Columbia on UTC-7 from November 2026; the host's older files
    # fall back to UTC-8, which put Monday's run at 17:00Z.
    with running_scheduler(azurite, start=utc(2026, 10, 29, 12)) as scheduler:
        schedule = {"cron": "0 9 * * 1-5", "timezone": "America/Vancouver"}
        assert await preview_of(scheduler, **schedule, count="3") == [
            "2026-10-29T16:00:00Z",
            "2026-10-30T16:00:00Z",
            "2026-11-02T16:00:00Z",
        ]
        seen = arrivals(scheduler, httpserver, "/vancouver")
        reply = await create(
            scheduler,
            **schedule,
            prompt_type="http.call",
            payload={"url": httpserver.url_for("/vancouver")},
        )
        assert reply.status == 202, reply.body
        scheduler.host.advance_to(utc(2026, 11, 3))
        assert seen == [utc(2026, 10, 29, 16), utc(2026, 10, 30, 16), utc(2026, 11, 2, 16)]


async def test_fold_both_fires_each_wall_time_of_the_repeated_hour_twice(
    azurite: AzuriteService, httpserver: HTTPServer
) -> None:
    # 2027-10-31: 02:00 BST falls back to 01:00 GMT; 01:00 and 01:30 happen twice.
    with running_scheduler(azurite, start=utc(2027, 10, 30, 12)) as scheduler:
        schedule = {"cron": "0,30 1 * * *", "timezone": "Europe/London", "dst_fold": "both"}
        expected = [
            "2027-10-31T00:00:00Z",
            "2027-10-31T00:30:00Z",
            "2027-10-31T01:00:00Z",
            "2027-10-31T01:30:00Z",
        ]
        assert await preview_of(scheduler, **schedule, count="4") == expected
        # The same runs count against end_at (inclusive).
        assert (
            await preview_of(scheduler, **schedule, count="10", end_at="2027-10-31T01:00:00Z")
            == expected[:3]
        )
        seen = arrivals(scheduler, httpserver, "/fold")
        reply = await create(
            scheduler,
            **schedule,
            max_runs=3,
            prompt_type="http.call",
            payload={"url": httpserver.url_for("/fold")},
        )
        assert reply.status == 202, reply.body
        scheduler.host.advance_to(utc(2027, 11, 2))
        # max_runs=3 counts runs in time order: the first pass of both, then 01:00 GMT.
        assert seen == [utc(2027, 10, 31, 0, 0), utc(2027, 10, 31, 0, 30), utc(2027, 10, 31, 1)]
        status = await status_of(scheduler, reply.json()["transaction_id"])
        assert (status["state"], status["runs"], status["skipped_runs"]) == ("succeeded", 3, 0)


async def test_fold_both_every_quarter_hour_in_the_repeated_hour(
    azurite: AzuriteService, httpserver: HTTPServer
) -> None:
    with running_scheduler(azurite, start=utc(2027, 10, 31, 0, 5)) as scheduler:
        schedule = {"cron": "*/15 * * * *", "timezone": "Europe/London", "dst_fold": "both"}
        quarters = [utc(2027, 10, 31, 0, 15) + timedelta(minutes=15 * n) for n in range(8)]
        assert await preview_of(scheduler, **schedule, count="8") == [
            format_utc(moment) for moment in quarters
        ]
        seen = arrivals(scheduler, httpserver, "/quarters")
        reply = await create(
            scheduler,
            **schedule,
            prompt_type="http.call",
            payload={"url": httpserver.url_for("/quarters")},
        )
        assert reply.status == 202, reply.body
        scheduler.host.advance_to(quarters[-1])
        assert seen == quarters


async def test_exec_local_with_seconds_in_a_gap_fires_at_the_jump(
    azurite: AzuriteService, httpserver: HTTPServer
) -> None:
    # 01:30:30 does not exist on 2027-03-28 in London: the clocks jumped at 01:00:00 UTC.
    with running_scheduler(azurite, start=utc(2027, 3, 27, 12)) as scheduler:
        seen = arrivals(scheduler, httpserver, "/jump")
        reply = await create(
            scheduler,
            exec_local="2027-03-28T01:30:30",
            timezone="Europe/London",
            dst_gap="shift",
            prompt_type="http.call",
            payload={"url": httpserver.url_for("/jump")},
        )
        assert reply.status == 202, reply.body
        assert reply.json()["exec_at"] == "2027-03-28T01:00:00Z"
        scheduler.host.advance_to(utc(2027, 3, 29))
        assert seen == [utc(2027, 3, 28, 1)]


async def test_a_one_value_range_fires_at_that_value_only(
    scheduler: Scheduler, httpserver: HTTPServer
) -> None:
    assert await preview_of(scheduler, cron="0 5-5 * * *", count="3") == [
        "2026-12-02T05:00:00Z",
        "2026-12-03T05:00:00Z",
        "2026-12-04T05:00:00Z",
    ]
    seen = arrivals(scheduler, httpserver, "/five")
    reply = await create(
        scheduler,
        cron="0 5-5 * * *",
        prompt_type="http.call",
        payload={"url": httpserver.url_for("/five")},
    )
    assert reply.status == 202, reply.body
    scheduler.host.advance_to(utc(2026, 12, 4, 6))
    assert seen == [utc(2026, 12, 2, 5), utc(2026, 12, 3, 5), utc(2026, 12, 4, 5)]


async def test_what_the_cron_engine_does_not_take_is_a_422_naming_cron(
    scheduler: Scheduler,
) -> None:
    refused = {  # the expression, and the part the answer names
        "H * * * *": "'H'",
        "0 0 ? * MON": "'?'",
        "0 0 15W * *": "'15W'",
        "5-5/10 * * * *": "'5-5/10'",
        "0 0 L/2 * *": "'L/2'",
        "0 0 * * * *": "seconds",
    }
    for cron, named in refused.items():
        for reply in (
            await create(scheduler, cron=cron),
            await scheduler.api.get(f"/api/schedule/preview?{urlencode({'cron': cron})}"),
        ):
            assert reply.status == 422, (cron, reply.body)
            assert reply.content_type == "application/problem+json"
            error = reply.json()["errors"][0]
            assert error["loc"] == ["cron"], (cron, reply.json())
            assert named in error["msg"], (cron, error)
    assert scheduler.orchestrations_started() == []


async def test_one_schedule_written_two_ways_is_one_idempotent_request(
    scheduler: Scheduler,
) -> None:
    body = {"prompt_type": "log.append", "payload": {"message": "tick"}}
    headers = {"Content-Type": "application/json", "Idempotency-Key": "weekday-nine"}
    first, again = [
        await scheduler.api.request(
            "POST",
            "/api/schedule",
            body=json.dumps({**body, "cron": cron}).encode(),
            headers=headers,
        )
        for cron in ("0  9 * *\tmon-fri", "0 9 * * MON-FRI")
    ]
    assert first.status == 202, first.body
    assert again.status == 202, again.body  # not a 409: the same request
    assert again.headers["idempotent-replayed"] == "true"
    status = await status_of(scheduler, first.json()["transaction_id"])
    assert status["recurrence"]["cron"] == "0 9 * * MON-FRI"
