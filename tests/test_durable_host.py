"""DurableHost behaves like the Durable extension as far as an app and its client can tell."""

import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import azure.durable_functions as df
import azure.functions as func
import httpx
import pytest
from azure.durable_functions.models.utils import http_utils

from local_durable_host.engine import DurableHost, NonDeterminismError
from local_durable_host.extension_api import SYSTEM_KEY
from local_durable_host.history import EventType
from local_durable_host.model import PurgeNonTerminal, RuntimeStatus
from tests.support import toy_app

START = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
ROUND_TRIP = {"who": "ada", "sleep": 60, "round": 0, "rounds": 1}


@pytest.fixture(scope="module", autouse=True)
async def close_sdk_http_session() -> AsyncIterator[None]:
    """The SDK keeps one aiohttp session per process; close it on the loop that made it."""
    yield
    await http_utils._close_session()


@pytest.fixture
def host() -> Iterator[DurableHost]:
    toy_app.flaky_attempts.clear()
    toy_app.coin_flip_calls.clear()
    with DurableHost(toy_app.app, START) as running:
        yield running


@pytest.fixture
def client(host: DurableHost) -> Any:
    return df.DurableOrchestrationClient(host.client_binding())


def event_types(history: list[dict[str, Any]]) -> list[EventType]:
    return [EventType(event["EventType"]) for event in history]


def stage(host: DurableHost, instance_id: str) -> Any:
    return host.instance(instance_id).custom_status


# -- client binding and start ------------------------------------------------------------------


async def test_client_binding_is_what_the_worker_passes(host: DurableHost, client: Any) -> None:
    binding = json.loads(host.client_binding())

    assert binding["rpcBaseUrl"] == host.rpc_base_url
    assert host.rpc_base_url.startswith("http://127.0.0.1:")
    assert host.rpc_base_url.endswith("/durabletask/")
    assert binding["taskHubName"] == "TestHubName"
    assert binding["requiredQueryStringParameters"] == f"code={SYSTEM_KEY}"
    assert binding["managementUrls"]["id"] == "INSTANCEID"
    links = client.create_http_management_payload("job-1")
    assert links["statusQueryGetUri"].startswith(f"{binding['baseUrl']}/instances/job-1?")

    # The management links (webhook path, with the system key) are served too.
    await client.start_new("alarm", "job-1", {"sleep": 5, "label": "x"})
    async with httpx.AsyncClient() as http:
        response = await http.get(links["statusQueryGetUri"])
    assert response.status_code == 202
    assert response.json()["runtimeStatus"] == "Pending"


async def test_start_is_queued_until_run(host: DurableHost, client: Any) -> None:
    instance_id = await client.start_new("round_trip", "rt-1", ROUND_TRIP)

    status = await client.get_status(instance_id)
    assert instance_id == "rt-1"
    assert status.runtime_status == df.OrchestrationRuntimeStatus.Pending
    assert json.loads(status.input_) == ROUND_TRIP  # the JSON text the client posted
    assert status.created_time == START
    assert host.instance("rt-1").history == []
    assert host.activity_calls == []

    host.run()

    assert host.instance("rt-1").runtime_status is RuntimeStatus.RUNNING
    assert [call.name for call in host.activity_calls] == ["greet"]
    assert stage(host, "rt-1") == {"round": 0, "stage": "sleeping"}


async def test_start_without_id_generates_one(host: DurableHost, client: Any) -> None:
    instance_id = await client.start_new("alarm", None, {"sleep": 0, "label": "x"})

    assert len(instance_id) == 32
    assert host.instance(instance_id).runtime_status is RuntimeStatus.PENDING


async def test_starting_an_active_id_fails_a_finished_one_is_replaced(
    host: DurableHost, client: Any
) -> None:
    await client.start_new("alarm", "a-1", {"sleep": 10, "label": "first"})
    with pytest.raises(Exception, match="status Pending already exists"):
        await client.start_new("alarm", "a-1", {"sleep": 10, "label": "second"})
    host.run()
    with pytest.raises(Exception, match="status Running already exists"):
        await client.start_new("alarm", "a-1", {"sleep": 10, "label": "second"})
    conflict = host.client_calls[-1]
    assert conflict.status == 500
    host.advance(10)
    assert host.instance("a-1").output == "FIRST"

    await client.start_new("alarm", "a-1", {"sleep": 10, "label": "second"})

    replaced = host.instance("a-1")
    assert replaced.runtime_status is RuntimeStatus.PENDING
    assert replaced.output is None
    assert replaced.created_time == START + timedelta(seconds=10)
    host.advance(10)
    assert host.instance("a-1").output == "SECOND"


