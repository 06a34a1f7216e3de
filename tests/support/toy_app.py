"""A small DFApp that exercises every feature of DurableHost, for its own tests."""

import asyncio
import json
import logging
import os
import sys
import threading
from collections.abc import Generator
from datetime import timedelta
from typing import Any

import azure.durable_functions as df
import azure.functions as func

if os.environ.get("TOY_APP_UNLOADABLE"):  # lets a test break the app for new worker processes
    raise ImportError("the toy app was made unloadable")

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)

JOURNAL = "Journal"
# Attempts per key seen by `flaky`; tests clear it.
flaky_attempts: dict[str, int] = {}
# `gated` waits for this, so a test can hold an activity in flight.
gate = threading.Event()
# `held` waits for this in its own code, so a test can hold an orchestrator's episode.
held_gate = threading.Event()
# Calls of `coin_flip`; lets a test make an orchestrator nondeterministic on purpose.
coin_flip_calls: list[int] = []


def _decoded(value: Any) -> Any:
    # Python-client inputs and external events arrive as JSON text.
    return json.loads(value) if isinstance(value, str) else value


@app.orchestration_trigger(context_name="context")
def round_trip(context: df.DurableOrchestrationContext) -> Generator[Any, Any, Any]:
    """Activity, timer, external event, entity signal and call; continues as new per round."""
    job = _decoded(context.get_input())
    greeting = yield context.call_activity("greet", {"who": job["who"]})
    context.set_custom_status({"round": job["round"], "stage": "sleeping"})
    yield context.create_timer(context.current_utc_datetime + timedelta(seconds=job["sleep"]))
    context.set_custom_status({"round": job["round"], "stage": "waiting"})
    answer = _decoded((yield context.wait_for_external_event("go")))
    journal = df.EntityId(JOURNAL, job["who"])
    context.signal_entity(journal, "append", f"{greeting}/{answer}")
    size = yield context.call_entity(journal, "append", f"round {job['round']}")
    if job["round"] + 1 < job["rounds"]:
        context.continue_as_new({**job, "round": job["round"] + 1})
        return None
    return {"greeting": greeting, "answer": answer, "journal_size": size}


@app.orchestration_trigger(context_name="context")
def alarm(context: df.DurableOrchestrationContext) -> Generator[Any, Any, Any]:
    """Sleep, then note the label through an (async) activity."""
    job = _decoded(context.get_input())
    yield context.create_timer(context.current_utc_datetime + timedelta(seconds=job["sleep"]))
    return (yield context.call_activity("shout", job["label"]))


@app.orchestration_trigger(context_name="context")
def race(context: df.DurableOrchestrationContext) -> Generator[Any, Any, Any]:
    """A timer against a "cancel" event (task_any); then waits for "finish" to end."""
    timer = context.create_timer(context.current_utc_datetime + timedelta(seconds=60))
    cancel = context.wait_for_external_event("cancel")
    winner = yield context.task_any([timer, cancel])
    if winner == cancel:
        timer.cancel()
    outcome = "cancelled" if winner == cancel else "timed out"
    context.set_custom_status(outcome)
    yield context.wait_for_external_event("finish")
    return outcome


@app.orchestration_trigger(context_name="context")
def careful(context: df.DurableOrchestrationContext) -> Generator[Any, Any, Any]:
    """Call a failing activity (maybe with retries: `flaky`, or `explode` with "always") and
    report what the SDK raised."""
    job = _decoded(context.get_input())
    try:
        if job.get("retries"):
            options = df.RetryOptions(job["retry_ms"], job["retries"])
            if job.get("always"):
                task = context.call_activity_with_retry("explode", options, job["message"])
            else:
                task = context.call_activity_with_retry("flaky", options, job)
            result = yield task
        else:
            result = yield context.call_activity("explode", job["message"])
    except Exception as error:
        return {"caught": str(error)}
    return {"result": result}


