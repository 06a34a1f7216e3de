"""What firing one job costs: Table Storage requests, orchestrator calls, history events.

Counted, not timed: each count is what the fire path makes on Azure too (a request is a
billed storage transaction and a round trip; an orchestrator call replays its history).
"""

from collections.abc import Iterator
from datetime import timedelta

import pytest
from pytest_httpserver import HTTPServer

from local_durable_host.history import EventType
from tests.support.local_servers import AzuriteService
from tests.support.scheduler import Scheduler, running_scheduler
from tests.support.table_requests import TableRequestLog


@pytest.fixture
def wire(azurite: AzuriteService) -> Iterator[TableRequestLog]:
    with TableRequestLog(azurite) as requests:
        yield requests


async def test_a_successful_http_call_attempt_makes_four_table_requests(
    azurite: AzuriteService, wire: TableRequestLog, httpserver: HTTPServer
) -> None:
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    through_the_wire = AzuriteService(wire.table_endpoint, wire.connection_string)
    with running_scheduler(through_the_wire) as scheduler:
        exec_at = scheduler.now() + timedelta(minutes=5)
        transaction_id = await scheduler.accepted(
            "http.call", {"url": httpserver.url_for("/hook")}, at=exec_at
        )
        jobs, due = scheduler.settings.job_table, scheduler.settings.job_table + "due"
        wire.clear()

        scheduler.host.advance_to(exec_at)

        assert len(httpserver.log) == 1
        assert [request.describe() for request in wire.requests()] == [
            f"GET {jobs} entity -> 200",  # the claim reads the record
            f"PUT {jobs} entity (If-Match) -> 204",  # and swaps it to firing
            # The outcome and the attempt's two log entries, in one transaction.
            f"POST $batch of 3 [PUT {jobs} entity, PUT {jobs} entity, PUT {jobs} entity] -> 202",
            f"DELETE {due} entity -> 204",  # the ended job leaves the due index
        ]
        logs = (await scheduler.api.get(f"/api/schedule/{transaction_id}/logs")).json()
        assert [entry["kind"] for entry in logs["entries"]] == ["accepted", "fired", "outcome"]
        status = (await scheduler.api.get(f"/api/schedule/{transaction_id}/status")).json()
        assert status["state"] == "succeeded"
        assert (await scheduler.api.get("/api/schedule")).json()["jobs"] == []


@pytest.mark.parametrize(
    ("prompt_type", "payload"),
    [("http.call", {"url": "http://127.0.0.1:9/hook"}), ("log.append", {"message": "m"})],
)
async def test_a_one_shot_job_takes_three_orchestrator_calls_and_twelve_history_events(
    scheduler: Scheduler, prompt_type: str, payload: dict[str, str]
) -> None:
    exec_at = scheduler.now() + timedelta(minutes=5)
    transaction_id = await scheduler.accepted(prompt_type, payload, at=exec_at)

    scheduler.host.advance_to(exec_at)

    orchestration = scheduler.orchestration(transaction_id)
    assert orchestration.runtime_status.value == "Completed"
    assert orchestration.episode_count == 1
    calls = [e for e in orchestration.history if e["EventType"] == EventType.ORCHESTRATOR_STARTED]
    assert len(calls) == 3  # started (a timer), the timer fired (the activity), its result
    assert len(orchestration.history) == 12
    assert scheduler.host.entity_operations == []  # no flow control unless asked for
