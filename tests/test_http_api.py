"""The public routes, called as the Functions host calls them, against the durable stand-in."""

import json
from datetime import timedelta
from typing import Any

import pytest

from blueprints import dependencies
from blueprints.instances import ORCHESTRATOR
from local_durable_host.extension_api import SYSTEM_KEY
from scheduling.timing import format_utc
from storage.job_store import DueRange
from tests.support.app_client import Reply
from tests.support.scheduler import START, Scheduler

HOOK = {"url": "http://127.0.0.1:9/hook", "json": {"hello": "world"}}
UNKNOWN = "00000000-0000-4000-8000-000000000000"


def assert_problem(reply: Reply, status: int) -> dict[str, Any]:
    assert reply.status == status, reply.body
    assert reply.content_type == "application/problem+json"
    problem: dict[str, Any] = reply.json()
    assert problem["status"] == status
    assert problem["type"].startswith("urn:durable-scheduler:problem:")
    assert problem["title"]
    assert problem["detail"]
    return problem


async def test_create_stores_the_record_then_starts_an_orchestration_without_the_payload(
    scheduler: Scheduler,
) -> None:
    reply = await scheduler.schedule(
        "http.call", HOOK, at=START + timedelta(hours=1, microseconds=5)
    )

    assert reply.status == 202
    body = reply.json()
    transaction_id = body["transaction_id"]
    assert body["exec_at"] == "2026-12-01T09:00:00.000005Z"
    assert body["status_url"] == f"http://127.0.0.1:7071/api/schedule/{transaction_id}/status"
    assert reply.headers["location"] == body["status_url"]
    # The durable management links carry the system key: they must never reach the caller.
    assert SYSTEM_KEY not in reply.body.decode()
    assert "webhooks" not in reply.body.decode()

    (start,) = scheduler.host.client_calls
    stored = scheduler.job_store.get(transaction_id)
    assert stored is not None
    # One orchestration per generation of the job.
    assert start.path == f"orchestrators/{ORCHESTRATOR}/{stored.record.instance_id}"
    assert stored.record.instance_id == f"{transaction_id}.{stored.record.generation}"
    run = json.loads(json.loads(start.body or "null"))
    assert run == {
        "transaction_id": transaction_id,
        "generation": stored.record.generation,
        "exec_at": "2026-12-01T09:00:00.000005Z",
        "attempt": 1,
        "store_failures": 0,
        # No flow control: the job did not ask for it, and no setting names its host.
        "flow": None,
        "unlogged_callback": None,
    }
    assert stored.record.state == "pending"
    assert stored.record.destination == "POST http://127.0.0.1:9"

    scheduler.host.run()
    assert scheduler.orchestration(transaction_id).runtime_status.value == "Running"


async def test_exec_at_offsets_are_normalised(scheduler: Scheduler) -> None:
    reply = await scheduler.api.post(
        "/api/schedule",
        {
            "exec_at": "2026-12-01T15:45:00+05:45",
            "prompt_type": "log.append",
            "payload": {"message": "m"},
        },
    )
    assert reply.status == 202
    assert reply.json()["exec_at"] == "2026-12-01T10:00:00Z"


@pytest.mark.parametrize(
    ("body", "location", "error_type"),
    [
        (
            {
                "exec_at": "2026-12-01T10:00:00",
                "prompt_type": "log.append",
                "payload": {"message": "m"},
            },
            ["exec_at"],
            "value_error",
        ),
        (
            {
                "exec_at": "2026-12-01T08:00:59Z",
                "prompt_type": "log.append",
                "payload": {"message": "m"},
            },
            ["exec_at"],
            "min_lead",
        ),
        (
            {
                "exec_at": "2027-12-03T08:00:00Z",
                "prompt_type": "log.append",
                "payload": {"message": "m"},
            },
            ["exec_at"],
            "max_horizon",
        ),
        (
            {"exec_at": "2026-12-01T10:00:00Z", "prompt_type": "sms.send", "payload": {}},
            ["prompt_type"],
            "unknown_prompt_type",
        ),
        (
            {
                "exec_at": "2026-12-01T10:00:00Z",
                "prompt_type": "http.call",
                "payload": {"url": "ftp://example.com/"},
            },
            ["payload", "url"],
            "value_error",
        ),
        (
            {
                "exec_at": "2026-12-01T10:00:00Z",
                "prompt_type": "http.call",
                "payload": {"url": "http://169.254.169.254/latest/meta-data/"},
            },
            ["payload", "url"],
            "value_error",
        ),
        (
            {
                "exec_at": "2026-12-01T10:00:00Z",
                "prompt_type": "http.call",
                "payload": {"url": "http://example.com", "headers": {"Host": "x"}},
            },
            ["payload", "headers"],
            "value_error",
        ),
        (
            {"exec_at": "2026-12-01T10:00:00Z", "prompt_type": "log.append", "payload": {}},
            ["payload", "message"],
            "missing",
        ),
        ({"exec_at": "2026-12-01T10:00:00Z", "prompt_type": "log.append"}, ["payload"], "missing"),
        (
            {
                "exec_at": "2026-12-01T10:00:00Z",
                "prompt_type": "log.append",
                "payload": {"message": "m"},
                "retries": 3,
            },
            ["retries"],
            "extra_forbidden",
        ),
        (
            {
                "exec_at": "2026-12-01T10:00:00Z",
                "prompt_type": "log.append",
                "payload": {"message": "m"},
                "retry": {"max_attempts": 11},
            },
            ["retry", "max_attempts"],
            "less_than_equal",
        ),
        (["not", "an", "object"], [], "model_type"),
    ],
    ids=[
        "naive-exec-at",
        "too-soon",
        "too-far",
        "unknown-prompt-type",
        "ftp-url",
        "metadata-url",
        "host-header",
        "log-without-message",
        "no-payload",
        "extra-field",
        "too-many-attempts",
        "array-body",
    ],
)
async def test_invalid_jobs_are_422_and_create_nothing(
    scheduler: Scheduler, body: Any, location: list[str], error_type: str
) -> None:
    reply = await scheduler.api.post("/api/schedule", body)
    problem = assert_problem(reply, 422)
    assert {"loc": location, "type": error_type} in [
        {"loc": error["loc"], "type": error["type"]} for error in problem["errors"]
    ]
    assert scheduler.host.client_calls == []


