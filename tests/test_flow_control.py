"""Flow control per destination, through the whole app: slots, waiting, lost releases.

The burst test runs the stand-in with activities on threads (as the Python worker runs
sync functions), so attempts really overlap at the target, which counts how many requests
it serves at once; the control test shows that count does go above the limit when the
limit allows it, so the burst test would see a broken limit.
"""

import asyncio
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from api.job_views import JobStatus
from blueprints.flow_control import ENTITY_CALL_DEADLINE
from local_durable_host.model import RuntimeStatus
from scheduling.timing import format_utc
from tests.support.counting_receiver import CountingReceiver
from tests.support.scheduler import START, Scheduler, running_scheduler
from tests.support.services import AzuriteService

BURST = 2000
# Activities on threads: attempts that the flow key lets run together overlap at the target.
CONCURRENT_HOST = {
    "activity_workers": 8,
    "check_replay_determinism": False,
    "max_steps_per_run": 10_000_000,
}
FLOW_ENTITY = "flow_control"


@pytest.fixture
def receiver() -> Iterator[CountingReceiver]:
    with CountingReceiver(hold_seconds=0.005) as running:
        yield running


def job_body(url: str, at: datetime, **flow_control: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "exec_at": format_utc(at),
        "prompt_type": "http.call",
        "payload": {"method": "POST", "url": url, "json": {"n": 1}},
    }
    return {**body, "flow_control": flow_control} if flow_control else body


async def schedule_many(
    scheduler: Scheduler, count: int, body: dict[str, Any], at_once: int = 16
) -> list[str]:
    ids: list[str] = []
    for start in range(0, count, at_once):
        replies = await asyncio.gather(
            *(scheduler.api.post("/api/schedule", body) for _ in range(min(at_once, count - start)))
        )
        for reply in replies:
            assert reply.status == 202, reply.json()
            ids.append(reply.json()["transaction_id"])
    return ids


async def burst(
    azurite: AzuriteService, receiver: CountingReceiver, count: int, max_parallel: int
) -> tuple[list[str], int]:
    """`count` jobs due at one instant to the receiver, run until all have fired; their ids,
    and the most attempts (activities, each one whole attempt) that ran at once."""
    with running_scheduler(
        azurite, host_options=CONCURRENT_HOST, flow_rate_per_second_bound=100_000
    ) as scheduler:
        at = START + timedelta(minutes=10)
        # The rate is not what these tests are about: high enough never to hold anyone back.
        body = job_body(receiver.url, at, max_parallel=max_parallel, rate_per_second=100_000)
        ids = await schedule_many(scheduler, count, body)
        scheduler.host.advance_to(at)
        # Every slot came back, nobody waits.
        state = scheduler.host.entity(FLOW_ENTITY, "127.0.0.1").state or {}
        assert (state.get("holders"), state.get("queue")) in ((None, None), ([], []))
        return ids, scheduler.host.peak_concurrent_activities("execute_prompt")


async def test_2000_jobs_due_at_once_never_have_more_than_max_parallel_in_flight(
    azurite: AzuriteService, receiver: CountingReceiver
) -> None:
    ids, attempts_at_once = await burst(azurite, receiver, BURST, max_parallel=5)
    assert receiver.calls == {transaction_id: 1 for transaction_id in ids}
    assert receiver.max_in_flight <= 5
    # Whole attempts (claim, request, record) overlapped, up to the limit and no further.
    assert attempts_at_once == 5


async def test_the_receiver_does_see_more_in_flight_when_the_limit_allows_it(
    azurite: AzuriteService, receiver: CountingReceiver
) -> None:
    receiver.hold_seconds = 0.2  # long enough for attempts that run together to meet there
    ids, attempts_at_once = await burst(azurite, receiver, 40, max_parallel=40)
    assert receiver.calls == {transaction_id: 1 for transaction_id in ids}
    assert receiver.max_in_flight > 5
    assert attempts_at_once > 5


