"""Metrics and logs of real jobs, read with the OpenTelemetry SDK's in-memory reader.

The app's instruments go to whichever MeterProvider is installed; this module installs the
SDK's with an InMemoryMetricReader (once per process: OpenTelemetry allows one), runs jobs
through the `scheduler` fixture, and reads what a dashboard would read.
"""

import asyncio
import logging
from datetime import timedelta
from typing import Any

import pytest
from opentelemetry import metrics
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from pytest_httpserver import HTTPServer

from blueprints.telemetry import (
    LOG_LEVEL_SETTING,
    SDK_REQUEST_LOGGER,
    log_level,
    quiet_sdk_requests,
)
from scheduling.metrics import METER_NAME
from tests.support.layout import APP_PACKAGES
from tests.support.poison import POISONS
from tests.support.scheduler import Scheduler

_reader = InMemoryMetricReader()


@pytest.fixture(scope="module", autouse=True)
def sdk_meter_provider() -> None:
    metrics.set_meter_provider(MeterProvider(metric_readers=[_reader]))


def points(name: str) -> list[Any]:
    """Every data point of instrument `name` (cumulative since the process started)."""
    data = _reader.get_metrics_data()
    found: list[Any] = []
    for resource in data.resource_metrics if data else ():
        for scope in resource.scope_metrics:
            if scope.scope.name != METER_NAME:
                continue
            for metric in scope.metrics:
                if metric.name == name:
                    found.extend(metric.data.data_points)
    return found


def count(name: str, **attributes: str) -> float:
    """A counter's total (or a histogram's count) over the points with these attributes."""
    total = 0.0
    for point in points(name):
        if all(point.attributes.get(k) == v for k, v in attributes.items()):
            value: Any = getattr(point, "value", None) or getattr(point, "count", 0)
            total += float(value)
    return total


def histogram_sum(name: str, **attributes: str) -> float:
    return sum(
        float(point.sum)
        for point in points(name)
        if all(point.attributes.get(k) == v for k, v in attributes.items())
    )


async def test_a_job_that_succeeds_is_counted_accepted_fired_and_succeeded(
    scheduler: Scheduler, httpserver: HTTPServer
) -> None:
    httpserver.expect_request("/ok").respond_with_data("fine")
    destination = f"POST http://127.0.0.1:{httpserver.port}"
    exec_at = scheduler.now() + timedelta(minutes=5)
    before = {
        name: count(f"scheduler.jobs.{name}", destination=destination)
        for name in ("accepted", "fired", "succeeded", "failed")
    }
    await scheduler.accepted("http.call", {"url": httpserver.url_for("/ok")}, at=exec_at)
    scheduler.host.advance_to(exec_at + timedelta(seconds=1))

    assert len(httpserver.log) == 1
    after = {
        name: count(f"scheduler.jobs.{name}", destination=destination)
        for name in ("accepted", "fired", "succeeded", "failed")
    }
    assert after == {
        "accepted": before["accepted"] + 1,
        "fired": before["fired"] + 1,
        "succeeded": before["succeeded"] + 1,
        "failed": before["failed"],
    }
    assert count("scheduler.attempt.duration", destination=destination) >= 1


async def test_a_job_that_fails_is_counted_failed_by_destination(
    scheduler: Scheduler, httpserver: HTTPServer
) -> None:
    httpserver.expect_request("/broken").respond_with_data("no", status=400)
    destination = f"POST http://127.0.0.1:{httpserver.port}"
    failed_before = count("scheduler.jobs.failed", destination=destination)
    succeeded_before = count("scheduler.jobs.succeeded", destination=destination)
    exec_at = scheduler.now() + timedelta(minutes=5)
    await scheduler.accepted("http.call", {"url": httpserver.url_for("/broken")}, at=exec_at)
    scheduler.host.advance_to(exec_at + timedelta(seconds=1))

    assert len(httpserver.log) == 1
    assert count("scheduler.jobs.failed", destination=destination) == failed_before + 1
    assert count("scheduler.jobs.succeeded", destination=destination) == succeeded_before


async def test_lateness_is_how_long_after_its_due_time_an_attempt_fired(
    scheduler: Scheduler,
) -> None:
    attributes = {"prompt_type": "log.append", "destination": "none"}
    count_before = count("scheduler.attempt.lateness", **attributes)
    sum_before = histogram_sum("scheduler.attempt.lateness", **attributes)
    exec_at = scheduler.now() + timedelta(minutes=5)
    await scheduler.accepted("log.append", {"message": "late"}, at=exec_at)
    # The app was not running at the due time (e.g. scaled to zero): 45 s late.
    scheduler.host.set_clock(exec_at + timedelta(seconds=45))
    scheduler.host.run()

    assert count("scheduler.attempt.lateness", **attributes) == count_before + 1
    assert histogram_sum("scheduler.attempt.lateness", **attributes) - sum_before == 45_000


async def test_deleting_a_job_counts_it_cancelled(scheduler: Scheduler) -> None:
    before = count("scheduler.jobs.cancelled", prompt_type="log.append", by="delete")
    transaction_id = await scheduler.accepted("log.append", {"message": "never"})
    reply = await scheduler.api.delete(f"/api/schedule/{transaction_id}")
    assert reply.status == 200
    assert count("scheduler.jobs.cancelled", prompt_type="log.append", by="delete") == before + 1


