"""A job log outage never makes a job fail or fire twice, never loses a lifecycle entry,
and costs a request seconds at most."""

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import pytest
from pytest_httpserver import HTTPServer

from blueprints import dependencies
from storage.job_log.table_store import TableJobLog
from tests.support.scheduler import START, Scheduler
from tests.support.services import azurite_endpoint_at


def log_at(port: int) -> TableJobLog:
    return TableJobLog.open(azurite_endpoint_at(port), "joblog")


@contextmanager
def log_refusing() -> Iterator[None]:
    """Nothing listens where the log is: every call is refused, as in a storage outage."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    dead = log_at(port)
    with dependencies.overridden(job_log=lambda _settings: dead):
        yield
    dead.close()


@contextmanager
def log_hanging() -> Iterator[None]:
    """The log's server takes connections and never answers, as a frozen Azurite does."""
    server = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    frozen = log_at(server.getsockname()[1])
    try:
        with dependencies.overridden(job_log=lambda _settings: frozen):
            yield
    finally:
        stop.set()
        thread.join()
        for connection in held:
            connection.close()
        server.close()
        frozen.close()


@pytest.fixture
def log_down(scheduler: Scheduler) -> Iterator[Scheduler]:
    with log_refusing():
        yield scheduler


async def test_http_call_fires_once_and_reports_the_lost_entries(
    log_down: Scheduler, httpserver: HTTPServer
) -> None:
    httpserver.expect_request("/hook").respond_with_data("ok")
    exec_at = START + timedelta(minutes=3)
    transaction_id = await log_down.accepted(
        "http.call", {"url": httpserver.url_for("/hook")}, at=exec_at
    )
    log_down.host.advance_to(exec_at)

    assert len(httpserver.log) == 1
    reply = await log_down.api.get(f"/api/schedule/{transaction_id}/status")
    output = reply.json()["last_outcome"]
    assert reply.json()["state"] == "succeeded"
    assert output["ok"] is True
    assert [error.split(":")[0] for error in output["log_errors"]] == [
        "fired entry not stored",
        "outcome entry not stored",
    ]
    assert all("after 3 attempts" in error for error in output["log_errors"])


async def test_log_append_into_a_dead_store_is_a_failed_outcome(log_down: Scheduler) -> None:
    exec_at = START + timedelta(minutes=3)
    transaction_id = await log_down.accepted("log.append", {"message": "m"}, at=exec_at)
    log_down.host.advance_to(exec_at)

    status = (await log_down.api.get(f"/api/schedule/{transaction_id}/status")).json()
    assert status["state"] == "failed"
    assert status["last_outcome"]["ok"] is False
    assert status["last_outcome"]["error"].startswith("job log store failed")


async def log_kinds(scheduler: Scheduler, transaction_id: str) -> list[str]:
    reply = await scheduler.api.get(f"/api/schedule/{transaction_id}/logs")
    assert reply.status == 200, reply.body
    return [entry["kind"] for entry in reply.json()["entries"]]


async def test_lifecycle_entries_missed_in_an_outage_are_in_the_log_after_it(
    scheduler: Scheduler,
) -> None:
    # The review: a job created and deleted during an outage had no `accepted` and no
    # `cancelled` entry afterwards, and nothing said so.
    with log_refusing():
        deleted = await scheduler.accepted("log.append", {"message": "m"})
        wiped = await scheduler.accepted("log.append", {"message": "m"})
        assert (await scheduler.api.delete(f"/api/schedule/{deleted}")).status == 200
        assert (await scheduler.api.post("/api/wipe")).json()["cancelled"] == 1
    assert await log_kinds(scheduler, deleted) == ["accepted", "cancelled"]
    assert await log_kinds(scheduler, wiped) == ["accepted", "wiped"]
    # Written later, or derived: never twice.
    stored = scheduler.job_log.read(deleted, 10).entries
    assert stored == []


async def test_an_ended_jobs_record_is_not_deleted_while_its_log_cannot_say_so(
    scheduler: Scheduler,
) -> None:
    transaction_id = await scheduler.accepted("log.append", {"message": "m"})
    scheduler.host.advance(3600)
    with log_refusing():
        reply = await scheduler.api.delete(f"/api/schedule/{transaction_id}")
        assert reply.status == 503
        assert "try again" in reply.json()["detail"]
    assert (await scheduler.api.get(f"/api/schedule/{transaction_id}/status")).status == 200
    assert (await scheduler.api.delete(f"/api/schedule/{transaction_id}")).status == 200
    assert (await log_kinds(scheduler, transaction_id))[-1] == "deleted"


async def test_a_hanging_log_store_neither_holds_a_create_nor_loses_its_entry(
    scheduler: Scheduler,
) -> None:
    with log_hanging():
        transaction_id = await scheduler.accepted("log.append", {"message": "m"})
        reply = await scheduler.api.get(f"/api/schedule/{transaction_id}/logs")
        assert reply.status == 503
    assert await log_kinds(scheduler, transaction_id) == ["accepted"]
