"""Dead letters through the public routes: failed jobs listed with their attempts, replayed,
cleared, and dropped past their retention."""

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from azure.functions.timer import TimerRequest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from blueprints import dependencies
from function_app import app
from local_durable_host.worker_calls import index_functions
from storage.job_store import DueRange
from tests.support.app_client import Reply
from tests.support.interleaving import interleaved, on_loop
from tests.support.scheduler import START, Scheduler
from tests.test_backend_faults import store_down

RETRY = {"max_attempts": 3, "initial_delay_seconds": 60}


@pytest.fixture
def call_sweep(scheduler: Scheduler) -> Callable[[], Any]:
    """The retention sweep, called as the host's timer would call it."""
    (function,) = [f for f in index_functions(app) if f.get_function_name() == "sweep_failed_jobs"]
    sweep = function.get_user_function()
    return lambda: sweep(timer=TimerRequest(), client=scheduler.host.client_binding())


class Receiver:
    """A target whose answer the test sets; it counts what it got."""

    def __init__(self, httpserver: HTTPServer, path: str = "/hook") -> None:
        self.status = 500
        self.received: list[Request] = []
        httpserver.expect_request(path).respond_with_handler(self._answer)
        self.url = httpserver.url_for(path)

    def _answer(self, request: Request) -> Response:
        self.received.append(request)
        return Response("answer", status=self.status)


async def failed_job(
    scheduler: Scheduler, receiver: Receiver, at: datetime | None = None, **fields: Any
) -> str:
    """A job whose every attempt the receiver answers 500, run until it has failed."""
    exec_at = at or scheduler.now() + timedelta(minutes=5)
    transaction_id = await scheduler.accepted(
        "http.call", {"url": receiver.url, **fields}, at=exec_at, retry=RETRY
    )
    scheduler.host.advance_to(exec_at + timedelta(minutes=10))
    status = (await scheduler.api.get(f"/api/schedule/{transaction_id}/status")).json()
    assert status["state"] == "failed", status
    return transaction_id


async def failed_list(scheduler: Scheduler, query: str = "") -> dict[str, Any]:
    reply = await scheduler.api.get(f"/api/failed{query}")
    assert reply.status == 200, reply.body
    body: dict[str, Any] = reply.json()
    return body


async def failed_ids(scheduler: Scheduler, query: str = "") -> list[str]:
    return [job["transaction_id"] for job in (await failed_list(scheduler, query))["jobs"]]


async def log_kinds(scheduler: Scheduler, transaction_id: str) -> list[str]:
    reply = await scheduler.api.get(f"/api/schedule/{transaction_id}/logs")
    assert reply.status == 200, reply.body
    return [entry["kind"] for entry in reply.json()["entries"]]


def assert_problem(reply: Reply, status: int) -> None:
    assert reply.status == status, reply.body
    assert reply.content_type == "application/problem+json"