async def create(scheduler: Scheduler, body: dict[str, Any]) -> str:
    reply = await scheduler.api.post("/api/schedule", body)
    assert reply.status == 202, reply.json()
    transaction_id: str = reply.json()["transaction_id"]
    return transaction_id


async def status_of(scheduler: Scheduler, transaction_id: str) -> dict[str, Any]:
    reply = await scheduler.api.get(f"/api/schedule/{transaction_id}/status")
    assert reply.status == 200, reply.body
    status: dict[str, Any] = reply.json()
    return status


def phase_of(scheduler: Scheduler, transaction_id: str) -> Any:
    return (scheduler.orchestration(transaction_id).custom_status or {}).get("phase")


def step_until(scheduler: Scheduler, *done: Any) -> None:
    """Process one message at a time until every check in `done` holds."""
    while not all(check() for check in done):
        assert scheduler.host.step(), "the host went idle first"


class GatedTarget(CountingReceiver):
    """Holds every request until `open()`: an attempt stays in flight while the test looks."""

    def __init__(self) -> None:
        super().__init__(hold_seconds=0)
        self.gate = threading.Event()

    def enter(self, transaction_id: str) -> None:
        super().enter(transaction_id)
        self.gate.wait(30)


@pytest.fixture
def gated() -> Iterator[GatedTarget]:
    with GatedTarget() as target:
        yield target
        target.gate.set()


async def test_a_job_waiting_for_a_slot_says_so_in_its_status(
    azurite: AzuriteService, gated: GatedTarget
) -> None:
    with running_scheduler(azurite, host_options={"activity_workers": 2}) as scheduler:
        at = START + timedelta(minutes=10)
        first = await create(scheduler, job_body(gated.url, at, max_parallel=1))
        second = await create(scheduler, job_body(gated.url, at, max_parallel=1))
        scheduler.host.run()
        scheduler.host.set_clock(at)
        step_until(scheduler, lambda: phase_of(scheduler, second) == "waiting for a slot")

        waiting = await status_of(scheduler, second)
        assert waiting["state"] == "pending"
        assert waiting["waiting"] == {
            "phase": "waiting for a slot",
            "flow_key": "127.0.0.1",
            "attempt": 1,
            "position": 1,
        }
        assert waiting["flow"] == {"key": "127.0.0.1", "max_parallel": 1, "rate_per_second": 50.0}
        JobStatus.model_validate(waiting)  # as the OpenAPI document describes it
        assert "waiting" not in await status_of(scheduler, first)
        # The durable backend not answering costs the detail, never the status.
        scheduler.host.fail_next("GET", f"instances/{scheduler.orchestration(second).instance_id}")
        unsure = await status_of(scheduler, second)
        assert unsure["state"] == "pending"
        assert "waiting" not in unsure

        gated.gate.set()
        scheduler.host.run()
        assert gated.calls == {first: 1, second: 1}
        assert gated.max_in_flight == 1
        done = await status_of(scheduler, second)
        assert done["state"] == "succeeded"
        assert "waiting" not in done


async def test_a_slot_whose_release_is_lost_is_reclaimed_after_its_lease(
    azurite: AzuriteService, receiver: CountingReceiver
) -> None:
    lease, recheck = 120, 30
    with running_scheduler(
        azurite,
        flow_slot_lease_seconds=lease,
        flow_recheck_seconds=recheck,
        http_call_max_timeout_seconds=30,
    ) as scheduler:
        at = START + timedelta(minutes=10)
        holder = await create(scheduler, job_body(receiver.url, at, max_parallel=1))
        waiter = await create(scheduler, job_body(receiver.url, at, max_parallel=1))
        scheduler.host.run()
        scheduler.host.set_clock(at)
        # The first job holds the slot, its attempt not yet run; deleting it now terminates
        # its orchestration, which therefore never gives the slot back.
        step_until(scheduler, lambda: phase_of(scheduler, holder) == "firing")
        assert (await scheduler.api.delete(f"/api/schedule/{holder}")).status == 200

        scheduler.host.advance_to(at + timedelta(seconds=lease - 1))
        assert receiver.calls == {}
        assert (await status_of(scheduler, waiter))["waiting"]["phase"] == "waiting for a slot"

        scheduler.host.advance_to(at + timedelta(seconds=lease + recheck))
        assert receiver.calls == {waiter: 1}
        fired = await status_of(scheduler, waiter)
        assert fired["state"] == "succeeded"
        assert fired["fired_at"] == format_utc(at + timedelta(seconds=lease + recheck))
        assert (await status_of(scheduler, holder))["state"] == "cancelled"


