"""DurableHost's two switches for what the real host does under failure and delay: entity
batches whose invocation keeps failing (fail_entity_invocations), and activities that wait in
the work-item queue (activity_start_delay)."""

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from local_durable_host.engine import DurableHost
from local_durable_host.history import EventType, parse_timestamp
from local_durable_host.model import RuntimeStatus
from tests.support import toy_app

START = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


def as_client_input(value: Any) -> str:
    """An input as the Python client stores it: a JSON string of the JSON text."""
    return json.dumps(json.dumps(value))


def seconds(n: float) -> datetime:
    return START + timedelta(seconds=n)


@pytest.fixture
def host() -> Iterator[DurableHost]:
    with DurableHost(toy_app.app, START) as running:
        yield running


def answers(host: DurableHost, instance_id: str) -> list[dict[str, Any]]:
    """The entity answers the orchestration received (EventRaised named by request id)."""
    return [
        event
        for event in host.instance(instance_id).history
        if event["EventType"] == EventType.EVENT_RAISED
    ]


# -- A: entity invocations that keep failing ---------------------------------------------------


def test_a_caller_waits_while_the_entity_fails_and_is_answered_once_healed(
    host: DurableHost,
) -> None:
    host.fail_entity_invocations("Journal")
    host.start_instance("journal_writer", "w", as_client_input({"key": "k"}))
    host.run()

    # Nobody answered, nothing stored: the batch (a signal and a call) waits to come back.
    assert host.instance("w").runtime_status is RuntimeStatus.RUNNING
    assert answers(host, "w") == []
    assert not host.entity("Journal", "k").exists
    assert host.entity_operations == []
    first = host.failed_entity_invocations
    assert [(f.key, f.operations, f.at, f.retry_at) for f in first] == [
        ("k", ("append", "append_and_read"), START, seconds(2))
    ]
    assert [at for at, _ in host.delayed_messages()] == [seconds(2), seconds(2)]

    host.advance(2)  # delivered again, fails again: hidden 4 s this time
    assert [(f.at, f.retry_at) for f in host.failed_entity_invocations] == [
        (START, seconds(2)),
        (seconds(2), seconds(6)),
    ]
    host.heal_entity_invocations("Journal")
    host.advance_to(seconds(6) - timedelta(microseconds=1))
    assert answers(host, "w") == []  # healed, but its messages are not visible yet

    host.advance_to(seconds(6))
    view = host.instance("w")
    assert view.output == {
        "entries": ["signalled by orchestration", "called by orchestration"],
        "failure": "journal refused",
    }
    assert [(op.operation, op.at) for op in host.entity_operations] == [
        ("append", seconds(6)),
        ("append_and_read", seconds(6)),
        ("fail", seconds(6)),
    ]
    assert len(host.failed_entity_invocations) == 2


def test_the_back_off_doubles_per_delivery_up_to_ten_minutes(host: DurableHost) -> None:
    # DurableTask.AzureStorage TaskHubQueue.AbandonMessageAsync: 2^dequeueCount s, at most 600.
    host.fail_entity_invocations("Journal", "k")
    host.signal_entity("Journal", "k", "append", as_client_input("x"))
    host.run()
    for _ in range(11):
        host.advance_to(host.failed_entity_invocations[-1].retry_at)
    hidden = [(f.retry_at - f.at).total_seconds() for f in host.failed_entity_invocations]
    assert hidden == [2, 4, 8, 16, 32, 64, 128, 256, 512, 600, 600, 600]
    assert not host.entity("Journal", "k").exists


def test_one_senders_later_operations_wait_behind_its_earlier_ones(host: DurableHost) -> None:
    """A caller gives up on its call (a deadline) and signals so: on the real host the
    entity's message sorter delivers that signal after the call, whatever their back-offs."""
    host.fail_entity_invocations("Journal", "k")
    host.start_instance("impatient", "i", as_client_input({"key": "k", "wait": 5}))
    host.run()
    host.advance_to(seconds(3))  # the call failed at 0 and 2; next at 6
    host.heal_entity_invocations("Journal", "k")

    host.advance_to(seconds(5))  # the deadline: the orchestration signals and completes
    assert host.instance("i").output == "gave up"
    assert not host.entity("Journal", "k").exists  # the signal waits behind the call

    host.advance_to(seconds(6))
    assert host.entity_state("Journal", "k") == ["acquire", "gave up"]
    # The call's late answer finds its caller finished.
    assert any(
        "EVENT_RAISED for 'i': the instance is Completed" in d for d in host.discarded_messages
    )