async def test_a_job_out_of_retries_is_listed_with_its_attempts_and_a_replay_runs_it_again(
    scheduler: Scheduler, httpserver: HTTPServer
) -> None:
    receiver = Receiver(httpserver)
    exec_at = START + timedelta(minutes=5)
    transaction_id = await failed_job(scheduler, receiver, at=exec_at)
    assert len(receiver.received) == 3

    (job,) = (await failed_list(scheduler))["jobs"]
    assert job["transaction_id"] == transaction_id
    assert job["state"] == "failed"
    assert job["prompt_type"] == "http.call"
    assert job["last_outcome"]["status_code"] == 500
    attempts = job["attempt_history"]
    assert [(a["attempt"], a["ok"], a["status_code"]) for a in attempts] == [
        (1, False, 500),
        (2, False, 500),
        (3, False, 500),
    ]
    assert attempts[0]["due_at"] == "2026-12-01T08:05:00Z"
    assert all(a["lateness_ms"] == 0 and a["fired_at"] == a["due_at"] for a in attempts)
    assert job["failed_at"] == attempts[-1]["finished_at"]
    first_request = receiver.received[0]

    receiver.status = 200
    scheduler.host.advance(3600)
    replayed_at = scheduler.now()
    reply = await scheduler.api.post(f"/api/schedule/{transaction_id}/replay")
    assert reply.status == 202, reply.body
    view = reply.json()
    assert view["state"] == "pending"
    assert view["attempts"] == 0
    assert view["next_fire_at"] == view["replayed_at"] == "2026-12-01T09:15:00Z"
    # Its row in the failed index went with the replay, not only when a reader came by.
    assert scheduler.job_store.failure_page(DueRange(), 10, None) == ([], None)
    assert await failed_ids(scheduler) == []  # out of the list at once

    scheduler.host.run()
    assert len(receiver.received) == 4  # fired once more, due now
    again = receiver.received[-1]
    assert again.headers["X-Scheduler-Transaction-Id"] == transaction_id
    assert again.get_data() == first_request.get_data()
    status = (await scheduler.api.get(f"/api/schedule/{transaction_id}/status")).json()
    assert status["state"] == "succeeded"
    assert status["attempts"] == 1  # a new run: its attempts count from 1
    assert status["failed_at"] is None
    newest = status["attempt_history"][-1]
    assert (newest["attempt"], newest["ok"], newest["due_at"]) == (1, True, "2026-12-01T09:15:00Z")
    assert len(status["attempt_history"]) == 4
    assert scheduler.now() == replayed_at
    # A new run of the same job is a new generation: its own orchestration.
    assert scheduler.orchestrations_started() == [transaction_id, transaction_id]
    assert "replayed" in await log_kinds(scheduler, transaction_id)
    assert await failed_ids(scheduler) == []

    # It succeeded: nothing to replay.
    assert_problem(await scheduler.api.post(f"/api/schedule/{transaction_id}/replay"), 409)
    scheduler.host.advance(3600)
    assert len(receiver.received) == 4


async def test_a_replay_that_fails_again_is_listed_again_at_its_new_failure(
    scheduler: Scheduler, httpserver: HTTPServer
) -> None:
    receiver = Receiver(httpserver)
    transaction_id = await failed_job(scheduler, receiver)
    (first,) = (await failed_list(scheduler))["jobs"]

    assert (await scheduler.api.post(f"/api/schedule/{transaction_id}/replay")).status == 202
    scheduler.host.advance(3600)

    assert len(receiver.received) == 6  # the replay is a run with the job's retry policy
    (second,) = (await failed_list(scheduler))["jobs"]
    assert second["transaction_id"] == transaction_id
    assert second["failed_at"] > first["failed_at"]
    assert len(second["attempt_history"]) == 6


async def test_two_replays_at_once_make_one_new_run(
    scheduler: Scheduler, httpserver: HTTPServer
) -> None:
    receiver = Receiver(httpserver)
    transaction_id = await failed_job(scheduler, receiver)
    receiver.status = 200

    path = f"/api/schedule/{transaction_id}/replay"
    replies = await asyncio.gather(scheduler.api.post(path), scheduler.api.post(path))
    assert [reply.status for reply in replies] == [202, 202]
    assert replies[0].json()["replayed_at"] == replies[1].json()["replayed_at"]
    scheduler.host.advance(3600)

    assert len(receiver.received) == 4  # three failed attempts, then one replay
    assert scheduler.orchestrations_started() == [transaction_id] * 2
    assert await log_kinds(scheduler, transaction_id) == [
        "accepted",
        *["fired", "outcome"] * 3,
        "replayed",
        "fired",
        "outcome",
    ]


async def test_a_replay_whose_start_failed_is_started_by_the_next_replay(
    scheduler: Scheduler, httpserver: HTTPServer
) -> None:
    receiver = Receiver(httpserver)
    transaction_id = await failed_job(scheduler, receiver)
    receiver.status = 200
    path = f"/api/schedule/{transaction_id}/replay"

    scheduler.host.fail_next("POST", "orchestrators/")
    assert_problem(await scheduler.api.post(path), 503)
    scheduler.host.advance(600)
    assert len(receiver.received) == 3  # swapped, but its run was not started
    assert await failed_ids(scheduler) == []

    assert (await scheduler.api.post(path)).status == 202
    scheduler.host.advance(600)
    assert len(receiver.received) == 4
    assert (await scheduler.api.get(f"/api/schedule/{transaction_id}/status")).json()[
        "state"
    ] == "succeeded"