async def test_starting_an_unknown_orchestrator_is_a_bad_request(client: Any) -> None:
    with pytest.raises(Exception, match="'nope' doesn't exist"):
        await client.start_new("nope", "n-1", None)


def test_conflict_body_is_the_extensions_error_shape(host: DurableHost) -> None:
    host.request("POST", "orchestrators/alarm/a-2", json.dumps('{"sleep": 1, "label": "x"}'))

    status, body = host.request("POST", "orchestrators/alarm/a-2", None)

    assert status == 500
    assert body["ExceptionType"].endswith("OrchestrationAlreadyExistsException")
    assert (
        body["ExceptionMessage"]
        == "An Orchestration instance with the status Pending already exists."
    )


# -- the orchestrator's features ---------------------------------------------------------------


async def test_round_trip_activity_timer_event_entity_continue_as_new(
    host: DurableHost, client: Any
) -> None:
    await client.start_new("round_trip", "rt", {**ROUND_TRIP, "rounds": 2})
    host.run()
    assert host.pending_timers() == [("rt", START + timedelta(seconds=60))]

    host.advance(59)
    assert stage(host, "rt") == {"round": 0, "stage": "sleeping"}
    host.advance(1)
    assert stage(host, "rt") == {"round": 0, "stage": "waiting"}

    await client.raise_event("rt", "go", "yes")
    host.run()

    first_round = host.instance("rt")
    assert first_round.episode_count == 2
    assert stage(host, "rt") == {"round": 1, "stage": "sleeping"}
    # A fresh history: round 1 has only greeted and started sleeping.
    assert event_types(first_round.history) == [
        EventType.ORCHESTRATOR_STARTED,
        EventType.EXECUTION_STARTED,
        EventType.TASK_SCHEDULED,
        EventType.ORCHESTRATOR_COMPLETED,
        EventType.ORCHESTRATOR_STARTED,
        EventType.TASK_COMPLETED,
        EventType.TIMER_CREATED,
        EventType.ORCHESTRATOR_COMPLETED,
    ]
    assert json.loads(first_round.input)["round"] == 1

    host.advance(60)
    await client.raise_event("rt", "go", "again")
    host.run()

    done = await client.get_status("rt")
    assert done.runtime_status == df.OrchestrationRuntimeStatus.Completed
    assert done.output == {"greeting": "hello ada", "answer": "again", "journal_size": 4}
    assert host.entity_state("Journal", "ada") == [
        "hello ada/yes",
        "round 0",
        "hello ada/again",
        "round 1",
    ]
    view = host.instance("rt")
    assert view.episode_count == 2
    assert len(view.max_history_length_per_episode) == 2
    assert view.max_history_length_per_episode[1] == len(view.history)


# The SDK warns when an event arrives before its wait; that is the buffering under test.
@pytest.mark.filterwarnings("ignore:Potential duplicate Task completion:UserWarning")
async def test_event_raised_before_the_wait_is_buffered(host: DurableHost, client: Any) -> None:
    await client.start_new("round_trip", "early", ROUND_TRIP)
    host.run()

    await client.raise_event("early", "go", "early bird")
    host.run()
    assert stage(host, "early") == {"round": 0, "stage": "sleeping"}

    host.advance(60)

    assert host.instance("early").output["answer"] == "early bird"


@pytest.mark.filterwarnings("ignore:Potential duplicate Task completion:UserWarning")
async def test_events_reach_the_new_execution_unconsumed_ones_die_with_the_old(
    host: DurableHost, client: Any
) -> None:
    await client.start_new("round_trip", "can", {**ROUND_TRIP, "rounds": 2})
    host.advance(60)
    # Both are delivered to round 0, which consumes one; continue-as-new drops the other,
    # as the extension does (ContinueAsNew without preserveUnprocessedEvents).
    await client.raise_event("can", "go", "consumed")
    await client.raise_event("can", "go", "lost")
    host.run()
    assert stage(host, "can") == {"round": 1, "stage": "sleeping"}
    host.advance(60)
    assert stage(host, "can") == {"round": 1, "stage": "waiting"}

    # Raised while round 1 sleeps: delivered to the new execution and kept for its wait.
    await client.start_new("round_trip", "can-2", {**ROUND_TRIP, "rounds": 2})
    host.advance(60)
    await client.raise_event("can-2", "go", "one")
    host.run()
    await client.raise_event("can-2", "go", "two")
    host.run()
    host.advance(60)
    assert host.instance("can-2").output["answer"] == "two"