@app.orchestration_trigger(context_name="context")
def crashing(context: df.DurableOrchestrationContext) -> Generator[Any, Any, Any]:
    """Set a custom status, then fail."""
    context.set_custom_status("about to fail")
    yield context.call_activity("greet", {"who": "crash"})
    raise RuntimeError("orchestrator gave up")


@app.orchestration_trigger(context_name="context")
def misnamed(context: df.DurableOrchestrationContext) -> Generator[Any, Any, Any]:
    """Calls an activity the app does not have."""
    return (yield context.call_activity("no_such_activity", None))


@app.orchestration_trigger(context_name="context")
def journal_writer(context: df.DurableOrchestrationContext) -> Generator[Any, Any, Any]:
    """Signal one entry, then call for another: both queue behind earlier operations."""
    job = _decoded(context.get_input())
    journal = df.EntityId(JOURNAL, job["key"])
    context.signal_entity(journal, "append", "signalled by orchestration")
    entries = yield context.call_entity(journal, "append_and_read", "called by orchestration")
    failure = None
    try:
        yield context.call_entity(journal, "fail")
    except Exception as error:
        failure = str(error)
    return {"entries": entries, "failure": failure}


@app.orchestration_trigger(context_name="context")
def coin_flip(context: df.DurableOrchestrationContext) -> Generator[Any, Any, Any]:
    """Nondeterministic on purpose: each call picks another activity."""
    coin_flip_calls.append(1)
    activity = "greet" if len(coin_flip_calls) % 2 else "shout"
    yield context.call_activity(activity, {"who": "coin"} if activity == "greet" else "coin")
    return "flipped"


@app.activity_trigger(input_name="payload", activity="greet")
def greet_activity(payload: dict[str, str]) -> str:
    """Registered as "greet": the trigger's name wins over the function name."""
    return f"hello {payload['who']}"


@app.activity_trigger(input_name="text")
async def shout(text: str) -> str:
    """An async activity."""
    await asyncio.sleep(0)
    return text.upper()


@app.activity_trigger(input_name="message")
def explode(message: str) -> None:
    """Always fails."""
    raise ValueError(message)


@app.activity_trigger(input_name="job")
def flaky(job: dict[str, Any]) -> str:
    """Fails until its `succeed_on` attempt."""
    attempt = flaky_attempts.get(job["key"], 0) + 1
    flaky_attempts[job["key"]] = attempt
    if attempt < job["succeed_on"]:
        raise ConnectionError(f"attempt {attempt} failed")
    return f"ok on attempt {attempt}"


@app.entity_trigger(context_name="context", entity_name=JOURNAL)
def journal(context: df.DurableEntityContext) -> None:
    """A list of entries: append, append_and_read, read, fail (after appending), delete."""
    entries: list[Any] = context.get_state(list)
    operation = context.operation_name
    if operation in ("append", "append_and_read", "fail"):
        entries.append(context.get_input() if operation != "fail" else "before failure")
        context.set_state(entries)
    if operation == "fail":
        raise ValueError("journal refused")
    if operation == "delete":
        context.destruct_on_exit()
        return
    context.set_result(len(entries) if operation == "append" else entries)


@app.orchestration_trigger(context_name="context")
def gated_call(context: df.DurableOrchestrationContext) -> Generator[Any, Any, Any]:
    """One activity that runs until the test opens `gate`."""
    return (yield context.call_activity("gated", "through"))


@app.orchestration_trigger(context_name="context")
def held(context: df.DurableOrchestrationContext) -> Generator[Any, Any, Any]:
    """Returns its input once the test opens `held_gate` (each episode waits for it)."""
    held_gate.wait(30)
    yield from ()  # a generator, as every orchestrator is
    return context.get_input()


@app.activity_trigger(input_name="text")
def gated(text: str) -> str:
    gate.wait(30)
    return text


