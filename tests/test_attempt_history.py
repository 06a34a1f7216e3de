"""Every attempt is on the job's record: when it was due, when it fired, how late, how it ended."""

import itertools
from datetime import datetime, timedelta
from typing import Any

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from tests.support.scheduler import START, Scheduler
from tests.test_backend_faults import store_down


async def status_of(scheduler: Scheduler, transaction_id: str) -> dict[str, Any]:
    reply = await scheduler.api.get(f"/api/schedule/{transaction_id}/status")
    assert reply.status == 200, reply.body
    status: dict[str, Any] = reply.json()
    return status


def parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def test_each_attempt_of_a_retried_job_says_when_it_was_due_fired_and_ended(
    scheduler: Scheduler, httpserver: HTTPServer
) -> None:
    answers = iter([500, 503, 200])
    httpserver.expect_request("/flaky").respond_with_handler(
        lambda _request: Response("x", status=next(answers))
    )
    exec_at = START + timedelta(minutes=5)
    transaction_id = await scheduler.accepted(
        "http.call",
        {"url": httpserver.url_for("/flaky")},
        at=exec_at,
        retry={"max_attempts": 3, "initial_delay_seconds": 60},
    )
    scheduler.host.advance_to(exec_at + timedelta(minutes=30))

    status = await status_of(scheduler, transaction_id)
    assert status["state"] == "succeeded"
    history = status["attempt_history"]
    assert [(a["attempt"], a["ok"], a["status_code"]) for a in history] == [
        (1, False, 500),
        (2, False, 503),
        (3, True, 200),
    ]
    assert history[0]["error"] == "target answered 500 INTERNAL SERVER ERROR"
    assert history[2]["error"] is None
    assert history[0]["due_at"] == "2026-12-01T08:05:00Z"
    # A retry is due when its wait ends (60 s, then 120 s, each spread by up to 10 %).
    for before, after in itertools.pairwise(history):
        assert parse(after["due_at"]) > parse(before["finished_at"])
    assert parse(history[1]["due_at"]) - parse(history[0]["finished_at"]) >= timedelta(seconds=60)
    for attempt in history:
        # The virtual clock is never late: each fired exactly when it was due.
        assert attempt["fired_at"] == attempt["due_at"]
        assert attempt["lateness_ms"] == 0
        assert attempt["finished_at"] is not None


async def test_an_attempt_held_up_by_a_store_outage_reports_its_lateness(
    scheduler: Scheduler, httpserver: HTTPServer
) -> None:
    httpserver.expect_request("/hook").respond_with_data("ok")
    exec_at = START + timedelta(minutes=10)
    transaction_id = await scheduler.accepted(
        "http.call", {"url": httpserver.url_for("/hook")}, at=exec_at
    )
    with store_down():
        scheduler.host.advance_to(exec_at + timedelta(minutes=2))
    scheduler.host.advance_to(exec_at + timedelta(hours=1))

    assert len(httpserver.log) == 1
    (attempt,) = (await status_of(scheduler, transaction_id))["attempt_history"]
    assert attempt["due_at"] == "2026-12-01T08:10:00Z"
    late = parse(attempt["fired_at"]) - exec_at
    assert late > timedelta(minutes=2)  # it waited for the store to come back
    assert attempt["lateness_ms"] == late // timedelta(milliseconds=1)
    assert attempt["ok"] is True
    assert attempt["status_code"] == 200


async def test_a_recurring_job_keeps_its_last_twenty_attempts(
    scheduler: Scheduler, httpserver: HTTPServer
) -> None:
    seen: list[Request] = []

    def target(request: Request) -> Response:
        seen.append(request)
        return Response("ok")

    httpserver.expect_request("/tick").respond_with_handler(target)
    reply = await scheduler.api.post(
        "/api/schedule",
        {
            "prompt_type": "http.call",
            "payload": {"url": httpserver.url_for("/tick")},
            "cron": "*/5 * * * *",
        },
    )
    assert reply.status == 202, reply.body
    transaction_id = reply.json()["transaction_id"]
    scheduler.host.advance_to(START + timedelta(minutes=5 * 22 + 1))

    assert len(seen) == 22
    status = await status_of(scheduler, transaction_id)
    history = status["attempt_history"]
    assert len(history) == 20
    # The oldest two runs fell off; the newest is the last run's.
    assert history[0]["due_at"] == "2026-12-01T08:15:00Z"
    assert history[-1]["due_at"] == status["last_run"]["due_at"] == "2026-12-01T09:50:00Z"
    # A listing page may hold hundreds of jobs: each shows its last attempt, not its history.
    (listed,) = (await scheduler.api.get("/api/schedule")).json()["jobs"]
    assert "attempt_history" not in listed
    assert listed["last_attempt"] == history[-1]