async def test_a_replay_whose_run_a_second_replay_started_first_still_answers_202(
    scheduler: Scheduler, httpserver: HTTPServer
) -> None:
    receiver = Receiver(httpserver)
    transaction_id = await failed_job(scheduler, receiver)
    receiver.status = 200
    path = f"/api/schedule/{transaction_id}/replay"
    loop = asyncio.get_running_loop()
    second: list[Reply] = []

    def replay_again() -> None:
        # Between the first replay's swap and its start: the second finds the replay
        # running and starts its orchestration, so the first one's start meets it.
        second.append(on_loop(loop, scheduler.api.post(path)))

    store = interleaved(scheduler.job_store, "replace", replay_again)
    with dependencies.overridden(job_store=lambda _settings: store):
        first = await scheduler.api.post(path)

    assert [reply.status for reply in (*second, first)] == [202, 202], first.body
    assert first.json()["replayed_at"] == second[0].json()["replayed_at"]
    scheduler.host.advance(3600)
    assert len(receiver.received) == 4  # one replay, run once
    status = (await scheduler.api.get(f"/api/schedule/{transaction_id}/status")).json()
    assert status["state"] == "succeeded"


async def test_a_replay_racing_a_delete_never_leaves_a_run_after_the_delete(
    scheduler: Scheduler, httpserver: HTTPServer
) -> None:
    receiver = Receiver(httpserver)
    transaction_id = await failed_job(scheduler, receiver)
    receiver.status = 200

    replayed, deleted = await asyncio.gather(
        scheduler.api.post(f"/api/schedule/{transaction_id}/replay"),
        scheduler.api.delete(f"/api/schedule/{transaction_id}"),
    )
    scheduler.host.advance(3600)

    assert deleted.status == 200, deleted.body
    assert replayed.status in (202, 404), replayed.body
    # Whichever swapped first, the delete was acknowledged: nothing fires after it.
    assert len(receiver.received) == 3
    assert await failed_ids(scheduler) == []
    status = await scheduler.api.get(f"/api/schedule/{transaction_id}/status")
    if deleted.json()["state_before"] == "failed":  # the delete removed the record first
        assert replayed.status == 404
        assert status.status == 404
    else:  # the replay swapped first, and the delete cancelled its run
        assert replayed.status == 202
        assert status.json()["state"] == "cancelled"


async def test_replay_refuses_what_is_not_failed(
    scheduler: Scheduler, httpserver: HTTPServer
) -> None:
    receiver = Receiver(httpserver)
    pending = await scheduler.accepted("http.call", {"url": receiver.url})
    cancelled = await scheduler.accepted("http.call", {"url": receiver.url})
    assert (await scheduler.api.delete(f"/api/schedule/{cancelled}")).status == 200
    unknown = "00000000-0000-4000-8000-000000000000"

    for transaction_id in (pending, cancelled):
        reply = await scheduler.api.post(f"/api/schedule/{transaction_id}/replay")
        assert_problem(reply, 409)
        assert "only a failed job can be replayed" in reply.json()["detail"]
    assert_problem(await scheduler.api.post(f"/api/schedule/{unknown}/replay"), 404)
    assert_problem(await scheduler.api.post("/api/schedule/not-an-id/replay"), 400)
    scheduler.host.advance(3600)
    assert len(receiver.received) == 1  # the pending one fired at its time, once