async def test_a_waiter_deleted_in_line_passes_its_grant_on_at_once(
    azurite: AzuriteService, gated: GatedTarget
) -> None:
    with running_scheduler(azurite, host_options={"activity_workers": 2}) as scheduler:
        at = START + timedelta(minutes=10)
        first, deleted, last = [
            await create(scheduler, job_body(gated.url, at, max_parallel=1)) for _ in range(3)
        ]
        scheduler.host.run()
        scheduler.host.set_clock(at)
        step_until(
            scheduler,
            lambda: phase_of(scheduler, deleted) == "waiting for a slot",
            lambda: phase_of(scheduler, last) == "waiting for a slot",
        )
        assert (await scheduler.api.delete(f"/api/schedule/{deleted}")).status == 200
        # The termination lands while the first attempt is still in flight.
        step_until(
            scheduler,
            lambda: scheduler.orchestration(deleted).runtime_status == RuntimeStatus.TERMINATED,
        )

        gated.gate.set()
        scheduler.host.run()
        assert gated.calls == {first: 1, last: 1}
        # Told by the first job's release (through the gone waiter's), not by a recheck.
        assert (await status_of(scheduler, last))["fired_at"] == format_utc(at)


async def test_a_job_beyond_a_full_line_asks_again_and_fires(
    azurite: AzuriteService, gated: GatedTarget
) -> None:
    with running_scheduler(
        azurite, host_options={"activity_workers": 2}, flow_queue_limit=1, flow_recheck_seconds=30
    ) as scheduler:
        at = START + timedelta(minutes=10)
        first, in_line, beyond = [
            await create(scheduler, job_body(gated.url, at, max_parallel=1)) for _ in range(3)
        ]
        scheduler.host.run()
        scheduler.host.set_clock(at)
        step_until(
            scheduler,
            lambda: phase_of(scheduler, in_line) == "waiting for a slot",
            lambda: phase_of(scheduler, beyond) == "waiting for a slot",
        )
        # The line holds one: the third job is not in it, and knows no place.
        assert (await status_of(scheduler, in_line))["waiting"]["position"] == 1
        assert (await status_of(scheduler, beyond))["waiting"]["position"] is None

        gated.gate.set()
        scheduler.host.run()
        assert gated.calls == {first: 1, in_line: 1}
        scheduler.host.advance_to(at + timedelta(seconds=30))
        assert gated.calls == {first: 1, in_line: 1, beyond: 1}
        assert (await status_of(scheduler, beyond))["fired_at"] == format_utc(
            at + timedelta(seconds=30)
        )


@pytest.mark.parametrize(
    ("flow_control", "location", "error_type"),
    [
        ({"max_parallel": 101}, ["flow_control", "max_parallel"], "above_bound"),
        ({"rate_per_second": 500.5}, ["flow_control", "rate_per_second"], "above_bound"),
        ({"max_parallel": 0}, ["flow_control", "max_parallel"], "greater_than_equal"),
        ({"key": "a/b"}, ["flow_control", "key"], "string_pattern_mismatch"),
        ({"max_parallel": "5"}, ["flow_control", "max_parallel"], "int_type"),
        ({"burst": 5}, ["flow_control", "burst"], "extra_forbidden"),
    ],
)
async def test_flow_control_beyond_the_settings_is_refused_naming_the_field(
    scheduler: Scheduler, flow_control: dict[str, Any], location: list[str], error_type: str
) -> None:
    body = job_body("http://127.0.0.1:9/hook", START + timedelta(minutes=10), **flow_control)
    reply = await scheduler.api.post("/api/schedule", body)
    assert reply.status == 422, reply.body
    problem = reply.json()
    assert {"loc": location, "type": error_type} in [
        {"loc": error["loc"], "type": error["type"]} for error in problem["errors"]
    ]
    assert scheduler.orchestrations_started() == []


