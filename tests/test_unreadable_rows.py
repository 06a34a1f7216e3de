"""One job record that cannot be read (corrupted, truncated, sealed under a removed key) is
listed as unreadable instead of failing the page: its id, its state if the row says it, why
in one line. Its status says the same, its log reads, DELETE ends it without opening it, and
no other route (changes, the failed list and its clear, the wipe, the repair) fails on it."""

import json
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest
from azure.functions.timer import TimerRequest
from pytest_httpserver import HTTPServer

from function_app import app
from local_durable_host.worker_calls import index_functions
from tests.support.poison import POISONS
from tests.support.scheduler import Scheduler

SECRET = "Po1soned-S3cret"
KINDS = sorted(POISONS)


async def poisoned_job(scheduler: Scheduler, kind: str, **fields: Any) -> str:
    job = await scheduler.accepted(
        "log.append", {"message": SECRET, "fields": {"token": SECRET}}, **fields
    )
    POISONS[kind](scheduler, job)
    return job


def assert_unreadable(view: dict[str, Any], job: str, state: str | None) -> None:
    assert view["transaction_id"] == job
    assert view["unreadable"] is True
    assert view["state"] == state
    why = view["why"]
    assert why
    assert "\n" not in why
    assert len(why) <= 300
    assert SECRET not in why


@pytest.mark.parametrize("kind", KINDS)
async def test_the_listing_shows_an_unreadable_row_as_such_and_every_other_job(
    scheduler: Scheduler, kind: str
) -> None:
    before = await scheduler.accepted("log.append", {"message": "first"})
    job = await poisoned_job(scheduler, kind, at=scheduler.now() + timedelta(minutes=20))
    after = await scheduler.accepted(
        "log.append", {"message": "last"}, at=scheduler.now() + timedelta(minutes=30)
    )
    for path in ("/api/schedule", "/api/schedules"):
        reply = await scheduler.api.get(path)
        assert reply.status == 200, reply.body
        jobs = reply.json()["jobs"]
        assert [view["transaction_id"] for view in jobs] == [before, job, after]
        assert_unreadable(jobs[1], job, "pending")
        assert "unreadable" not in jobs[0]
    pending_only = (await scheduler.api.get("/api/schedule?state=pending")).json()["jobs"]
    assert job in [view["transaction_id"] for view in pending_only]


@pytest.mark.parametrize("kind", KINDS)
async def test_its_status_says_it_is_unreadable_and_its_log_reads(
    scheduler: Scheduler, kind: str
) -> None:
    job = await poisoned_job(scheduler, kind)
    for path in (f"/api/schedule/{job}/status", f"/api/status/{job}"):
        reply = await scheduler.api.get(path)
        assert reply.status == 200, reply.body
        assert_unreadable(reply.json(), job, "pending")
    log = await scheduler.api.get(f"/api/schedule/{job}/logs")
    assert log.status == 200, log.body
    assert [entry["kind"] for entry in log.json()["entries"]] == ["accepted"]


@pytest.mark.parametrize("kind", KINDS)
async def test_delete_ends_it_without_opening_it_and_it_never_fires(
    scheduler: Scheduler, kind: str
) -> None:
    due = scheduler.now() + timedelta(minutes=5)
    job = await poisoned_job(scheduler, kind, at=due)
    reply = await scheduler.api.delete(f"/api/schedule/{job}")
    assert reply.status == 200, reply.body
    assert reply.json() == {"transaction_id": job, "deleted": True, "state_before": "pending"}
    assert (await scheduler.api.get("/api/schedule")).json()["jobs"] == []
    status = await scheduler.api.get(f"/api/schedule/{job}/status")
    if kind == "removed-key":
        # Its record reads: it is cancelled like any job (only its payload cannot be opened).
        assert status.json()["state"] == "cancelled"
        ended = ["accepted", "cancelled"]
    else:
        # No record can be written over it: it is removed, its log says so first.
        assert status.status == 404
        ended = ["accepted", "deleted"]
    scheduler.host.advance_to(due + timedelta(minutes=30))
    log = (await scheduler.api.get(f"/api/schedule/{job}/logs")).json()["entries"]
    assert [entry["kind"] for entry in log] == ended  # nothing fired


@pytest.mark.parametrize("kind", ["corrupted", "truncated"])
async def test_its_orchestration_ends_when_it_comes_due_instead_of_retrying_forever(
    scheduler: Scheduler, httpserver: HTTPServer, kind: str
) -> None:
    due = scheduler.now() + timedelta(minutes=5)
    job = await scheduler.accepted("http.call", {"url": httpserver.url_for("/hook")}, at=due)
    POISONS[kind](scheduler, job)

    scheduler.host.advance_to(due + timedelta(minutes=1))

    orchestration = scheduler.orchestration(job)
    assert orchestration.runtime_status.value == "Completed"
    assert orchestration.output["state"] == "gone"
    assert httpserver.log == []
    assert scheduler.host.pending_timers() == []  # no retry waits for a store that answered
    listed = (await scheduler.api.get("/api/schedule")).json()["jobs"]
    assert [(view["transaction_id"], view.get("unreadable")) for view in listed] == [(job, True)]