async def test_timers_fire_in_fire_at_order_once_the_clock_passes_them(
    host: DurableHost, client: Any
) -> None:
    for label, sleep in (("a", 30), ("b", 10), ("c", 20)):
        await client.start_new("alarm", label, {"sleep": sleep, "label": label})
    host.run()
    assert [fire_at for _, fire_at in host.pending_timers()] == [
        START + timedelta(seconds=10),
        START + timedelta(seconds=20),
        START + timedelta(seconds=30),
    ]

    host.advance(9.999)
    assert host.activity_calls == []
    host.advance_to(START + timedelta(seconds=30))

    assert [(call.input_json, call.at) for call in host.activity_calls] == [
        ('"b"', START + timedelta(seconds=10)),
        ('"c"', START + timedelta(seconds=20)),
        ('"a"', START + timedelta(seconds=30)),
    ]
    fired = next(e for e in host.instance("b").history if e["EventType"] == EventType.TIMER_FIRED)
    assert fired["FireAt"] == "2025-03-01T09:00:10.000000Z"
    assert host.now() == START + timedelta(seconds=30)


async def test_a_timer_races_an_event(host: DurableHost, client: Any) -> None:
    await client.start_new("race", "cancelled", None)
    await client.start_new("race", "timed-out", None)
    host.advance(10)
    await client.raise_event("cancelled", "cancel", None)
    host.run()
    assert stage(host, "cancelled") == "cancelled"

    host.advance(60)  # the cancelled timer still fires, as in DTFx, and changes nothing

    assert stage(host, "timed-out") == "timed out"
    assert stage(host, "cancelled") == "cancelled"
    assert EventType.TIMER_FIRED in event_types(host.instance("cancelled").history)
    for instance_id in ("cancelled", "timed-out"):
        await client.raise_event(instance_id, "finish", None)
    host.run()
    assert [host.instance(i).output for i in ("cancelled", "timed-out")] == [
        "cancelled",
        "timed out",
    ]


def test_the_clock_never_goes_back(host: DurableHost) -> None:
    host.advance(5)

    with pytest.raises(ValueError, match="cannot go back"):
        host.advance_to(START)
    assert host.clock() == START + timedelta(seconds=5)


def test_long_timers_are_waited_for_in_three_day_pieces(host: DurableHost) -> None:
    host.request(
        "POST",
        "orchestrators/alarm/long",
        json.dumps(json.dumps({"sleep": 7 * 86400, "label": "l"})),
    )
    host.run()
    assert host.pending_timers() == [("long", START + timedelta(days=3))]

    host.advance_to(START + timedelta(days=6, hours=23))
    assert host.pending_timers() == [("long", START + timedelta(days=7))]
    host.advance(3600)

    assert host.instance("long").output == "L"


async def test_activity_failure_reaches_the_orchestrator_as_task_failed(
    host: DurableHost, client: Any
) -> None:
    await client.start_new("careful", "c-1", {"message": "kaboom"})
    host.run()

    caught = host.instance("c-1").output["caught"]
    assert caught.startswith("Activity function 'explode' failed:  ValueError: kaboom \n ")
    failed = [e for e in host.instance("c-1").history if e["EventType"] == EventType.TASK_FAILED]
    assert failed[0]["Reason"] == "Activity function 'explode' failed:  ValueError: kaboom"
    assert host.activity_calls[0].error_message == "ValueError: kaboom"


def test_retries_wait_the_first_interval_and_stop_after_max_attempts(host: DurableHost) -> None:
    job = {"key": "k", "succeed_on": 3, "retries": 3, "retry_ms": 60_000}
    host.start_instance("careful", "r-ok", json.dumps(json.dumps(job)))
    host.run()
    host.advance(59)
    assert len(host.activity_calls) == 1
    host.advance(61)

    assert host.instance("r-ok").output == {"result": "ok on attempt 3"}
    assert [call.at for call in host.activity_calls] == [
        START,
        START + timedelta(seconds=60),
        START + timedelta(seconds=120),
    ]

    exhausted = {"key": "e", "succeed_on": 9, "retries": 2, "retry_ms": 60_000}
    host.start_instance("careful", "r-fail", json.dumps(json.dumps(exhausted)))
    host.advance(60)

    view = host.instance("r-fail")
    assert "attempt 2 failed" in view.output["caught"]
    assert view.last_updated_time == host.now()  # the last timer is due at once
    assert toy_app.flaky_attempts["e"] == 2


def test_a_failing_orchestrator_fails_the_instance(host: DurableHost) -> None:
    host.start_instance("crashing", "boom", None)
    host.run()

    view = host.instance("boom")
    assert view.runtime_status is RuntimeStatus.FAILED
    assert view.output == "Orchestrator function 'crashing' failed: orchestrator gave up"
    assert view.custom_status == "about to fail"
    assert event_types(view.history)[-2] == EventType.EXECUTION_COMPLETED


