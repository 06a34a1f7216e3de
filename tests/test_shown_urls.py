"""URLs the scheduler shows but did not choose to show (a job's callback URLs, the Location a
target answered with): in the status and in the failed list, only their origin, whatever
their parameters are called or hold (the rule its own target URL has, `destination`)."""

import json
from datetime import timedelta

import pytest
from pytest_httpserver import HTTPServer

from scheduling.timing import format_utc
from tests.support.scheduler import Scheduler

SECRET = "S3cr3t-v4lue"
# Secret-looking names are not the only ones that carry secrets.
URL_TAILS = [
    f"/hook?t={SECRET}",
    f"/hook?jwt={SECRET}",
    f"/hook?h={SECRET}",
    f"/hook?to=https://x.example/?token={SECRET}",
    f"/hook?next=https%3A%2F%2Fx.example%2F%3Ftoken%3D{SECRET}",
    f"/{SECRET}/hook",
    f"/hook#{SECRET}",
]


@pytest.mark.parametrize("tail", URL_TAILS)
async def test_callback_urls_show_their_origin_only(
    scheduler: Scheduler, httpserver: HTTPServer, tail: str
) -> None:
    httpserver.expect_request("/job").respond_with_data("no", status=400)
    origin = f"http://{httpserver.host}:{httpserver.port}"
    due = scheduler.now() + timedelta(minutes=5)
    body = {
        "exec_at": format_utc(due),
        "prompt_type": "http.call",
        "payload": {"url": f"{origin}/job"},
        "callbacks": {"on_failure": origin + tail},
    }
    reply = await scheduler.api.post("/api/schedule", body)
    assert reply.status == 202, reply.json()
    job = reply.json()["transaction_id"]
    scheduler.host.advance(6 * 60)

    status = (await scheduler.api.get(f"/api/schedule/{job}/status")).json()
    assert status["state"] == "failed"
    assert status["callbacks"] == {"on_failure": f"{origin}/[redacted]"}
    failed = (await scheduler.api.get("/api/failed")).json()["jobs"]
    assert [view["callbacks"] for view in failed] == [{"on_failure": f"{origin}/[redacted]"}]
    assert SECRET not in json.dumps(status) + json.dumps(failed)


@pytest.mark.parametrize("tail", URL_TAILS)
async def test_a_redirect_location_shows_its_origin_only(
    scheduler: Scheduler, httpserver: HTTPServer, tail: str
) -> None:
    location = "https://login.example" + tail
    httpserver.expect_request("/job").respond_with_data(
        "", status=302, headers={"Location": location}
    )
    due = scheduler.now() + timedelta(minutes=5)
    job = await scheduler.accepted("http.call", {"url": httpserver.url_for("/job")}, at=due)
    scheduler.host.advance(6 * 60)

    status = (await scheduler.api.get(f"/api/schedule/{job}/status")).json()
    assert status["state"] == "failed"
    assert status["last_outcome"]["headers"]["location"] == "https://login.example/[redacted]"
    failed = (await scheduler.api.get("/api/failed")).json()["jobs"]
    assert SECRET not in json.dumps(status) + json.dumps(failed)
    log = (await scheduler.api.get(f"/api/schedule/{job}/logs")).json()
    assert SECRET not in json.dumps(log)


async def test_a_record_kept_under_the_older_rule_shows_no_more_than_the_new_one(
    scheduler: Scheduler,
) -> None:
    # Local stores written before this rule hold callbacks redacted by parameter names only.
    job = await scheduler.accepted("log.append", {"message": "m"})
    stored = scheduler.job_store.get(job)
    assert stored is not None
    older = stored.record.model_copy(
        update={
            "callbacks": {"on_success": f"https://h.example/[redacted]?t={SECRET}"},
            "last_outcome": {
                "ok": False,
                "headers": {"Location": f"https://l.example/?h={SECRET}"},
            },
        }
    )
    scheduler.job_store.replace(stored, older)
    status = (await scheduler.api.get(f"/api/schedule/{job}/status")).json()
    assert status["callbacks"] == {"on_success": "https://h.example/[redacted]"}
    assert status["last_outcome"]["headers"] == {"Location": "https://l.example/[redacted]"}