async def test_flow_control_is_only_where_a_job_or_the_settings_ask_for_it(
    azurite: AzuriteService,
) -> None:
    # FLOW_LIMITS names one destination; the app-wide default is off.
    with running_scheduler(azurite, flow_limits="127.0.0.2=2/5") as scheduler:
        at = START + timedelta(minutes=10)
        plain = await create(scheduler, job_body("http://127.0.0.1:9/a", at))
        by_host = await create(scheduler, job_body("http://127.0.0.1:9/a", at, max_parallel=4))
        own = await create(
            scheduler, job_body("http://127.0.0.1:9/a", at, key="team-a", max_parallel=3)
        )
        listed = await create(scheduler, job_body("http://127.0.0.2:9/a", at))
        logged = await scheduler.accepted("log.append", {"message": "hello"}, at=at)

        flows = {
            name: (await status_of(scheduler, transaction_id))["flow"]
            for name, transaction_id in [
                ("plain", plain),
                ("by_host", by_host),
                ("own", own),
                ("listed", listed),
                ("logged", logged),
            ]
        }
        assert flows == {
            "plain": None,
            "by_host": {"key": "127.0.0.1", "max_parallel": 4, "rate_per_second": 50.0},
            "own": {"key": "team-a", "max_parallel": 3, "rate_per_second": 50.0},
            "listed": {"key": "127.0.0.2", "max_parallel": 2, "rate_per_second": 5.0},
            "logged": None,
        }
        # A job may ask for less than FLOW_LIMITS gives its key, never for more.
        above = await scheduler.api.post(
            "/api/schedule", job_body("http://127.0.0.2:9/a", at, max_parallel=3)
        )
        assert above.status == 422, above.body
        assert above.json()["errors"][0]["loc"] == ["flow_control", "max_parallel"]
        # Nor step around them under a key of its own.
        around = await scheduler.api.post(
            "/api/schedule", job_body("http://127.0.0.2:9/a", at, key="team-b")
        )
        assert around.status == 422, around.body
        assert [(error["loc"], error["type"]) for error in around.json()["errors"]] == [
            (["flow_control", "key"], "operator_limited")
        ]

        scheduler.host.advance_to(at + timedelta(seconds=1))
        operations = scheduler.host.entity_operations
        assert sorted({(op.key, op.caller_instance_id) for op in operations}) == sorted(
            (key, scheduler.orchestration(job).instance_id)
            for key, job in (("127.0.0.1", by_host), ("team-a", own), ("127.0.0.2", listed))
        )
        assert len(operations) == 6  # an acquire and a release each
        assert (await status_of(scheduler, plain))["state"] == "failed"  # nothing listens on 9
        assert (await status_of(scheduler, logged))["state"] == "succeeded"


async def test_flow_control_by_default_puts_every_call_through_its_hosts_key(
    azurite: AzuriteService,
) -> None:
    with running_scheduler(azurite, flow_control_by_default=True) as scheduler:
        at = START + timedelta(minutes=10)
        plain = await create(scheduler, job_body("http://127.0.0.1:9/a", at))
        logged = await scheduler.accepted("log.append", {"message": "hello"}, at=at)
        assert (await status_of(scheduler, plain))["flow"] == {
            "key": "127.0.0.1",
            "max_parallel": scheduler.settings.flow_max_parallel,
            "rate_per_second": scheduler.settings.flow_rate_per_second,
        }
        assert (await status_of(scheduler, logged))["flow"] is None
        scheduler.host.advance_to(at + timedelta(seconds=1))
        assert [op.operation for op in scheduler.host.entity_operations] == ["acquire", "release"]