def test_calling_an_unknown_activity_fails_the_instance(host: DurableHost) -> None:
    host.start_instance("misnamed", "typo", None)
    host.run()

    view = host.instance("typo")
    assert view.runtime_status is RuntimeStatus.FAILED
    assert "'no_such_activity' doesn't exist" in view.output


async def test_async_activity_runs_even_inside_a_running_event_loop(host: DurableHost) -> None:
    host.start_instance("alarm", "now", json.dumps(json.dumps({"sleep": 0, "label": "loud"})))

    host.run()

    assert host.instance("now").output == "LOUD"


# -- entities ----------------------------------------------------------------------------------


async def test_entity_signals_are_fifo_per_entity_and_names_lower_cased(
    host: DurableHost, client: Any
) -> None:
    journal_k, journal_other = df.EntityId("Journal", "K"), df.EntityId("JOURNAL", "other")
    await client.signal_entity(journal_k, "append", "a")
    await client.signal_entity(journal_other, "append", "x")
    await client.signal_entity(journal_k, "append", "b")
    assert not (await client.read_entity_state(journal_k)).entity_exists

    host.run()

    state = await client.read_entity_state(df.EntityId("journal", "K"))
    assert state.entity_exists
    assert state.entity_state == ["a", "b"]
    assert host.entity_state("Journal", "other") == ["x"]
    assert not host.entity("Journal", "k").exists  # keys keep their case
    assert [(c.method, c.path) for c in host.client_calls[:2]] == [
        ("POST", "entities/Journal/K"),
        ("POST", "entities/JOURNAL/other"),
    ]


async def test_entity_operations_keep_enqueue_order_whoever_sent_them(
    host: DurableHost, client: Any
) -> None:
    await client.start_new("journal_writer", "w", {"key": "mixed"})
    await client.signal_entity(df.EntityId("Journal", "mixed"), "append", "from client")

    host.run()

    entries = ["from client", "signalled by orchestration", "called by orchestration"]
    assert host.instance("w").output == {"entries": entries, "failure": "journal refused"}
    # A failing operation keeps what it already wrote.
    assert host.entity_state("Journal", "mixed") == [*entries, "before failure"]
    assert [op.operation for op in host.entity_operations] == [
        "append",
        "append",
        "append_and_read",
        "fail",
    ]
    assert [op.is_error for op in host.entity_operations] == [False, False, False, True]


async def test_entity_delete_and_unknown_entity(host: DurableHost, client: Any) -> None:
    await client.signal_entity(df.EntityId("Journal", "d"), "append", "x")
    host.run()
    await client.signal_entity(df.EntityId("Journal", "d"), "delete")
    host.run()

    assert not (await client.read_entity_state(df.EntityId("Journal", "d"))).entity_exists
    with pytest.raises(Exception, match="unexpected status code 400"):
        await client.signal_entity(df.EntityId("Ledger", "d"), "append", "x")


# -- terminate, raise event, status, purge -----------------------------------------------------


async def test_terminate_is_processed_on_the_next_run(host: DurableHost, client: Any) -> None:
    await client.start_new("round_trip", "t", ROUND_TRIP)
    host.run()

    await client.terminate("t", "no longer wanted")

    assert (await client.get_status("t")).runtime_status == df.OrchestrationRuntimeStatus.Running
    host.run()
    status = await client.get_status("t")
    assert status.runtime_status == df.OrchestrationRuntimeStatus.Terminated
    assert status.output == "no longer wanted"
    assert host.pending_timers() == []

    await client.terminate("t", "again")  # 410: the SDK accepts it silently
    assert host.client_calls[-1].status == 410
    with pytest.raises(Exception, match="No instance with ID 'missing' found"):
        await client.terminate("missing", "why")


async def test_raise_event_needs_an_active_instance(host: DurableHost, client: Any) -> None:
    with pytest.raises(Exception, match="No instance with ID missing found"):
        await client.raise_event("missing", "go", 1)
    host.start_instance("alarm", "done", json.dumps(json.dumps({"sleep": 0, "label": "x"})))
    host.run()

    with pytest.raises(Exception, match="is gone"):
        await client.raise_event("done", "go", 1)