# A record sealed under a removed key reads: it can be changed (only its payload cannot be
# opened), so only the two kinds whose record does not read are here.
@pytest.mark.parametrize("kind", ["corrupted", "truncated"])
@pytest.mark.parametrize("change", ["pause", "resume", "replay", "patch"])
async def test_a_change_of_it_is_a_409_that_says_to_delete_it(
    scheduler: Scheduler, kind: str, change: str
) -> None:
    job = await poisoned_job(scheduler, kind)
    if change == "patch":
        reply = await scheduler.api.request(
            "PATCH", f"/api/schedule/{job}", json_body={"exec_at": "2026-12-02T09:00:00Z"}
        )
    else:
        reply = await scheduler.api.post(f"/api/schedule/{job}/{change}")
    assert reply.status == 409, reply.body
    problem = reply.json()
    assert problem["type"].endswith(":job-unreadable")
    assert "DELETE" in problem["detail"]


async def test_a_create_whose_idempotency_key_names_an_unreadable_job_is_a_409(
    scheduler: Scheduler,
) -> None:
    body = json.dumps(
        {
            "exec_at": "2026-12-01T09:00:00Z",
            "prompt_type": "log.append",
            "payload": {"message": "m"},
        }
    ).encode()
    headers = {"Content-Type": "application/json", "Idempotency-Key": "order-2"}
    first = await scheduler.api.request("POST", "/api/schedule", body=body, headers=headers)
    job = first.json()["transaction_id"]
    POISONS["corrupted"](scheduler, job)
    again = await scheduler.api.request("POST", "/api/schedule", body=body, headers=headers)
    assert again.status == 409, again.body
    assert again.json()["type"].endswith(":job-unreadable")


@pytest.mark.parametrize("kind", KINDS)
async def test_the_failed_list_shows_it_and_its_clear_removes_it(
    scheduler: Scheduler, kind: str, httpserver: HTTPServer
) -> None:
    httpserver.expect_request("/broken").respond_with_data("no", status=400)
    due = scheduler.now() + timedelta(minutes=5)
    failing = [
        await scheduler.accepted("http.call", {"url": httpserver.url_for("/broken")}, at=due)
        for _ in range(2)
    ]
    scheduler.host.advance_to(due + timedelta(minutes=1))
    POISONS[kind](scheduler, failing[0])
    reply = await scheduler.api.get("/api/failed")
    assert reply.status == 200, reply.body
    jobs = reply.json()["jobs"]
    assert sorted(view["transaction_id"] for view in jobs) == sorted(failing)
    [poisoned] = [view for view in jobs if view["transaction_id"] == failing[0]]
    assert_unreadable(poisoned, failing[0], "failed")

    cleared = await scheduler.api.delete("/api/failed")
    assert cleared.status == 200, cleared.body
    assert cleared.json() == {"removed": 2, "complete": True}
    assert (await scheduler.api.get("/api/failed")).json()["jobs"] == []
    assert (await scheduler.api.get(f"/api/schedule/{failing[0]}/status")).status == 404


@pytest.mark.parametrize("kind", KINDS)
async def test_a_wipe_goes_past_it_and_says_it_left_it(scheduler: Scheduler, kind: str) -> None:
    job = await poisoned_job(scheduler, kind)
    other = await scheduler.accepted("log.append", {"message": "m"})
    reply = await scheduler.api.request("POST", "/api/wipe")
    assert reply.status == 200, reply.body
    expected_cancelled = 2 if kind == "removed-key" else 1
    unreadable = 0 if kind == "removed-key" else 1
    assert reply.json() == {
        "cancelled": expected_cancelled,
        "firing": 0,
        "unreadable": unreadable,
        "complete": True,
    }
    assert (await scheduler.api.get(f"/api/schedule/{other}/status")).json()["state"] == (
        "cancelled"
    )
    if unreadable:
        status = (await scheduler.api.get(f"/api/schedule/{job}/status")).json()
        assert_unreadable(status, job, "pending")


@pytest.fixture
def repair(scheduler: Scheduler) -> Callable[[], Awaitable[Any]]:
    (function,) = [
        f for f in index_functions(app) if f.get_function_name() == "repair_stalled_jobs"
    ]
    run = function.get_user_function()
    return lambda: run(timer=TimerRequest(), client=scheduler.host.client_binding())


async def test_the_stalled_jobs_repair_goes_past_it(
    scheduler: Scheduler, httpserver: HTTPServer, repair: Callable[[], Awaitable[Any]]
) -> None:
    httpserver.expect_request("/hook").respond_with_data("ok")
    due = scheduler.now() + timedelta(minutes=5)
    await poisoned_job(scheduler, "corrupted", at=due)
    stalled = await scheduler.accepted(
        "http.call", {"url": httpserver.url_for("/hook")}, at=due + timedelta(seconds=1)
    )
    scheduler.host.purge_instance(scheduler.orchestration(stalled).instance_id)
    scheduler.host.advance_to(due + timedelta(minutes=20))
    await repair()
    scheduler.host.run()
    assert (await scheduler.api.get(f"/api/schedule/{stalled}/status")).json()["state"] == (
        "succeeded"
    )