async def test_every_log_record_of_an_attempt_carries_the_job_id(
    scheduler: Scheduler, httpserver: HTTPServer, caplog: pytest.LogCaptureFixture
) -> None:
    httpserver.expect_request("/hook").respond_with_data("fine")
    exec_at = scheduler.now() + timedelta(minutes=5)
    # In a task of its own, as the host runs each invocation: the id the create names stays
    # in that task, so whatever carries it below was named by the attempt itself.
    transaction_id = await asyncio.create_task(
        scheduler.accepted("http.call", {"url": httpserver.url_for("/hook")}, at=exec_at)
    )
    caplog.clear()
    try:
        with caplog.at_level(logging.DEBUG):
            quiet_sdk_requests(logging.DEBUG)  # the SDK's line per storage request, too
            scheduler.host.advance_to(exec_at + timedelta(seconds=1))
    finally:
        quiet_sdk_requests(logging.INFO)

    assert len(httpserver.log) == 1
    # The orchestrator does no I/O: every storage call logged here is the attempt's.
    attempt_records = [
        r for r in caplog.records if r.name.startswith(("azure.core", "urllib3", *APP_PACKAGES))
    ]
    assert attempt_records, "the attempt logged nothing to check"
    assert {getattr(r, "transaction_id", None) for r in attempt_records} == {transaction_id}
    # And nothing outside a job is labelled with one.
    target_records = [r for r in caplog.records if r.name == "werkzeug"]
    assert {getattr(r, "transaction_id", None) for r in target_records} <= {None}


async def test_store_calls_do_not_log_each_request_at_info(
    scheduler: Scheduler, caplog: pytest.LogCaptureFixture
) -> None:
    # The host runs the app's log records at INFO: the SDK's line per request and per answer
    # (headers and all) would bury the app's own lines.
    caplog.clear()
    with caplog.at_level(logging.INFO):
        transaction_id = await scheduler.accepted("log.append", {"message": "m"})
        reply = await scheduler.api.get(f"/api/schedule/{transaction_id}/status")
    assert reply.status == 200
    assert [r for r in caplog.records if r.name == SDK_REQUEST_LOGGER] == []
    with caplog.at_level(logging.WARNING):
        # Its warnings still come through.
        logging.getLogger(SDK_REQUEST_LOGGER).warning("a warning")
    assert [r.getMessage() for r in caplog.records if r.name == SDK_REQUEST_LOGGER] == ["a warning"]


@pytest.mark.parametrize("kind", sorted(POISONS))
async def test_an_unreadable_job_is_counted_and_its_log_line_names_it(
    scheduler: Scheduler, caplog: pytest.LogCaptureFixture, kind: str
) -> None:
    job = await scheduler.accepted("log.append", {"message": "m"})
    POISONS[kind](scheduler, job)
    reason = "key" if kind == "removed-key" else "record"
    before = count("scheduler.jobs.unreadable", reason=reason)
    with caplog.at_level(logging.ERROR):
        assert (await scheduler.api.get("/api/schedule")).status == 200
        assert (await scheduler.api.get(f"/api/schedule/{job}/status")).status == 200
    assert count("scheduler.jobs.unreadable", reason=reason) == before + 2
    named = [r for r in caplog.records if f"job {job} is unreadable: " in r.getMessage()]
    assert len(named) == 2


@pytest.mark.parametrize(
    ("setting", "level"),
    [
        ("", logging.INFO),
        ("debug", logging.DEBUG),
        (" WARNING ", logging.WARNING),
        ("loud", logging.INFO),
    ],
)
def test_scheduler_log_level_names_the_level(setting: str, level: int) -> None:
    assert log_level({LOG_LEVEL_SETTING: setting}) == level


def test_scheduler_log_level_debug_lets_the_sdk_request_lines_through(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sdk = logging.getLogger(SDK_REQUEST_LOGGER)
    try:
        with caplog.at_level(logging.DEBUG):
            quiet_sdk_requests(logging.INFO)
            sdk.info("Request URL: quiet")
            quiet_sdk_requests(logging.DEBUG)
            sdk.info("Request URL: asked for")
    finally:
        quiet_sdk_requests(logging.INFO)
    messages = [r.getMessage() for r in caplog.records if r.name == SDK_REQUEST_LOGGER]
    assert messages == ["Request URL: asked for"]


def test_scheduler_log_level_debug_never_prints_a_storage_sas_signature(
    caplog: pytest.LogCaptureFixture, httpserver: HTTPServer
) -> None:
    # AzureWebJobsStorage may be a connection string with a SAS: its `sig` is the account's
    # credential, sent in every request's query. At DEBUG the SDK's own request line shows
    # it REDACTED; no other line may print it in clear (urllib3 logs each raw request line).
    from azure.core.exceptions import HttpResponseError

    from storage.table_storage import TableEndpoint, open_table

    signature = "NotForLogs0123456789abcdefSIG%3D"
    sas = f"sv=2022-11-02&ss=t&srt=sco&sp=rwdlacu&se=2030-01-01T00%3A00%3A00Z&sig={signature}"
    connection = (
        f"TableEndpoint={httpserver.url_for('/devstoreaccount1')};SharedAccessSignature={sas}"
    )
    client, _ = open_table(TableEndpoint(connection_string=connection), "jobs")
    try:
        with caplog.at_level(logging.DEBUG):
            quiet_sdk_requests(logging.DEBUG)
            with pytest.raises(
                HttpResponseError
            ):  # the server knows no table: only the log matters
                client.get_entity("p", "r")
    finally:
        quiet_sdk_requests(logging.INFO)
        client.close()
    assert httpserver.log, "the request never reached the server"
    assert caplog.records, "nothing was logged at DEBUG"
    # The test server's own access log (werkzeug) is not the app's.
    app_records = [r for r in caplog.records if not r.name.startswith("werkzeug")]
    leaks = [(r.name, r.getMessage()) for r in app_records if "NotForLogs" in r.getMessage()]
    assert leaks == []
