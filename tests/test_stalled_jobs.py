"""Stalled jobs: a live job whose orchestration is gone fires once the repair pass has run,
and the pass leaves alone jobs that are waiting as they should."""

import json
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest
from azure.functions.timer import TimerRequest
from pytest_httpserver import HTTPServer

from blueprints import dependencies
from function_app import app
from local_durable_host.model import RuntimeStatus
from local_durable_host.worker_calls import index_functions
from tests.support.scheduler import Scheduler


@pytest.fixture
def repair(scheduler: Scheduler) -> Callable[[], Awaitable[Any]]:
    """The repair pass, called as the host's timer would call it."""
    (function,) = [
        f for f in index_functions(app) if f.get_function_name() == "repair_stalled_jobs"
    ]
    run = function.get_user_function()
    return lambda: run(timer=TimerRequest(), client=scheduler.host.client_binding())


def orchestration_id(scheduler: Scheduler, transaction_id: str) -> str:
    return scheduler.orchestration(transaction_id).instance_id


async def test_a_job_whose_orchestration_was_purged_fires_after_the_repair_pass(
    scheduler: Scheduler, httpserver: HTTPServer, repair: Callable[[], Awaitable[Any]]
) -> None:
    httpserver.expect_request("/hook").respond_with_data("ok")
    exec_at = scheduler.now() + timedelta(minutes=5)
    transaction_id = await scheduler.accepted(
        "http.call", {"url": httpserver.url_for("/hook")}, at=exec_at, flow_control={}
    )
    scheduler.host.run()
    # The orchestration is lost (as when a start and its take-back both failed).
    assert scheduler.host.purge_instance(orchestration_id(scheduler, transaction_id)) == 1
    scheduler.host.advance_to(exec_at + timedelta(minutes=20))
    assert httpserver.log == []
    status = (await scheduler.api.get(f"/api/schedule/{transaction_id}/status")).json()
    assert status["state"] == "pending"

    await repair()
    scheduler.host.run()

    assert len(httpserver.log) == 1
    status = (await scheduler.api.get(f"/api/schedule/{transaction_id}/status")).json()
    assert status["state"] == "succeeded"
    # The restarted orchestration went through the job's flow key, like the first would have.
    restarted = scheduler.orchestration(transaction_id).input
    assert json.loads(restarted)["flow"] == status["flow"]
    assert {op.key for op in scheduler.host.entity_operations} == {"127.0.0.1"}
    await repair()  # a second pass finds nothing to do
    scheduler.host.run()
    assert len(httpserver.log) == 1


async def test_jobs_that_wait_as_they_should_are_left_alone(
    scheduler: Scheduler, httpserver: HTTPServer, repair: Callable[[], Awaitable[Any]]
) -> None:
    httpserver.expect_request("/hook").respond_with_data("busy", status=503)
    soon = scheduler.now() + timedelta(minutes=5)
    retrying = await scheduler.accepted(
        "http.call",
        {"method": "GET", "url": httpserver.url_for("/hook")},
        at=soon,
        retry={"max_attempts": 3, "initial_delay_seconds": 3600, "max_delay_seconds": 3600},
    )
    later = await scheduler.accepted(
        "log.append", {"message": "in a day"}, at=soon + timedelta(days=1)
    )
    scheduler.host.advance_to(soon + timedelta(minutes=30))
    status = (await scheduler.api.get(f"/api/schedule/{retrying}/status")).json()
    assert status["state"] == "retrying", status
    started = len(scheduler.orchestrations_started())

    await repair()
    scheduler.host.run()

    assert len(scheduler.orchestrations_started()) == started
    assert len(httpserver.log) == 1
    assert (await scheduler.api.get(f"/api/schedule/{later}/status")).json()["state"] == "pending"


async def test_a_job_whose_orchestration_found_it_gone_on_other_storage_fires_after_the_repair(
    scheduler: Scheduler, httpserver: HTTPServer, repair: Callable[[], Awaitable[Any]]
) -> None:
    # The fault run of the third review: run-local.sh let the app run for a while against
    # another process's (empty) storage; the orchestrations that came due there found no
    # record, took the job for deleted and completed. Back on its own storage the job is
    # pending past its time with no orchestration.
    httpserver.expect_request("/hook").respond_with_data("ok")
    exec_at = scheduler.now() + timedelta(minutes=5)
    transaction_id = await scheduler.accepted(
        "http.call", {"url": httpserver.url_for("/hook")}, at=exec_at
    )
    other_storage = scheduler.settings.model_copy(update={"job_table": "otherjobs"})
    with dependencies.overridden(settings=lambda: other_storage):
        scheduler.host.advance_to(exec_at + timedelta(seconds=1))
    ended = scheduler.orchestration(transaction_id)
    assert ended.runtime_status is RuntimeStatus.COMPLETED
    assert ended.output["state"] == "gone"
    assert httpserver.log == []
    scheduler.host.advance_to(exec_at + timedelta(minutes=20))
    status = (await scheduler.api.get(f"/api/schedule/{transaction_id}/status")).json()
    assert status["state"] == "pending"

    await repair()
    scheduler.host.run()

    assert len(httpserver.log) == 1
    status = (await scheduler.api.get(f"/api/schedule/{transaction_id}/status")).json()
    assert status["state"] == "succeeded"