async def test_the_failed_list_filters_and_pages_by_failure_time(
    scheduler: Scheduler, httpserver: HTTPServer
) -> None:
    receiver = Receiver(httpserver)
    ids = []
    for _ in range(3):
        ids.append(await failed_job(scheduler, receiver))
        scheduler.host.advance(3600)
    jobs = (await failed_list(scheduler))["jobs"]
    assert [job["transaction_id"] for job in jobs] == ids
    times = [job["failed_at"] for job in jobs]

    assert await failed_ids(scheduler, f"?from={times[1]}") == ids[1:]
    assert await failed_ids(scheduler, f"?to={times[1]}") == ids[:2]
    assert await failed_ids(scheduler, f"?from={times[1]}&to={times[1]}") == [ids[1]]
    assert await failed_ids(scheduler, "?prompt_type=http.call") == ids
    assert await failed_ids(scheduler, "?prompt_type=log.append") == []

    seen: list[str] = []
    query = "?limit=2"
    while True:
        page = await failed_list(scheduler, query)
        assert len(page["jobs"]) <= 2
        seen += [job["transaction_id"] for job in page["jobs"]]
        if page["next_cursor"] is None:
            break
        query = f"?limit=2&cursor={page['next_cursor']}"
    assert seen == ids

    first = await failed_list(scheduler, "?limit=1")
    for query in (
        "?limit=0",
        "?limit=501",
        "?from=yesterday",
        "?cursor=garbage",
        # A cursor of another listing (the job listing) is refused here.
        f"?prompt_type=log.append&cursor={first['next_cursor']}",
    ):
        assert_problem(await scheduler.api.get(f"/api/failed{query}"), 400)


async def test_a_deleted_failed_job_leaves_the_list(
    scheduler: Scheduler, httpserver: HTTPServer
) -> None:
    receiver = Receiver(httpserver)
    transaction_id = await failed_job(scheduler, receiver)
    assert (await scheduler.api.delete(f"/api/schedule/{transaction_id}")).status == 200
    # Its row went with it, not only when a reader of the list came across it.
    assert scheduler.job_store.failure_page(DueRange(), 10, None) == ([], None)
    assert await failed_ids(scheduler) == []


async def test_a_recurring_job_whose_last_run_failed_replays_that_run_once(
    scheduler: Scheduler, httpserver: HTTPServer
) -> None:
    receiver = Receiver(httpserver)
    reply = await scheduler.api.post(
        "/api/schedule",
        {
            "prompt_type": "http.call",
            "payload": {"url": receiver.url},
            "cron": "*/5 * * * *",
            "max_runs": 2,
        },
    )
    assert reply.status == 202, reply.body
    transaction_id = reply.json()["transaction_id"]
    scheduler.host.advance(300)
    # A failed run of a schedule that goes on is not a dead letter: the next run follows.
    assert await failed_ids(scheduler) == []
    scheduler.host.advance(300)
    assert len(receiver.received) == 2
    assert await failed_ids(scheduler) == [transaction_id]

    receiver.status = 200
    assert (await scheduler.api.post(f"/api/schedule/{transaction_id}/replay")).status == 202
    scheduler.host.advance(3600)

    assert len(receiver.received) == 3
    status = (await scheduler.api.get(f"/api/schedule/{transaction_id}/status")).json()
    assert status["state"] == "succeeded"
    assert status["runs"] == 3  # the replay is a run of its own
    assert status["last_run"]["due_at"] == status["replayed_at"]
    assert status["next_fire_at"] is None


async def test_a_recurring_jobs_replay_cannot_be_paused_and_ends_in_its_outcome(
    scheduler: Scheduler, httpserver: HTTPServer
) -> None:
    receiver = Receiver(httpserver)
    reply = await scheduler.api.post(
        "/api/schedule",
        {
            "prompt_type": "http.call",
            "payload": {"url": receiver.url},
            "cron": "*/5 * * * *",
            "max_runs": 1,
            "retry": RETRY,
        },
    )
    assert reply.status == 202, reply.body
    transaction_id = reply.json()["transaction_id"]
    scheduler.host.advance(15 * 60)
    assert await failed_ids(scheduler) == [transaction_id]
    assert (await scheduler.api.post(f"/api/schedule/{transaction_id}/replay")).status == 202
    scheduler.host.advance(30)
    status = (await scheduler.api.get(f"/api/schedule/{transaction_id}/status")).json()
    assert (status["state"], len(receiver.received)) == ("retrying", 4)

    # Paused, it could never be resumed (the schedule's one run is done) nor replayed.
    paused = await scheduler.api.post(f"/api/schedule/{transaction_id}/pause")
    assert_problem(paused, 409)
    assert "replay" in paused.json()["detail"]
    scheduler.host.advance(3600)

    assert len(receiver.received) == 6  # the replay ran its three attempts
    assert await failed_ids(scheduler) == [transaction_id]
    status = (await scheduler.api.get(f"/api/schedule/{transaction_id}/status")).json()
    assert (status["state"], status["runs"]) == ("failed", 2)


