"""Many jobs at once on the running app: a batch creates 300 labelled jobs and 50 others, a
filtered delete cancels the labelled ones, and only the 50 reach the receiver (the 1,000-job
case runs on the virtual clock in tests/test_bulk_cancel.py; this one waits in real time).
The jobs are scheduled and cancelled with the other waiting modules' (conftest.py's
`jobs_due_together`), so their firing window is waited out once for all of them."""

import contextlib
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.live.conftest import JobsDueTogether
from tests.support.counting_receiver import CountingReceiver

pytestmark = pytest.mark.live
# MIN_LEAD_SECONDS is 60 on the app under test; creating 350 jobs and cancelling 300 take a
# few seconds, up to ten on a loaded machine.
LEAD = timedelta(seconds=80)
LABELLED = 300
OTHERS = 50
# After the last of the others has arrived: time for any cancelled job that would still fire.
QUIET_SECONDS = 5.0


@dataclass(frozen=True)
class Cancelled:
    """The jobs, what the filtered deletes answered, and when they were done."""

    receiver: CountingReceiver
    exec_at: datetime
    labelled: list[str]
    others: list[str]
    cancelled: int
    firing: list[str]
    listed_after: list[dict[str, Any]]
    done_at: datetime


def created(api: httpx.Client, jobs: list[dict[str, Any]]) -> list[str]:
    reply = api.post("/api/schedule/batch", json={"jobs": jobs}, timeout=120)
    assert reply.status_code == 200, reply.text
    outcome = reply.json()
    assert (outcome["created"], outcome["failed"]) == (len(jobs), 0), outcome
    return [result["job"]["transaction_id"] for result in outcome["results"]]


def schedule_jobs(api: httpx.Client, stack: contextlib.ExitStack) -> Cancelled:
    """300 labelled jobs and 50 others, all due together; then the labelled ones cancelled
    by their labels, page by page."""
    receiver = stack.enter_context(CountingReceiver(hold_seconds=0))
    exec_at = datetime.now(UTC) + LEAD
    run = uuid.uuid4().hex[:16]

    def job(number: int, labels: dict[str, str] | None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "exec_at": exec_at.isoformat(),
            "prompt_type": "http.call",
            "payload": {"method": "POST", "url": receiver.url, "json": {"n": number}},
            "flow_control": {"max_parallel": 100, "rate_per_second": 500},
        }
        if labels:
            body["labels"] = labels
        return body

    labelled = created(api, [job(n, {"suite": "live-bulk", "run": run}) for n in range(LABELLED)])
    others = created(api, [job(n, {"run": f"{run}-kept"}) for n in range(OTHERS)])

    cancelled, firing, cursor = 0, [], None
    for _ in range(LABELLED):  # bounded: each call cancels some, or says it is complete
        params: dict[str, Any] = {"label": [f"run={run}", "suite=live-bulk"]}
        if cursor:
            params["cursor"] = cursor
        reply = api.delete("/api/schedule", params=params, timeout=120)
        assert reply.status_code == 200, reply.text
        body = reply.json()
        cancelled += body["cancelled"]
        firing += body["firing"]
        cursor = body["next_cursor"]
        if body["complete"]:
            break
    done_at = datetime.now(UTC)
    listed = api.get("/api/schedule", params={"label": f"run={run}"}).json()["jobs"]
    return Cancelled(receiver, exec_at, labelled, others, cancelled, firing, listed, done_at)


def test_labelled_jobs_cancelled_by_label_never_fire(
    api: httpx.Client, jobs_due_together: JobsDueTogether, max_lateness: float
) -> None:
    bulk: Cancelled = jobs_due_together.of(__name__)
    assert bulk.done_at < bulk.exec_at, "creating and cancelling took longer than the lead"
    assert (bulk.cancelled, bulk.firing) == (LABELLED, [])
    assert bulk.listed_after == []

    receiver = bulk.receiver
    deadline = bulk.exec_at.timestamp() + max_lateness + 30
    while time.time() < deadline and len(receiver.calls) < OTHERS:
        time.sleep(0.5)
    time.sleep(QUIET_SECONDS)
    # Each of the others once; none of the cancelled, ever.
    assert receiver.calls == dict.fromkeys(bulk.others, 1)
    for transaction_id in bulk.labelled[:: LABELLED // 20]:
        status = api.get(f"/api/schedule/{transaction_id}/status").json()
        assert (status["state"], status["attempts"]) == ("cancelled", 0)