def test_other_entities_and_orchestrations_are_not_held_up(host: DurableHost) -> None:
    host.fail_entity_invocations("Journal", "stuck")
    host.start_instance("journal_writer", "stuck", as_client_input({"key": "stuck"}))
    host.start_instance("journal_writer", "free", as_client_input({"key": "free"}))
    host.start_instance("alarm", "alarm", as_client_input({"sleep": 1, "label": "on time"}))
    host.advance(1)

    assert host.instance("free").runtime_status is RuntimeStatus.COMPLETED
    assert host.instance("alarm").output == "ON TIME"
    assert host.instance("stuck").runtime_status is RuntimeStatus.RUNNING
    assert {f.key for f in host.failed_entity_invocations} == {"stuck"}


def test_healing_a_name_heals_each_key_and_a_key_only_itself(host: DurableHost) -> None:
    host.fail_entity_invocations("Journal")
    host.fail_entity_invocations("Journal", "k")
    host.heal_entity_invocations("Journal", "other")
    host.signal_entity("Journal", "k", "append", as_client_input("x"))
    host.run()
    assert len(host.failed_entity_invocations) == 1

    host.heal_entity_invocations("JOURNAL")
    host.advance(2)
    assert host.entity_state("Journal", "k") == ["x"]


# -- B: activities wait in the work-item queue ----------------------------------------------


def test_an_activity_starts_exactly_the_delay_after_it_was_scheduled() -> None:
    delay = timedelta(seconds=90)
    with DurableHost(toy_app.app, START, activity_start_delay=delay) as host:
        host.start_instance("alarm", "a", as_client_input({"sleep": 10, "label": "late"}))
        host.run()
        host.advance(10)  # the timer fires: the activity is scheduled now, at 10 s
        scheduled = [
            e for e in host.instance("a").history if e["EventType"] == EventType.TASK_SCHEDULED
        ]
        assert [parse_timestamp(e["Timestamp"]) for e in scheduled] == [seconds(10)]
        assert host.delayed_messages() == [(seconds(100), "activity shout of 'a'")]

        host.advance_to(seconds(100) - timedelta(microseconds=1))
        assert host.activity_calls == []
        host.advance(3600)  # the clock stops where the activity starts
        assert [(call.name, call.at) for call in host.activity_calls] == [("shout", seconds(100))]
        assert host.instance("a").output == "LATE"


def test_other_work_goes_on_while_an_activity_waits_in_the_queue() -> None:
    with DurableHost(toy_app.app, START, activity_start_delay=timedelta(seconds=120)) as host:
        host.start_instance("alarm", "waits", as_client_input({"sleep": 0, "label": "x"}))
        host.start_instance("journal_writer", "entities", as_client_input({"key": "k"}))
        host.start_instance("race", "timer", None)
        host.run()
        assert host.instance("entities").runtime_status is RuntimeStatus.COMPLETED

        host.advance(60)  # the race's timer fires on time
        assert host.instance("timer").custom_status == "timed out"
        assert host.activity_calls == []

        host.advance(60)
        assert host.instance("waits").output == "X"


def test_a_retried_activity_waits_in_the_queue_each_time() -> None:
    delay = timedelta(seconds=30)
    with DurableHost(toy_app.app, START, activity_start_delay=delay) as host:
        job = {"retries": 2, "retry_ms": 5000, "always": True, "message": "no"}
        host.start_instance("careful", "c", as_client_input(job))
        host.advance(3600)
        # Attempt 1 at 30 s; its retry timer 5 s later; attempt 2 waits 30 s more.
        assert [call.at for call in host.activity_calls] == [seconds(30), seconds(65)]
        assert "no" in host.instance("c").output["caught"]


def test_on_the_wall_clock_a_waiting_activity_holds_up_nothing() -> None:
    delay = timedelta(seconds=2)
    host = DurableHost(toy_app.app, None, activity_workers=2, activity_start_delay=delay)
    stop = threading.Event()
    serving = threading.Thread(target=host.serve, args=(stop,))
    serving.start()

    def wait_for(instance_id: str) -> None:
        deadline = time.monotonic() + 20
        while host.instance(instance_id).runtime_status is not RuntimeStatus.COMPLETED:
            assert time.monotonic() < deadline, f"{instance_id} never completed"
            time.sleep(0.02)

    try:
        host.start_instance("alarm", "waits", as_client_input({"sleep": 0, "label": "x"}))
        host.start_instance("journal_writer", "entities", as_client_input({"key": "k"}))
        wait_for("entities")
        assert host.activity_calls == []  # still waiting in the queue
        wait_for("waits")
        scheduled = next(
            parse_timestamp(e["Timestamp"])
            for e in host.instance("waits").history
            if e["EventType"] == EventType.TASK_SCHEDULED
        )
        (call,) = host.activity_calls
        assert call.at >= scheduled + delay
    finally:
        stop.set()
        serving.join(10)
        host.close()


def test_a_negative_delay_is_refused() -> None:
    with pytest.raises(ValueError, match="must not be negative"):
        DurableHost(toy_app.app, START, activity_start_delay=timedelta(seconds=-1))