async def test_resuming_a_job_whose_schedule_ran_out_while_paused_ends_it_in_its_last_runs_state(
    scheduler: Scheduler, httpserver: HTTPServer
) -> None:
    receiver = Receiver(httpserver)
    reply = await scheduler.api.post(
        "/api/schedule",
        {
            "prompt_type": "http.call",
            "payload": {"url": receiver.url},
            "cron": "*/5 * * * *",
            "end_at": "2026-12-01T08:12:00Z",
        },
    )
    assert reply.status == 202, reply.body
    transaction_id = reply.json()["transaction_id"]
    scheduler.host.advance(6 * 60)  # the 08:05 run failed; 08:10 is next
    assert (await scheduler.api.post(f"/api/schedule/{transaction_id}/pause")).status == 200
    scheduler.host.advance(30 * 60)

    resumed = await scheduler.api.post(f"/api/schedule/{transaction_id}/resume")
    assert resumed.status == 200, resumed.body
    view = resumed.json()
    assert (view["state"], view["next_fire_at"]) == ("failed", None)
    assert view["failed_at"] == "2026-12-01T08:36:00Z"
    # A dead letter now: out of the live listing (its row gone too), in the failed list.
    assert (await scheduler.api.get("/api/schedule")).json()["jobs"] == []
    assert scheduler.job_store.due_page(DueRange(), 10, None) == ([], None)
    assert await failed_ids(scheduler) == [transaction_id]
    assert (await log_kinds(scheduler, transaction_id))[-1] == "resumed"

    receiver.status = 200
    assert (await scheduler.api.post(f"/api/schedule/{transaction_id}/replay")).status == 202
    scheduler.host.advance(3600)
    assert len(receiver.received) == 2
    status = (await scheduler.api.get(f"/api/schedule/{transaction_id}/status")).json()
    assert (status["state"], status["runs"]) == ("succeeded", 2)


async def test_clearing_the_list_removes_the_failed_jobs(
    scheduler: Scheduler, httpserver: HTTPServer
) -> None:
    receiver = Receiver(httpserver)
    failed = [await failed_job(scheduler, receiver) for _ in range(3)]
    receiver.status = 200
    succeeded = await scheduler.accepted("http.call", {"url": receiver.url})
    pending = await scheduler.accepted(
        "http.call", {"url": receiver.url}, at=scheduler.now() + timedelta(days=1)
    )
    scheduler.host.advance(3600)

    reply = await scheduler.api.delete("/api/failed")
    assert reply.status == 200, reply.body
    assert reply.json() == {"removed": 3, "complete": True}
    assert await failed_ids(scheduler) == []
    for transaction_id in failed:
        status = await scheduler.api.get(f"/api/schedule/{transaction_id}/status")
        assert_problem(status, 404)
        assert (await log_kinds(scheduler, transaction_id))[-1] == "cleared"
    for transaction_id, state in ((succeeded, "succeeded"), (pending, "pending")):
        status = await scheduler.api.get(f"/api/schedule/{transaction_id}/status")
        assert status.json()["state"] == state
    assert (await scheduler.api.delete("/api/failed")).json() == {"removed": 0, "complete": True}


