"""Recurring jobs through the public routes: runs on a wall clock across DST, skips, limits."""

from datetime import UTC, datetime, timedelta
from typing import Any

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from scheduling.prompts.http_call import TRANSACTION_HEADER
from tests.support.app_client import Reply
from tests.support.scheduler import Scheduler


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
    assert status["recurrence"]["cron"] == "0 9 * * *"
    listed = (await scheduler.api.get("/api/schedule")).json()["jobs"]
    assert [(job["transaction_id"], job["next_fire_at"]) for job in listed] == [
        (transaction_id, "2027-04-02T07:00:00Z")
    ]
    # One episode per run: the history of the tenth replays no more than the first's.
    orchestration = scheduler.orchestration(transaction_id)
    assert orchestration.episode_count == 11
    assert max(orchestration.max_history_length_per_episode) <= 12


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
