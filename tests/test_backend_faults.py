"""What callers see when the durable backend or the job store fails: 503s, nothing half-made,
and no accepted job lost."""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from pytest_httpserver import HTTPServer

from blueprints import dependencies
from storage.job_store import TableJobStore
from tests.support.scheduler import START, Scheduler
from tests.support.services import unreachable_table_endpoint

LOG = {"message": "m"}


def assert_503(reply: Any) -> None:
    assert reply.status == 503, reply.body
    assert reply.content_type == "application/problem+json"
    assert "Injected" not in reply.body.decode()  # backend internals stay in the logs


@contextmanager
def store_down() -> Iterator[None]:
    """The job store as in an outage: nothing listens where it is, every call is refused."""
    dead = TableJobStore.open(unreachable_table_endpoint(), "jobs")
    with dependencies.overridden(job_store=lambda _settings: dead):
        yield
    dead.close()


async def test_a_failed_start_withdraws_the_job(scheduler: Scheduler) -> None:
    scheduler.host.fail_next("POST", "orchestrators/")
    reply = await scheduler.schedule("log.append", LOG)
    assert_503(reply)
    assert "nothing was scheduled" in reply.json()["detail"]
    scheduler.host.run()
    assert scheduler.host.instance_ids() == []
    assert (await scheduler.api.get("/api/schedule")).json()["jobs"] == []


async def test_a_store_outage_is_503_on_every_route_and_creates_nothing(
    scheduler: Scheduler,
) -> None:
    transaction_id = await scheduler.accepted("log.append", LOG)
    with store_down():
        assert_503(await scheduler.schedule("log.append", LOG))
        for method, url in [
            ("GET", f"/api/schedule/{transaction_id}/status"),
            ("DELETE", f"/api/schedule/{transaction_id}"),
            ("GET", "/api/schedule"),
        ]:
            assert_503(await scheduler.api.request(method, url))
    assert scheduler.orchestrations_started() == [transaction_id]
    listed = (await scheduler.api.get("/api/schedule")).json()["jobs"]
    assert [job["transaction_id"] for job in listed] == [transaction_id]


async def test_a_job_due_during_a_store_outage_fires_once_the_store_is_back(
    scheduler: Scheduler, httpserver: HTTPServer
) -> None:
    httpserver.expect_request("/hook").respond_with_data("ok")
    exec_at = START + timedelta(minutes=10)
    transaction_id = await scheduler.accepted(
        "http.call", {"url": httpserver.url_for("/hook")}, at=exec_at
    )
    with store_down():
        scheduler.host.advance_to(exec_at + timedelta(minutes=2))
        assert httpserver.log == []
        assert scheduler.orchestration(transaction_id).runtime_status.value == "Running"
    scheduler.host.advance_to(exec_at + timedelta(hours=1))

    assert len(httpserver.log) == 1
    status = (await scheduler.api.get(f"/api/schedule/{transaction_id}/status")).json()
    assert status["state"] == "succeeded"
    assert status["attempts"] == 1


async def test_a_status_read_of_the_orchestration_that_fails_is_503(scheduler: Scheduler) -> None:
    transaction_id = await scheduler.accepted("log.append", LOG)
    scheduler.host.run()
    scheduler.host.fail_next("GET", "instances/")
    assert_503(await scheduler.api.get(f"/api/schedule/{transaction_id}/status?history=true"))
    # Without the history, the record alone answers.
    assert (await scheduler.api.get(f"/api/schedule/{transaction_id}/status")).status == 200