async def test_lead_and_horizon_errors_say_the_limit(scheduler: Scheduler) -> None:
    too_soon = await scheduler.schedule(
        "log.append", {"message": "m"}, at=START + timedelta(seconds=30)
    )
    assert "at least 60 s" in assert_problem(too_soon, 422)["detail"]
    too_far = await scheduler.schedule(
        "log.append", {"message": "m"}, at=START + timedelta(days=367)
    )
    assert "at most 366 days" in assert_problem(too_far, 422)["detail"]
    unknown = await scheduler.schedule("sms.send", {})
    assert "http.call, log.append" in assert_problem(unknown, 422)["detail"]


async def test_exactly_the_minimum_lead_is_accepted(scheduler: Scheduler) -> None:
    reply = await scheduler.schedule(
        "log.append", {"message": "m"}, at=START + timedelta(seconds=60)
    )
    assert reply.status == 202


@pytest.mark.parametrize(
    ("body", "headers", "status"),
    [
        (b"{not json", {"Content-Type": "application/json"}, 400),
        (b'{"exec_at": NaN}', {"Content-Type": "application/json"}, 400),
        (b"\xff\xfe", {"Content-Type": "application/json"}, 400),
        (b"{}", {"Content-Type": "text/plain"}, 415),
        (b"{}", {}, 415),
        (b"{" + b" " * 300_000 + b"}", {"Content-Type": "application/json"}, 413),
    ],
    ids=["malformed", "nan", "not-utf8", "text-plain", "no-content-type", "oversize"],
)
async def test_unreadable_bodies_are_4xx(
    scheduler: Scheduler, body: bytes, headers: dict[str, str], status: int
) -> None:
    reply = await scheduler.api.request("POST", "/api/schedule", body=body, headers=headers)
    assert_problem(reply, status)
    assert scheduler.host.client_calls == []