async def test_a_key_whose_entity_keeps_failing_holds_a_job_back_no_longer_than_the_deadline(
    azurite: AzuriteService, receiver: CountingReceiver
) -> None:
    # On the real host a failing entity batch is retried and its callers are never answered.
    with running_scheduler(azurite) as scheduler:
        at = START + timedelta(minutes=10)
        job = await create(scheduler, job_body(receiver.url, at, max_parallel=1))
        scheduler.host.fail_entity_invocations(FLOW_ENTITY, "127.0.0.1")

        scheduler.host.advance_to(at + ENTITY_CALL_DEADLINE - timedelta(seconds=1))
        assert receiver.calls == {}
        scheduler.host.advance_to(at + ENTITY_CALL_DEADLINE)
        assert receiver.calls == {job: 1}  # it went without a slot, once
        fired = await status_of(scheduler, job)
        assert fired["fired_at"] == format_utc(at + ENTITY_CALL_DEADLINE)
        # Its release is not answered either: the orchestration goes on after the deadline.
        scheduler.host.advance_to(at + 2 * ENTITY_CALL_DEADLINE)
        assert scheduler.orchestration(job).runtime_status is RuntimeStatus.COMPLETED
        assert (await status_of(scheduler, job))["state"] == "succeeded"
        assert scheduler.host.failed_entity_invocations, "the entity never failed"

        # Healed, the key runs the acquire and the release it kept, in order: nobody holds it.
        scheduler.host.heal_entity_invocations(FLOW_ENTITY, "127.0.0.1")
        scheduler.host.advance_to(at + 2 * ENTITY_CALL_DEADLINE + timedelta(minutes=15))
        assert [op.operation for op in scheduler.host.entity_operations] == ["acquire", "release"]
        state = scheduler.host.entity(FLOW_ENTITY, "127.0.0.1").state or {}
        assert (state.get("holders"), state.get("queue")) in ((None, None), ([], []))
        assert receiver.calls == {job: 1}


async def test_an_attempt_that_waited_in_the_queue_past_its_lease_does_not_start(
    azurite: AzuriteService, receiver: CountingReceiver
) -> None:
    # max_parallel 1, a lease of 180 s: the first holder's attempt waits 200 s in the host's
    # queue, so the key reclaims its slot at its lease's end and grants it to the second,
    # whose attempt comes out of the queue at the same moment as the first's.
    receiver.hold_seconds = 0.3  # long enough for attempts that run together to meet there
    with running_scheduler(
        azurite,
        host_options={"activity_workers": 4, "activity_start_delay": timedelta(seconds=200)},
        flow_slot_lease_seconds=180,
        http_call_max_timeout_seconds=30,
        flow_recheck_seconds=10,
    ) as scheduler:
        at = START + timedelta(minutes=10)
        jobs = [await create(scheduler, job_body(receiver.url, at, max_parallel=1)) for _ in "ab"]
        scheduler.host.advance_to(at)
        (waiter,) = [job for job in jobs if phase_of(scheduler, job) == "waiting for a slot"]
        (holder,) = [job for job in jobs if job != waiter]
        scheduler.host.activity_start_delay = timedelta(seconds=10)
        scheduler.host.advance_to(at + timedelta(seconds=190))
        assert phase_of(scheduler, waiter) == "firing"  # granted: the holder's lease ran out
        assert receiver.calls == {}

        scheduler.host.advance_to(at + timedelta(minutes=5))

        assert receiver.calls == {waiter: 1, holder: 1}
        assert receiver.max_in_flight == 1
        fired = {job: (await status_of(scheduler, job))["fired_at"] for job in jobs}
        assert fired[waiter] == format_utc(at + timedelta(seconds=200))
        # The holder let its stale turn go, asked again, and fired once the waiter was done.
        assert fired[holder] > fired[waiter]
        assert [a["attempt"] for a in (await status_of(scheduler, holder))["attempt_history"]] == [
            1
        ]
