"""Flow control on the running app: jobs due together through one key take turns.

Three jobs due at the same moment go through one flow key with `max_parallel` 1 to a local
receiver that holds each request a second: they must all fire, once each, one at a time.
On the local durable host this runs the grant's activity (which raises the waiter's event
through the durable client) on the app's own event loop, as the Python worker would. The
jobs are scheduled with the other waiting modules' (conftest.py's `jobs_due_together`), so
their firing window is waited out once for all of them.
"""

import contextlib
import itertools
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.live.conftest import JobsDueTogether
from tests.support.counting_receiver import CountingReceiver

pytestmark = pytest.mark.live
LEAD = timedelta(seconds=65)
JOBS = 3
HOLD_SECONDS = 1.0


@dataclass(frozen=True)
class TakingTurns:
    slow_receiver: CountingReceiver
    exec_at: datetime
    ids: list[str]


def schedule_jobs(api: httpx.Client, stack: contextlib.ExitStack) -> TakingTurns:
    """A receiver that holds each request a second, and three jobs due together through one
    flow key with `max_parallel` 1."""
    slow_receiver = stack.enter_context(CountingReceiver(hold_seconds=HOLD_SECONDS))
    exec_at = datetime.now(UTC) + LEAD
    key = f"live-{uuid.uuid4().hex[:12]}"
    body = {
        "exec_at": exec_at.isoformat(),
        "prompt_type": "http.call",
        "payload": {"method": "POST", "url": slow_receiver.url, "json": {"n": 1}},
        "flow_control": {"key": key, "max_parallel": 1},
    }
    ids = []
    for _ in range(JOBS):
        reply = api.post("/api/schedule", json=body)
        assert reply.status_code == 202, reply.text
        ids.append(reply.json()["transaction_id"])
    return TakingTurns(slow_receiver, exec_at, ids)


def test_jobs_through_one_key_with_max_parallel_one_take_turns(
    api: httpx.Client, jobs_due_together: JobsDueTogether, max_lateness: float
) -> None:
    taking_turns: TakingTurns = jobs_due_together.of(__name__)
    ids, slow_receiver = taking_turns.ids, taking_turns.slow_receiver
    deadline = taking_turns.exec_at.timestamp() + max_lateness + JOBS * HOLD_SECONDS * 2
    while True:  # at least once: the other modules' tests may have run past the deadline
        states = {i: api.get(f"/api/schedule/{i}/status").json()["state"] for i in ids}
        if all(state == "succeeded" for state in states.values()) or time.time() >= deadline:
            break
        time.sleep(1.0)
    assert states == dict.fromkeys(ids, "succeeded")
    assert slow_receiver.calls == dict.fromkeys(ids, 1)
    assert slow_receiver.max_in_flight == 1
    # One at a time: each request arrived after the one before had been held its second.
    arrivals = sorted(slow_receiver.arrivals)
    assert all(b - a >= HOLD_SECONDS for a, b in itertools.pairwise(arrivals))
    # On time: none before its exec_at, the last within the lateness bound and the turns.
    assert min(slow_receiver.arrived_at) >= taking_turns.exec_at.timestamp() - 1.0
    assert max(slow_receiver.arrived_at) <= deadline
