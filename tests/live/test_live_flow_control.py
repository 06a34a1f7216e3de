"""Flow control on the running app: jobs due together through one key take turns.

Three jobs due at the same moment go through one flow key with `max_parallel` 1 to a local
receiver that holds each request a second: they must all fire, once each, one at a time.
On the local durable host this runs the grant's activity (which raises the waiter's event
through the durable client) on the app's own event loop, as the Python worker would.
"""

import itertools
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.support.counting_receiver import CountingReceiver

pytestmark = pytest.mark.live
LEAD = timedelta(seconds=65)
JOBS = 3
HOLD_SECONDS = 1.0


@pytest.fixture
def slow_receiver() -> Iterator[CountingReceiver]:
    with CountingReceiver(hold_seconds=HOLD_SECONDS) as receiver:
        yield receiver


def test_jobs_through_one_key_with_max_parallel_one_take_turns(
    api: httpx.Client, slow_receiver: CountingReceiver, max_lateness: float
) -> None:
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

    deadline = time.monotonic() + LEAD.total_seconds() + max_lateness + JOBS * HOLD_SECONDS * 2
    states: dict[str, str] = {}
    while time.monotonic() < deadline:
        states = {i: api.get(f"/api/schedule/{i}/status").json()["state"] for i in ids}
        if all(state == "succeeded" for state in states.values()):
            break
        time.sleep(1.0)
    assert states == dict.fromkeys(ids, "succeeded")
    assert slow_receiver.calls == dict.fromkeys(ids, 1)
    assert slow_receiver.max_in_flight == 1
    # One at a time: each request arrived after the one before had been held its second.
    arrivals = sorted(slow_receiver.arrivals)
    assert all(b - a >= HOLD_SECONDS for a, b in itertools.pairwise(arrivals))
