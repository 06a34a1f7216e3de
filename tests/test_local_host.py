"""The local durable host's own parts: the app server (routes, keys, the host's answers) and
the engine on the wall clock with its state on disk. The whole app on it, over real HTTP and
real time, is the live suite (tests/live)."""

import argparse
import contextlib
import json
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Generator, Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import azure.durable_functions as df
import azure.functions as func
import httpx
import pytest

from local_durable_host.__main__ import HostTuning, host_tuning, webhook_secret_note
from local_durable_host.app_server import AppServer, Keys
from local_durable_host.engine import DurableHost
from local_durable_host.http_functions import http_functions
from local_durable_host.local_host import WORKER_PROCESSES, LocalHost, StateInUse
from local_durable_host.model import RuntimeStatus, UnknownFunctionError
from local_durable_host.store import SCHEMA_VERSION, DurableStore, StateRefused, StoredState
from local_durable_host.timer_triggers import TimerTriggers
from local_durable_host.work import EntityWork, StartExecution
from local_durable_host.worker_processes import WorkerProcesses
from tests.support import toy_app
from tests.support.committed_state import committed_copy

START = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
KEYS = Keys(function_key="function-key-for-tests", master_key="master-key-for-tests")

routes = func.FunctionApp()


@routes.route(route="open", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def open_route(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("open", mimetype="text/plain")


@routes.route(route="items/{item_id}", methods=["GET", "POST"], auth_level=func.AuthLevel.FUNCTION)
async def item(req: func.HttpRequest) -> func.HttpResponse:
    echoed = {
        "method": req.method,
        "item_id": req.route_params["item_id"],
        "query": dict(req.params),
        "body": req.get_body().decode(),
        "header": req.headers.get("x-echo"),
    }
    return func.HttpResponse(json.dumps(echoed), status_code=201, mimetype="application/json")


@routes.route(route="items/latest", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
def latest_item(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("latest", headers={"X-Which": "literal"})


@routes.route(route="admin/reset", methods=["POST"], auth_level=func.AuthLevel.ADMIN)
def reset(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(status_code=204)


@routes.route(route="broken", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def broken(req: func.HttpRequest) -> func.HttpResponse:
    raise RuntimeError("a bug in the function")


@pytest.fixture(params=["in this process", "in worker processes"])
def served(request: pytest.FixtureRequest) -> Iterator[httpx.Client]:
    """The routes above, run in the host's process or (as the Functions host runs them) in
    worker processes: each request must come out the same."""
    workers = None
    if request.param == "in worker processes":
        workers = WorkerProcesses(f"{__name__}:routes", count=2, threads=4)
    server = AppServer(routes, lambda: "{}", KEYS, workers=workers)
    try:
        with httpx.Client(base_url=server.base_url, trust_env=False, timeout=10) as client:
            yield client
    finally:
        server.close()
        if workers is not None:
            workers.close()


def test_anonymous_route_needs_no_key(served: httpx.Client) -> None:
    reply = served.get("/api/open")
    assert (reply.status_code, reply.text) == (200, "open")
    assert reply.headers["content-type"].startswith("text/plain")


@pytest.mark.parametrize(
    ("key", "status"),
    [(None, 401), ("wrong", 401), (KEYS.function_key, 201), (KEYS.master_key, 201)],
)
def test_function_route_needs_a_function_or_master_key(
    served: httpx.Client, key: str | None, status: int
) -> None:
    headers = {"x-functions-key": key} if key else {}
    assert served.get("/api/items/7", headers=headers).status_code == status


def test_key_may_come_as_code_query_parameter(served: httpx.Client) -> None:
    reply = served.get("/api/items/7", params={"code": KEYS.function_key, "q": "1"})
    assert reply.status_code == 201
    assert reply.json()["query"] == {"code": KEYS.function_key, "q": "1"}


def test_admin_route_needs_the_master_key(served: httpx.Client) -> None:
    function_key = {"x-functions-key": KEYS.function_key}
    assert served.post("/api/admin/reset", headers=function_key).status_code == 401
    master_key = {"x-functions-key": KEYS.master_key}
    assert served.post("/api/admin/reset", headers=master_key).status_code == 204


def test_request_reaches_the_function_whole(served: httpx.Client) -> None:
    reply = served.post(
        "/api/items/abc",
        content=b"payload bytes",
        headers={"x-functions-key": KEYS.function_key, "X-Echo": "echo"},
    )
    assert reply.status_code == 201
    assert reply.json() == {
        "method": "POST",
        "item_id": "abc",
        "query": {},
        "body": "payload bytes",
        "header": "echo",
    }


def test_literal_route_wins_over_a_template(served: httpx.Client) -> None:
    reply = served.get("/api/items/latest", headers={"x-functions-key": KEYS.function_key})
    assert (reply.status_code, reply.text, reply.headers["x-which"]) == (200, "latest", "literal")


def test_unknown_path_is_404_and_wrong_method_is_405(served: httpx.Client) -> None:
    assert served.get("/api/nowhere").status_code == 404
    reply = served.delete("/api/open")
    assert reply.status_code == 405
    assert reply.headers["allow"] == "GET"


def test_a_function_that_raises_is_a_500_without_its_message(served: httpx.Client) -> None:
    reply = served.get("/api/broken")
    assert reply.status_code == 500
    assert "a bug in the function" not in reply.text


def test_other_host_names_are_refused(served: httpx.Client) -> None:
    # A page elsewhere that rebinds its own name to 127.0.0.1 still sends its own name.
    reply = served.get("/api/open", headers={"Host": "attacker.example:7071"})
    assert reply.status_code == 400
    assert served.get("/api/open", headers={"Host": "localhost:7071"}).status_code == 200


def test_route_table_lists_every_http_function_of_the_app() -> None:
    from function_app import app

    names = {function.name for function in http_functions(app)}
    assert {"create_job", "job_status", "healthz"} <= names, names


# --- the engine on the wall clock, its state on disk --------------------------------------


def wait_until(what: str, probe: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not probe():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


class Serving:
    """An engine on the wall clock, processing in a thread of its own until closed."""

    def __init__(self, state_path: Path, **options: Any) -> None:
        self.engine = DurableHost(
            toy_app.app, None, activity_workers=2, state_path=state_path, **options
        )
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self.engine.serve, args=(self._stop,))
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self.engine.close()


def stored(state_path: Path) -> StoredState:
    """The committed state as a host started after a kill would load it."""
    copy = committed_copy(state_path, state_path.parent / f"look-{time.monotonic_ns()}")
    store = DurableStore(copy)
    try:
        return store.load()
    finally:
        store.close()


def test_wall_clock_engine_runs_a_timer_and_an_activity(tmp_path: Path) -> None:
    serving = Serving(tmp_path / "state")
    try:
        serving.engine.start_instance(
            "alarm", "a1", json.dumps(json.dumps({"sleep": 1, "label": "hi"}))
        )
        wait_until(
            "the alarm to complete",
            lambda: serving.engine.instance("a1").runtime_status is RuntimeStatus.COMPLETED,
        )
        assert serving.engine.instance("a1").output == "HI"
    finally:
        serving.close()


def test_a_stopped_engine_resumes_its_timers_from_its_state_file(tmp_path: Path) -> None:
    state_path = tmp_path / "state"
    first = Serving(state_path)
    try:
        first.engine.start_instance(
            "alarm", "a2", json.dumps(json.dumps({"sleep": 2, "label": "later"}))
        )
        wait_until("the timer to be set", lambda: bool(first.engine.pending_timers()))
    finally:
        first.close()
    assert first.engine.activity_calls == []

    second = Serving(state_path)
    try:
        assert [instance for instance, _ in second.engine.pending_timers()] == ["a2"]
        wait_until(
            "the alarm to complete after the restart",
            lambda: second.engine.instance("a2").runtime_status is RuntimeStatus.COMPLETED,
        )
        assert second.engine.instance("a2").output == "LATER"
        assert [call.name for call in second.engine.activity_calls] == ["shout"]
    finally:
        second.close()


def test_a_started_instance_is_on_disk_before_start_instance_returns(tmp_path: Path) -> None:
    state_path = tmp_path / "state"
    engine = DurableHost(toy_app.app, None, activity_workers=1, state_path=state_path)
    try:
        engine.start_instance("alarm", "a3", json.dumps(json.dumps({"sleep": 1, "label": "x"})))
        # Read as a host started after a kill would, with the first one never stopped.
        saved = stored(state_path)
        assert [(i.instance_id, i.status) for i in saved.instances] == [
            ("a3", RuntimeStatus.PENDING)
        ]
        assert [type(work).__name__ for _, work, _ in saved.messages] == ["StartExecution"]
    finally:
        engine.close()


def test_an_activity_running_when_the_host_died_runs_again_after_the_restart(
    tmp_path: Path,
) -> None:
    toy_app.gate.clear()
    state_path = tmp_path / "first" / "state"
    first = Serving(state_path)
    try:
        first.engine.start_instance("gated_call", "g1", None)
        wait_until(
            "the running activity to be saved as in flight",
            lambda: len(stored(state_path).in_flight) == 1,
        )
        # The state as a kill -9 would leave it: the activity never reported.
        copy = committed_copy(state_path, tmp_path / "second" / "state")
        toy_app.gate.set()
        second = Serving(copy)
        try:
            wait_until(
                "the activity to run again and the instance to complete",
                lambda: second.engine.instance("g1").runtime_status is RuntimeStatus.COMPLETED,
            )
            assert [call.name for call in second.engine.activity_calls] == ["gated"]
        finally:
            second.close()
    finally:
        toy_app.gate.set()
        first.close()


def test_an_action_it_does_not_emulate_fails_its_instance_and_the_host_goes_on(
    tmp_path: Path,
) -> None:
    serving = Serving(tmp_path / "state")
    try:
        serving.engine.start_instance("nested", "n1", None)
        serving.engine.start_instance(
            "alarm", "a4", json.dumps(json.dumps({"sleep": 0, "label": "y"}))
        )
        wait_until(
            "both instances to finish",
            lambda: (
                serving.engine.instance("a4").runtime_status is RuntimeStatus.COMPLETED
                and serving.engine.instance("n1").runtime_status is RuntimeStatus.FAILED
            ),
        )
        assert "failed" in serving.engine.instance("n1").output
    finally:
        serving.close()


renamed = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@renamed.orchestration_trigger(context_name="context")
def waiter(context: df.DurableOrchestrationContext) -> Generator[Any, Any, Any]:
    return (yield context.wait_for_external_event("never"))


def test_a_step_that_fails_half_way_is_never_saved_not_even_by_a_later_request(
    tmp_path: Path,
) -> None:
    state_path = tmp_path / "state"
    with DurableHost(toy_app.app, START, activity_workers=1, state_path=state_path) as before:
        before.signal_entity("Journal", "k", "append", json.dumps(json.dumps("x")))
    # The app no longer has the entity: its batch fails inside the host, after the operation
    # left the engine's queue (not the store).
    engine = DurableHost(renamed, START, activity_workers=1, state_path=state_path)
    try:
        with pytest.raises(UnknownFunctionError):
            engine.step()
        with pytest.raises(RuntimeError, match="stopped on an error"):
            engine.start_instance("waiter", "w", None)
        saved = stored(state_path)
        (queued,) = [work for _, work, _ in saved.messages]
        assert isinstance(queued, EntityWork)
        assert (queued.name, queued.operation) == ("journal", "append")
        assert saved.instances == []
    finally:
        with contextlib.suppress(RuntimeError):
            engine.close()


def test_a_state_file_of_another_version_is_refused_with_what_to_do(tmp_path: Path) -> None:
    not_a_database = tmp_path / "garbage" / "state"
    not_a_database.parent.mkdir()
    not_a_database.write_bytes(b"not a state, and longer than an SQLite header would be" * 4)
    with pytest.raises(StateRefused, match=r"not a state database.*delete"):
        DurableStore(not_a_database)

    other_schema = tmp_path / "other" / "state"
    DurableStore(other_schema).close()
    with closing(sqlite3.connect(other_schema)) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StateRefused, match=rf"schema {SCHEMA_VERSION + 1}.*delete"):
        DurableStore(other_schema)


def test_a_pickled_state_of_the_hosts_before_sqlite_is_refused(tmp_path: Path) -> None:
    (tmp_path / "durable-state.pickle").write_bytes(b"the whole state, pickled")
    with pytest.raises(ValueError, match=r"older version.*delete it"):
        LocalHost(routes, tmp_path, KEYS, 0)
    # Refused before anything started, and the folder is free again.
    (tmp_path / "durable-state.pickle").unlink()
    with LocalHost(routes, tmp_path, KEYS, 0):
        pass


def test_a_second_host_on_the_same_state_folder_stops_before_loading(tmp_path: Path) -> None:
    with LocalHost(routes, tmp_path, KEYS, 0), pytest.raises(StateInUse):
        LocalHost(routes, tmp_path, KEYS, 0)


def test_a_client_is_answered_while_an_episode_runs_and_a_kill_then_loses_neither(
    tmp_path: Path,
) -> None:
    """An orchestrator's own code runs outside the engine's state: a start sent meanwhile is
    stored and answered at once, and the state a kill would leave holds that start and, still
    queued, the message of the episode that had not finished."""
    state_path = tmp_path / "state"
    toy_app.held_gate.clear()
    engine = DurableHost(toy_app.app, START, activity_workers=1, state_path=state_path)
    stepping = threading.Thread(target=engine.step)
    try:
        engine.start_instance("held", "h", json.dumps(json.dumps("out")))
        stepping.start()
        answered = threading.Thread(
            target=engine.start_instance, args=("alarm", "a", json.dumps(json.dumps({})))
        )
        answered.start()
        answered.join(10)
        assert not answered.is_alive(), "the start waited for the episode"
        assert stepping.is_alive(), "the episode was not held"

        saved = stored(state_path)
        assert sorted(record.instance_id for record in saved.instances) == ["a", "h"]
        queued = [work for _, work, _ in saved.messages]
        assert all(isinstance(work, StartExecution) for work in queued)
        assert [work.instance_id for work in queued if isinstance(work, StartExecution)] == [
            "h",
            "a",
        ]
    finally:
        toy_app.held_gate.set()
        stepping.join(10)
        engine.close()
    with DurableHost(toy_app.app, START, activity_workers=1, state_path=state_path) as after:
        after.run()
        assert after.instance("h").output == "out"
        assert after.instance("h").runtime_status is RuntimeStatus.COMPLETED


def test_closing_waits_for_the_episode_in_progress_and_keeps_its_outcome(
    tmp_path: Path,
) -> None:
    state_path = tmp_path / "state"
    toy_app.held_gate.clear()
    engine = DurableHost(toy_app.app, START, activity_workers=1, state_path=state_path)
    engine.start_instance("held", "h", json.dumps(json.dumps("out")))
    stepping = threading.Thread(target=engine.step)
    closing = threading.Thread(target=engine.close)
    try:
        stepping.start()
        closing.start()
        closing.join(0.5)
        assert closing.is_alive(), "closed while the episode was still running"
    finally:
        toy_app.held_gate.set()
        stepping.join(10)
        closing.join(10)
    assert not engine.step(), "a closed engine took another step"
    with DurableHost(toy_app.app, START, activity_workers=1, state_path=state_path) as after:
        assert after.instance("h").runtime_status is RuntimeStatus.COMPLETED
        assert after.queued_message_count() == 0


# --- the host's settings ------------------------------------------------------------------


def tuning(argv: list[str], environ: dict[str, str]) -> HostTuning:
    parser = argparse.ArgumentParser()
    for flag, kind in (
        ("--retention-hours", float),
        ("--activity-workers", int),
        ("--activity-start-delay-seconds", float),
        ("--worker-processes", int),
    ):
        parser.add_argument(flag, type=kind)
    return host_tuning(parser.parse_args(argv), environ)


def test_host_settings_come_from_the_flag_else_the_environment_else_the_default() -> None:
    assert tuning([], {}) == HostTuning(timedelta(hours=72), 32, timedelta(0), WORKER_PROCESSES)
    environ = {
        "LOCAL_HOST_RETENTION_HOURS": "0.5",
        "LOCAL_HOST_ACTIVITY_WORKERS": "24",
        "LOCAL_HOST_ACTIVITY_START_DELAY_SECONDS": "2.5",
        "FUNCTIONS_WORKER_PROCESS_COUNT": "3",
    }
    assert tuning([], environ) == HostTuning(timedelta(minutes=30), 24, timedelta(seconds=2.5), 3)
    flags = ["--retention-hours", "1", "--activity-workers", "3", "--worker-processes", "0"]
    assert tuning(flags, environ) == HostTuning(timedelta(hours=1), 3, timedelta(seconds=2.5), 0)


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"LOCAL_HOST_RETENTION_HOURS": "0"}, "more than 0 hours"),
        ({"LOCAL_HOST_RETENTION_HOURS": "three"}, "LOCAL_HOST_RETENTION_HOURS='three'"),
        ({"LOCAL_HOST_ACTIVITY_WORKERS": "0"}, "1 to 256"),
        ({"LOCAL_HOST_ACTIVITY_WORKERS": "2.5"}, "is not a number"),
        ({"LOCAL_HOST_ACTIVITY_START_DELAY_SECONDS": "-1"}, "0 to 86400"),
        ({"FUNCTIONS_WORKER_PROCESS_COUNT": "11"}, "0 to 10"),
    ],
)
def test_a_host_setting_out_of_range_is_refused_by_name(
    environ: dict[str, str], message: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        tuning([], environ)


# --- timer triggers -----------------------------------------------------------------------

timed = func.FunctionApp()
timer_calls: list[str] = []


@timed.timer_trigger(arg_name="timer", schedule="0 17 * * * *")
async def hourly(timer: func.TimerRequest) -> None:
    timer_calls.append(f"hourly past_due={timer.past_due}")


@timed.timer_trigger(arg_name="timer", schedule="*/30 * * * * *")
def half_minutely(timer: func.TimerRequest) -> None:
    timer_calls.append("half-minutely")
    raise RuntimeError("a failing sweep must not stop the others")


def test_timer_functions_run_once_per_occurrence_of_their_ncrontab_schedule() -> None:
    timer_calls.clear()
    start = datetime(2026, 11, 29, 3, 16, 50, tzinfo=UTC)
    server = AppServer(routes, lambda: "{}", KEYS)
    try:
        timers = TimerTriggers(timed, lambda: "{}", server.run_async, start)
        assert timers.next_due() == start + timedelta(seconds=10)  # 03:17:00, both
        timers.run_due(start)
        assert timer_calls == []
        timers.run_due(start + timedelta(seconds=10))
        timers.run_due(start + timedelta(seconds=11))  # the same occurrence: not again
        assert sorted(timer_calls) == ["half-minutely", "hourly past_due=False"]
        timers.run_due(start + timedelta(seconds=40))  # 03:17:30
        assert sorted(timer_calls) == ["half-minutely", "half-minutely", "hourly past_due=False"]
        assert timers.next_due() == datetime(2026, 11, 29, 3, 18, 0, tzinfo=UTC)
    finally:
        server.close()


def test_the_banner_says_where_the_webhook_secret_is_never_the_secret(tmp_path: Path) -> None:
    secret = "whsec_" + "A" * 44
    settings = tmp_path / "local.settings.json"
    settings.write_text(json.dumps({"Values": {"WEBHOOK_SIGNING_SECRETS": secret}}))
    in_file = webhook_secret_note(settings, {"WEBHOOK_SIGNING_SECRETS": secret})
    assert in_file.startswith(f"WEBHOOK_SIGNING_SECRETS in {settings} ")
    settings.write_text(json.dumps({"Values": {}}))
    from_environment = webhook_secret_note(settings, {"WEBHOOK_SIGNING_SECRETS": secret})
    assert from_environment.startswith("WEBHOOK_SIGNING_SECRETS from the environment ")
    assert webhook_secret_note(settings, {}).startswith("none: deliveries are not signed")
    assert all(secret not in note for note in (in_file, from_environment))