async def test_a_clear_that_loses_to_a_replay_says_so_in_the_log(
    scheduler: Scheduler, httpserver: HTTPServer
) -> None:
    receiver = Receiver(httpserver)
    transaction_id = await failed_job(scheduler, receiver)
    receiver.status = 200
    loop = asyncio.get_running_loop()
    replays: list[Reply] = []

    def replay() -> None:
        # After the clear wrote its log entry, before it deletes the record it read.
        path = f"/api/schedule/{transaction_id}/replay"
        replays.append(on_loop(loop, scheduler.api.post(path)))

    store = interleaved(scheduler.job_store, "delete", replay, when="before")
    with dependencies.overridden(job_store=lambda _settings: store):
        cleared = await scheduler.api.delete("/api/failed")

    assert [reply.status for reply in replays] == [202]
    assert cleared.json() == {"removed": 0, "complete": True}
    kinds = await log_kinds(scheduler, transaction_id)
    # The clear's entry was written first (the record was to go); the next one takes it back.
    assert kinds[-2:] == ["cleared", "kept"]
    scheduler.host.advance(3600)
    assert len(receiver.received) == 4  # the replay ran
    status = (await scheduler.api.get(f"/api/schedule/{transaction_id}/status")).json()
    assert status["state"] == "succeeded"


async def test_failed_jobs_past_the_retention_are_dropped(
    scheduler: Scheduler, httpserver: HTTPServer
) -> None:
    receiver = Receiver(httpserver)
    old = await failed_job(scheduler, receiver)
    scheduler.host.advance(13 * 86400)
    recent = await failed_job(scheduler, receiver)
    assert await failed_ids(scheduler) == [old, recent]

    scheduler.host.advance(2 * 86400)  # past 14 days for the first, not for the second
    assert await failed_ids(scheduler) == [recent]
    assert_problem(await scheduler.api.get(f"/api/schedule/{old}/status"), 404)
    assert (await log_kinds(scheduler, old))[-1] == "expired"
    assert await failed_ids(scheduler) == [recent]


async def test_the_retention_sweep_removes_old_failed_jobs_only(
    scheduler: Scheduler, httpserver: HTTPServer, call_sweep: Callable[[], Any]
) -> None:
    receiver = Receiver(httpserver)
    old = await failed_job(scheduler, receiver)
    scheduler.host.advance(10 * 86400)
    recent = await failed_job(scheduler, receiver)
    scheduler.host.advance(5 * 86400)

    await call_sweep()

    statuses = {
        transaction_id: (await scheduler.api.get(f"/api/schedule/{transaction_id}/status")).status
        for transaction_id in (old, recent)
    }
    assert statuses == {old: 404, recent: 200}
    assert await failed_ids(scheduler) == [recent]


async def test_rows_that_no_longer_match_their_record_are_dropped_on_read(
    scheduler: Scheduler, httpserver: HTTPServer
) -> None:
    receiver = Receiver(httpserver)
    transaction_id = await failed_job(scheduler, receiver)
    stored = scheduler.job_store.get(transaction_id)
    assert stored is not None
    assert stored.record.failed_at is not None
    # What a crash leaves behind: the row of a failure recorded at another time (an attempt
    # whose record write never landed, re-run since), and one of an older generation.
    earlier = stored.record.failed_at - timedelta(minutes=1)
    scheduler.job_store.index_failure(stored.record.model_copy(update={"failed_at": earlier}))
    scheduler.job_store.index_failure(
        stored.record.model_copy(
            update={"generation": "0" * 32, "failed_at": earlier - timedelta(minutes=1)}
        )
    )
    assert len(scheduler.job_store.failure_page(DueRange(), 10, None)[0]) == 3

    assert await failed_ids(scheduler) == [transaction_id]
    (row,) = scheduler.job_store.failure_page(DueRange(), 10, None)[0]
    assert row.failed_at == stored.record.failed_at


async def test_a_store_outage_is_a_503_and_a_clear_that_says_it_is_not_complete(
    scheduler: Scheduler, httpserver: HTTPServer
) -> None:
    receiver = Receiver(httpserver)
    transaction_id = await failed_job(scheduler, receiver)
    with store_down():
        assert_problem(await scheduler.api.get("/api/failed"), 503)
        assert_problem(await scheduler.api.post(f"/api/schedule/{transaction_id}/replay"), 503)
        cleared = await scheduler.api.delete("/api/failed")
        assert cleared.status == 200, cleared.body
        assert cleared.json() == {"removed": 0, "complete": False}
    assert await failed_ids(scheduler) == [transaction_id]  # nothing half-done
    assert (await scheduler.api.delete("/api/failed")).json() == {"removed": 1, "complete": True}
