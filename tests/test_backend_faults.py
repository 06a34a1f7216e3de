"""What callers see when the durable backend fails or is slow: 503s that leave no job behind."""

from datetime import timedelta
from typing import Any

from pytest_httpserver import HTTPServer

from scheduling.registry import REGISTRY_ENTITY
from tests.support.durable_model import PurgeNonTerminal
from tests.support.scheduler import START, Scheduler, running_scheduler
from tests.support.services import AzuriteService

LOG = {"message": "m"}


def assert_503(reply: Any) -> None:
    assert reply.status == 503, reply.body
    assert reply.content_type == "application/problem+json"
    assert "Injected" not in reply.body.decode()  # backend internals stay in the logs


def registered(scheduler: Scheduler) -> list[str]:
    return [
        transaction_id
        for index in range(scheduler.settings.registry_shards)
        for transaction_id in (
            scheduler.host.entity(REGISTRY_ENTITY, f"shard-{index}").state or {}
        ).get("jobs", {})
    ]


async def test_a_failed_start_undoes_the_registration(scheduler: Scheduler) -> None:
    scheduler.host.fail_next("POST", "orchestrators/")
    reply = await scheduler.schedule("log.append", LOG)
    assert_503(reply)
    assert "nothing was scheduled" in reply.json()["detail"]
    scheduler.host.run()
    assert scheduler.host.instance_ids() == []
    assert registered(scheduler) == []


async def test_status_errors_are_503_not_404(scheduler: Scheduler) -> None:
    transaction_id = await scheduler.accepted("log.append", LOG)
    scheduler.host.run()
    for method, url in [
        ("GET", f"/api/schedule/{transaction_id}/status"),
        ("DELETE", f"/api/schedule/{transaction_id}"),
        ("GET", "/api/schedule"),
    ]:
        scheduler.host.fail_next("GET", f"instances/{transaction_id}")
        assert_503(await scheduler.api.request(method, url))
    # Nothing was lost: the job is still there and still fires.
    scheduler.host.advance(3600)
    status = await scheduler.api.get(f"/api/schedule/{transaction_id}/status")
    assert status.json()["output"]["ok"] is True


async def test_a_delete_the_shard_does_not_confirm_in_time_is_503_then_can_be_retried(
    azurite: AzuriteService, httpserver: HTTPServer
) -> None:
    httpserver.expect_request("/never").respond_with_data("no")
    with running_scheduler(azurite, backend_works_while_routes_wait=False) as scheduler:
        exec_at = START + timedelta(minutes=10)
        transaction_id = await scheduler.accepted(
            "http.call", {"url": httpserver.url_for("/never")}, at=exec_at
        )
        scheduler.host.run()
        first = await scheduler.api.delete(f"/api/schedule/{transaction_id}")
        assert_503(first)
        assert "try again" in first.json()["detail"]
        # The cancel still lands: the job does not fire, and reads as deleted once it ends.
        scheduler.host.run()
        scheduler.host.advance_to(exec_at + timedelta(minutes=1))
        assert httpserver.log == []
        assert scheduler.host.instance(transaction_id).output["cancelled"] is True
        assert (await scheduler.api.get(f"/api/schedule/{transaction_id}/status")).status == 404
        assert (await scheduler.api.delete(f"/api/schedule/{transaction_id}")).status == 404


async def test_delete_and_wipe_are_consistent_on_a_backend_that_purges_only_finished_work(
    azurite: AzuriteService,
) -> None:
    with running_scheduler(azurite, purge_non_terminal=PurgeNonTerminal.KEEP) as scheduler:
        one = await scheduler.accepted("log.append", LOG)
        two = await scheduler.accepted("log.append", LOG)
        scheduler.host.run()
        assert (await scheduler.api.delete(f"/api/schedule/{one}")).status == 200
        assert (await scheduler.api.get(f"/api/schedule/{one}/status")).status == 404
        assert (await scheduler.api.delete(f"/api/schedule/{one}")).status == 404
        wiped = await scheduler.api.delete("/api/schedule")
        assert wiped.json()["cancelled"] == 1
        scheduler.host.run()
        assert (await scheduler.api.get(f"/api/schedule/{two}/status")).status == 404
        assert (await scheduler.api.get("/api/schedule")).json()["jobs"] == []
        # Read as deleted, then purged on that read.
        assert scheduler.host.find_instance(two) is None