async def test_status_codes_and_shape(host: DurableHost, client: Any) -> None:
    assert not await client.get_status("missing")
    await client.start_new("round_trip", "s", ROUND_TRIP)
    host.advance(30)

    running = await client.get_status("s", show_history=True)
    assert host.client_calls[-1].status == 202
    assert running.name == "round_trip"
    assert running.instance_id == "s"
    assert running.custom_status == {"round": 0, "stage": "sleeping"}
    assert running.last_updated_time == START
    assert [e["EventType"] for e in running.historyEvents] == [
        "ExecutionStarted",
        "TaskCompleted",
        "TimerCreated",
    ]
    assert running.historyEvents[1]["FunctionName"] == "greet"
    assert "Result" not in running.historyEvents[1]
    assert not hasattr(await client.get_status("s"), "historyEvents")

    host.advance(30)
    await client.raise_event("s", "go", 1)
    host.run()
    finished = await client.get_status("s", show_history=True, show_history_output=True)
    assert host.client_calls[-1].status == 200
    assert finished.historyEvents[1]["Result"] == "hello ada"
    # The SDK leaves showInput=False out of the URL, so the extension's default (true) applies.
    assert (await client.get_status("s", show_input=False)).input_ == json.dumps(ROUND_TRIP)
    _, raw = host.request("GET", "instances/s?showInput=false")
    assert raw["input"] is None


async def test_purge_deletes_finished_instances_and_404s_unknown_ones(
    host: DurableHost, client: Any
) -> None:
    host.start_instance("alarm", "p", json.dumps(json.dumps({"sleep": 0, "label": "x"})))
    host.run()

    assert (await client.purge_instance_history("p")).instances_deleted == 1
    assert not await client.get_status("p")
    assert (await client.purge_instance_history("p")).instances_deleted == 0
    assert [c.status for c in host.client_calls if c.method == "DELETE"] == [200, 404]


async def test_purging_a_running_instance_like_azure_storage(
    host: DurableHost, client: Any
) -> None:
    await client.start_new("alarm", "p-run", {"sleep": 60, "label": "x"})
    host.run()

    assert (await client.purge_instance_history("p-run")).instances_deleted == 1
    host.advance(120)

    assert host.find_instance("p-run") is None
    assert host.activity_calls == []

    # Work already queued still runs; only its result is dropped.
    await client.start_new("careful", "p-queued", {"message": "queued"})
    host.step()  # the start: the activity is now queued
    await client.purge_instance_history("p-queued")
    host.run()
    assert [call.instance_id for call in host.activity_calls] == ["p-queued"]
    assert any("p-queued" in why for why in host.discarded_messages)


async def test_purging_a_running_instance_on_a_backend_that_refuses() -> None:
    with DurableHost(toy_app.app, START, purge_non_terminal=PurgeNonTerminal.KEEP) as host:
        client = df.DurableOrchestrationClient(host.client_binding())
        await client.start_new("alarm", "kept", {"sleep": 60, "label": "x"})
        host.run()

        assert (await client.purge_instance_history("kept")).instances_deleted == 0
        host.advance(60)

        assert host.instance("kept").output == "X"


async def test_the_client_call_log_records_every_request(host: DurableHost, client: Any) -> None:
    await client.start_new("alarm", "log", {"sleep": 0, "label": "x"})
    await client.raise_event("log", "go", {"n": 1})
    await client.terminate("log", "stop it")
    await client.purge_instance_history("log")

    calls = [(c.method, c.path, c.status) for c in host.client_calls]
    assert calls == [
        ("POST", "orchestrators/alarm/log", 202),
        ("POST", "instances/log/raiseEvent/go", 202),
        ("POST", "instances/log/terminate", 202),
        ("DELETE", "instances/log", 200),
    ]
    assert host.client_calls[0].body == json.dumps(json.dumps({"sleep": 0, "label": "x"}))
    assert host.client_calls[2].query == {"reason": "stop it"}


# -- determinism and indexing ------------------------------------------------------------------


def test_nondeterminism_fails_the_instance_or_the_test() -> None:
    with DurableHost(toy_app.app, START) as host:
        host.start_instance("coin_flip", "flip", None)
        host.run()
        view = host.instance("flip")
        assert view.runtime_status is RuntimeStatus.FAILED
        assert view.output.startswith("Non-Deterministic workflow detected")

    with DurableHost(toy_app.app, START, check_replay_determinism=True) as strict:
        strict.start_instance("coin_flip", "flip", None)
        with pytest.raises(NonDeterminismError):
            strict.run()


def test_a_binding_the_worker_could_not_pass_is_refused() -> None:
    app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)

    @app.entity_trigger(context_name="ctx", entity_name="Counter")
    def counter(ctx: df.DurableEntityContext) -> None:
        ctx.set_state(1)

    with pytest.raises(ValueError, match="would refuse to index"):
        DurableHost(app, START)