@app.orchestration_trigger(context_name="context")
def nested(context: df.DurableOrchestrationContext) -> Generator[Any, Any, Any]:
    """Calls a sub-orchestration, which the stand-in does not emulate."""
    return (yield context.call_sub_orchestrator("alarm", {"sleep": 0, "label": "x"}))


@app.orchestration_trigger(context_name="context")
def chain(context: df.DurableOrchestrationContext) -> Generator[Any, Any, Any]:
    """`links` activity calls one after another: a history that grows by one call per step."""
    job = _decoded(context.get_input())
    for link in range(job["links"]):
        yield context.call_activity("greet", {"who": f"link {link}"})
    return job["links"]


@app.orchestration_trigger(context_name="context")
def impatient(context: df.DurableOrchestrationContext) -> Generator[Any, Any, Any]:
    """Calls the journal with a deadline; when the deadline wins, signals that it gave up."""
    job = _decoded(context.get_input())
    journal = df.EntityId(JOURNAL, job["key"])
    call = context.call_entity(journal, "append", "acquire")
    deadline = context.create_timer(context.current_utc_datetime + timedelta(seconds=job["wait"]))
    winner = yield context.task_any([call, deadline])
    if winner == call:
        deadline.cancel()
        return "answered"
    context.signal_entity(journal, "append", "gave up")
    return "gave up"


@app.orchestration_trigger(context_name="context")
def whereabouts(context: df.DurableOrchestrationContext) -> Generator[Any, Any, Any]:
    """Which process ran its activity, and whether that activity survived."""
    job = _decoded(context.get_input())
    try:
        return (yield context.call_activity("process_id", job.get("exit", False)))
    except Exception as error:
        return f"failed: {error}"


@app.activity_trigger(input_name="exit")
def process_id(exit: bool) -> int:
    """The id of the process running it; with `exit`, that process ends instead."""
    if exit:
        os._exit(3)
    return os.getpid()


@app.orchestration_trigger(context_name="context")
def logger_levels(context: df.DurableOrchestrationContext) -> Generator[Any, Any, Any]:
    """The levels of the named loggers where its activity ran."""
    return (yield context.call_activity("levels_here", _decoded(context.get_input())))


@app.activity_trigger(input_name="names")
def levels_here(names: list[str]) -> list[int]:
    return [logging.getLogger(name or None).level for name in names]


@app.route(route="whereabouts", methods=["GET"])
def whereabouts_route(req: func.HttpRequest) -> func.HttpResponse:
    """The id of the process serving it; with `?exit=1`, that process ends instead; with
    `?raise=1`, the function raises; with `?sys_exit=1`, it calls sys.exit()."""
    if req.params.get("exit"):
        os._exit(3)
    if req.params.get("raise"):
        raise ValueError("asked to")
    if req.params.get("sys_exit"):
        sys.exit(4)
    return func.HttpResponse(str(os.getpid()))


@app.route(route="start/{name}", methods=["POST"])
@app.durable_client_input(client_name="client")
async def start_route(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    """Start orchestrator `name` with the body as input; its instance id and this process's."""
    instance_id = await client.start_new(req.route_params["name"], None, req.get_json())
    return func.HttpResponse(json.dumps({"instance_id": instance_id, "pid": os.getpid()}))


# Per name, set when a request `meet/{name}?arrive=1` comes (in the worker's loop).
_meetings: dict[str, asyncio.Event] = {}


@app.route(route="meet/{name}", methods=["GET"])
async def meet_route(req: func.HttpRequest) -> func.HttpResponse:
    """Wait up to 20 s for another request to `meet/{name}` with `?arrive=1` (which answers
    at once): 200 if it came, 504 if not."""
    meeting = _meetings.setdefault(req.route_params["name"], asyncio.Event())
    if req.params.get("arrive"):
        meeting.set()
        return func.HttpResponse("arrived")
    try:
        await asyncio.wait_for(meeting.wait(), 20)
    except TimeoutError:
        return func.HttpResponse("nobody came", status_code=504)
    return func.HttpResponse("met")
