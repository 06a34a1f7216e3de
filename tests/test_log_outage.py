"""A job log outage never makes a job fail or fire twice; it shows in the job's status."""

import socket
from collections.abc import Iterator
from datetime import timedelta

import pytest
from pytest_httpserver import HTTPServer

from blueprints import dependencies
from scheduling.job_log.table_store import TableJobLog
from scheduling.table_storage import AZURITE_ACCOUNT, AZURITE_KEY, TableEndpoint
from tests.support.scheduler import START, Scheduler


@pytest.fixture
def log_down(scheduler: Scheduler) -> Iterator[Scheduler]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # Nothing listens on this port: every write is refused, as in a storage outage.
    dead = TableJobLog.open(
        TableEndpoint(
            connection_string=f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};"
            f"AccountKey={AZURITE_KEY};TableEndpoint=http://127.0.0.1:{port}/{AZURITE_ACCOUNT};"
        ),
        "joblog",
    )
    with dependencies.overridden(job_log=lambda _settings: dead):
        yield scheduler
    dead.close()


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