async def test_json_with_charset_is_accepted(scheduler: Scheduler) -> None:
    body = json.dumps(
        {
            "exec_at": "2026-12-01T10:00:00Z",
            "prompt_type": "log.append",
            "payload": {"message": "m"},
        }
    ).encode()
    reply = await scheduler.api.request(
        "POST",
        "/api/schedule",
        body=body,
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    assert reply.status == 202


async def test_status_of_a_pending_job(scheduler: Scheduler) -> None:
    secret = {**HOOK, "headers": {"Authorization": "Bearer s3cret", "X-Trace": "t-1"}}
    transaction_id = await scheduler.accepted("http.call", secret)
    scheduler.host.run()

    reply = await scheduler.api.get(f"/api/schedule/{transaction_id}/status")
    assert reply.status == 200
    assert reply.json() == {
        "transaction_id": transaction_id,
        "state": "pending",
        "prompt_type": "http.call",
        "exec_at": "2026-12-01T08:10:00Z",
        "accepted_at": "2026-12-01T08:00:00Z",
        "updated_at": "2026-12-01T08:00:00Z",
        "attempts": 0,
        "next_attempt_at": None,
        "fired_at": None,
        "retry": {"max_attempts": 1, "initial_delay_seconds": 30.0, "max_delay_seconds": 3600.0},
        "destination": "POST http://127.0.0.1:9",
        "flow": None,
        "last_outcome": None,
        "recurrence": None,
        "runs": 0,
        "skipped_runs": 0,
        "last_run": None,
        "attempt_history": [],
        "failed_at": None,
        "replayed_at": None,
        "callbacks": None,
        "labels": {},
        "next_fire_at": "2026-12-01T08:10:00Z",
    }


async def test_status_with_history_shows_the_orchestration(scheduler: Scheduler) -> None:
    transaction_id = await scheduler.accepted(
        "http.call", {**HOOK, "headers": {"Cookie": "session=abc"}}
    )
    scheduler.host.run()
    reply = await scheduler.api.get(f"/api/schedule/{transaction_id}/status?history=true")
    assert reply.status == 200
    orchestration = reply.json()["orchestration"]
    assert orchestration["runtime_status"] == "Running"
    assert orchestration["custom_status"] == {"phase": "waiting", "exec_at": "2026-12-01T08:10:00Z"}
    assert orchestration["input"]["transaction_id"] == transaction_id
    assert [event["EventType"] for event in orchestration["history"]][:1] == ["ExecutionStarted"]
    assert "session=abc" not in reply.body.decode()


async def test_unknown_and_malformed_ids(scheduler: Scheduler) -> None:
    assert_problem(await scheduler.api.get(f"/api/schedule/{UNKNOWN}/status"), 404)
    assert_problem(await scheduler.api.delete(f"/api/schedule/{UNKNOWN}"), 404)
    assert_problem(await scheduler.api.get(f"/api/schedule/{UNKNOWN}/logs"), 404)
    assert_problem(await scheduler.api.get("/api/schedule/not-an-id/status"), 400)
    assert_problem(await scheduler.api.delete("/api/schedule/..%2F..%2Fadmin"), 400)
    assert_problem(await scheduler.api.get("/api/schedule/x/status?history=maybe"), 400)


async def test_delete_cancels_at_once_stops_the_orchestration_and_is_then_404(
    scheduler: Scheduler,
) -> None:
    transaction_id = await scheduler.accepted("log.append", {"message": "m"})
    scheduler.host.run()
    before = len(scheduler.host.client_calls)

    reply = await scheduler.api.delete(f"/api/schedule/{transaction_id}")
    assert reply.status == 200
    assert reply.json() == {
        "transaction_id": transaction_id,
        "deleted": True,
        "state_before": "pending",
    }
    calls = [(call.method, call.path) for call in scheduler.host.client_calls[before:]]
    instance = scheduler.orchestration(transaction_id).instance_id
    assert calls == [("POST", f"instances/{instance}/terminate")]

    assert (await scheduler.api.get(f"/api/schedule/{transaction_id}/status")).json()[
        "state"
    ] == "cancelled"
    assert_problem(await scheduler.api.delete(f"/api/schedule/{transaction_id}"), 404)
    scheduler.host.run()
    assert_problem(await scheduler.api.delete(f"/api/schedule/{transaction_id}"), 404)


async def test_deleting_an_ended_job_removes_its_record_and_history(scheduler: Scheduler) -> None:
    transaction_id = await scheduler.accepted("log.append", {"message": "m"})
    scheduler.host.advance(3600)
    reply = await scheduler.api.delete(f"/api/schedule/{transaction_id}")
    assert reply.json()["state_before"] == "succeeded"
    assert not scheduler.has_orchestration(transaction_id)
    assert_problem(await scheduler.api.get(f"/api/schedule/{transaction_id}/status"), 404)
    # The log outlives the record: it says what happened.
    logs = (await scheduler.api.get(f"/api/schedule/{transaction_id}/logs")).json()["entries"]
    assert [entry["kind"] for entry in logs][-1] == "deleted"


async def test_list_is_sorted_enriched_and_paged(scheduler: Scheduler) -> None:
    ids = [
        await scheduler.accepted(
            "log.append", {"message": str(minutes)}, at=START + timedelta(minutes=minutes)
        )
        for minutes in (30, 10, 20, 40, 50)
    ]
    scheduler.host.run()

    first = await scheduler.api.get("/api/schedule?limit=2")
    assert first.status == 200
    page = first.json()
    assert [job["transaction_id"] for job in page["jobs"]] == [ids[1], ids[2]]
    assert {job["state"] for job in page["jobs"]} == {"pending"}
    assert page["jobs"][0]["exec_at"] == format_utc(START + timedelta(minutes=10))
    # A row of the listing is short: no payload, no outcome, only the last attempt (none yet).
    assert page["jobs"][0] == {
        "transaction_id": ids[1],
        "state": "pending",
        "prompt_type": "log.append",
        "exec_at": "2026-12-01T08:10:00Z",
        "next_fire_at": "2026-12-01T08:10:00Z",
        "attempts": 0,
        "next_attempt_at": None,
        "labels": {},
        "last_attempt": None,
    }

    seen = [job["transaction_id"] for job in page["jobs"]]
    cursor = page["next_cursor"]
    while cursor:
        reply = await scheduler.api.get(f"/api/schedule?limit=2&cursor={cursor}")
        seen += [job["transaction_id"] for job in reply.json()["jobs"]]
        cursor = reply.json()["next_cursor"]
    assert seen == [ids[1], ids[2], ids[0], ids[3], ids[4]]


async def test_list_filters_by_due_range_prompt_type_and_state(scheduler: Scheduler) -> None:
    logs = [
        await scheduler.accepted("log.append", {"message": "m"}, at=START + timedelta(minutes=m))
        for m in (10, 20, 30)
    ]
    hook = await scheduler.accepted("http.call", HOOK, at=START + timedelta(minutes=25))
    scheduler.host.run()

    async def listed(query: str) -> list[str]:
        reply = await scheduler.api.get(f"/api/schedule?{query}")
        assert reply.status == 200, reply.body
        return [job["transaction_id"] for job in reply.json()["jobs"]]

    assert await listed("prompt_type=http.call") == [hook]
    assert await listed("from=2026-12-01T08:20:00Z&to=2026-12-01T09:25:00%2B01:00") == [
        logs[1],
        hook,
    ]
    assert await listed("state=pending&prompt_type=log.append") == logs
    assert await listed("state=retrying") == []


async def test_a_cursor_walks_a_filtered_listing_and_no_other(scheduler: Scheduler) -> None:
    ids = [
        await scheduler.accepted("log.append", {"message": "m"}, at=START + timedelta(minutes=m))
        for m in range(10, 15)
    ]
    first = (await scheduler.api.get("/api/schedule?limit=2&prompt_type=log.append")).json()
    assert [job["transaction_id"] for job in first["jobs"]] == ids[:2]
    cursor = first["next_cursor"]
    second = await scheduler.api.get(
        f"/api/schedule?limit=2&prompt_type=log.append&cursor={cursor}"
    )
    assert [job["transaction_id"] for job in second.json()["jobs"]] == ids[2:4]
    assert_problem(await scheduler.api.get(f"/api/schedule?limit=2&cursor={cursor}"), 400)


async def test_list_query_errors(scheduler: Scheduler) -> None:
    assert_problem(await scheduler.api.get("/api/schedule?limit=0"), 400)
    assert_problem(await scheduler.api.get("/api/schedule?limit=abc"), 400)
    assert_problem(await scheduler.api.get("/api/schedule?cursor=bogus"), 400)
    assert_problem(await scheduler.api.get("/api/schedule?state=succeeded"), 400)
    assert_problem(await scheduler.api.get("/api/schedule?from=yesterday"), 400)


async def test_wipe_removes_every_job_and_counts(scheduler: Scheduler) -> None:
    for minutes in range(5):
        await scheduler.accepted(
            "log.append", {"message": "m"}, at=START + timedelta(minutes=5 + minutes)
        )
    scheduler.host.run()

    reply = await scheduler.api.post("/api/wipe")
    assert reply.status == 200
    assert reply.json() == {"cancelled": 5, "firing": 0, "unreadable": 0, "complete": True}
    scheduler.host.run()
    listed = await scheduler.api.get("/api/schedule")
    assert listed.json() == {"jobs": [], "next_cursor": None}


async def test_admin_routes_share_the_handlers(scheduler: Scheduler) -> None:
    transaction_id = await scheduler.accepted("log.append", {"message": "m"})
    scheduler.host.run()
    listed = await scheduler.api.get("/api/schedules")
    assert [job["transaction_id"] for job in listed.json()["jobs"]] == [transaction_id]
    status = await scheduler.api.get(f"/api/status/{transaction_id}")
    assert status.json()["state"] == "pending"
    terminated = await scheduler.api.request("POST", f"/api/terminate/{transaction_id}")
    assert terminated.status == 200
    assert (await scheduler.api.get(f"/api/status/{transaction_id}")).json()["state"] == (
        "cancelled"
    )
    scheduler.host.run()
    wiped = await scheduler.api.request("POST", "/api/wipe")
    assert wiped.json() == {"cancelled": 0, "firing": 0, "unreadable": 0, "complete": True}


async def test_backend_down_is_503_and_creates_nothing(scheduler: Scheduler) -> None:
    scheduler.host.close()
    health = await scheduler.api.get("/api/healthz")
    assert health.status == 503
    assert health.json() == {"status": "degraded"}
    reply = await scheduler.schedule("log.append", {"message": "m"})
    assert_problem(reply, 503)
    assert scheduler.job_store.due_page(DueRange(), 10, None) == ([], None)


def test_dependencies_are_restored_after_a_test() -> None:
    assert dependencies.current().clock is dependencies.system_clock
