"""Writers that meet on one record: whichever compare-and-swap lands first wins, visibly.

Each race runs the real activity (in a worker thread, as the host runs it) against the real
route, at the same instant, on real Azurite; the invariants hold whatever the interleaving.
"""

import asyncio
import json
from collections import Counter
from datetime import timedelta

from pytest_httpserver import HTTPServer

from function_app import app
from local_durable_host.worker_calls import call_activity, discover
from scheduling.job_record import AttemptOrder
from tests.support.scheduler import START, Scheduler

EXECUTE_PROMPT = discover(app).activities["execute_prompt"]
TRIALS = 12


async def test_a_delete_racing_the_claim_exactly_one_wins(
    scheduler: Scheduler, httpserver: HTTPServer
) -> None:
    httpserver.expect_request("/hook").respond_with_data("ok")
    outcomes: Counter[str] = Counter()
    for _ in range(TRIALS):
        exec_at = START + timedelta(minutes=5)
        transaction_id = await scheduler.accepted(
            "http.call", {"url": httpserver.url_for("/hook")}, at=exec_at
        )
        stored = scheduler.job_store.get(transaction_id)
        assert stored is not None
        order = AttemptOrder(
            transaction_id=transaction_id,
            generation=stored.record.generation,
            due_at=stored.record.exec_at,
            attempt=1,
        )
        before = len(httpserver.log)

        attempt, delete = await asyncio.gather(
            asyncio.to_thread(
                call_activity,
                EXECUTE_PROMPT,
                order.model_dump_json(),
                scheduler.host.client_binding(),
            ),
            scheduler.api.delete(f"/api/schedule/{transaction_id}"),
        )

        assert attempt.result_json is not None, attempt.error_message
        report = json.loads(attempt.result_json)
        sent = len(httpserver.log) - before
        after = scheduler.job_store.get(transaction_id)
        if delete.status == 200 and delete.json()["state_before"] == "pending":
            # The delete landed first: the attempt lost its claim and sent nothing.
            assert (report["state"], sent) == ("cancelled", 0)
            assert after is not None
            assert after.record.state == "cancelled"
            outcomes["delete won"] += 1
        else:
            # The claim landed first: one request went out; the delete saw it firing (409)
            # or, if the attempt had already finished, deleted the ended job's record.
            assert (report["state"], sent) == ("succeeded", 1)
            if delete.status == 409:
                assert after is not None
                assert after.record.state == "succeeded"
            else:
                assert delete.status == 200
                assert delete.json()["state_before"] == "succeeded"
                assert after is None
            outcomes["claim won"] += 1
    assert sum(outcomes.values()) == TRIALS


async def test_a_wipe_racing_creates_loses_no_job(
    scheduler: Scheduler, httpserver: HTTPServer
) -> None:
    httpserver.expect_request("/hook").respond_with_data("ok")
    exec_at = START + timedelta(minutes=10)
    earlier = [
        await scheduler.accepted("http.call", {"url": httpserver.url_for("/hook")}, at=exec_at)
        for _ in range(20)
    ]
    creates = [
        scheduler.schedule("http.call", {"url": httpserver.url_for("/hook")}, at=exec_at)
        for _ in range(10)
    ]
    wipe, *created = await asyncio.gather(scheduler.api.post("/api/wipe"), *creates)

    assert all(reply.status == 202 for reply in created)
    racing = [reply.json()["transaction_id"] for reply in created]
    states = {}
    for transaction_id in [*earlier, *racing]:
        found = scheduler.job_store.get(transaction_id)
        assert found is not None
        states[transaction_id] = found.record.state
    assert {states[transaction_id] for transaction_id in earlier} == {"cancelled"}
    cancelled = [tid for tid, state in states.items() if state == "cancelled"]
    assert wipe.json() == {
        "cancelled": len(cancelled),
        "firing": 0,
        "unreadable": 0,
        "complete": True,
    }

    # Every job the wipe did not reach is still live, listed, and fires exactly once.
    survivors = sorted(tid for tid, state in states.items() if state == "pending")
    listed = (await scheduler.api.get("/api/schedule?limit=500")).json()["jobs"]
    assert sorted(job["transaction_id"] for job in listed) == survivors
    scheduler.host.advance_to(exec_at + timedelta(minutes=1))
    fired = sorted(request.headers["X-Scheduler-Transaction-Id"] for request, _ in httpserver.log)
    assert fired == survivors
