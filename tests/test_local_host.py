"""The local durable host's own parts: the app server (routes, keys, the host's answers) and
the engine on the wall clock with its state on disk. The whole app on it, over real HTTP and
real time, is the live suite (tests/live)."""

import json
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import azure.functions as func
import httpx
import pytest

from local_durable_host.app_server import AppServer, Keys, http_functions
from local_durable_host.engine import DurableHost
from local_durable_host.local_host import LocalHost, StateInUse
from local_durable_host.model import RuntimeStatus
from local_durable_host.state_file import StateFile
from local_durable_host.timer_triggers import TimerTriggers
from tests.support import toy_app

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


@pytest.fixture
def served() -> Iterator[httpx.Client]:
    server = AppServer(routes, lambda: "{}", KEYS)
    try:
        with httpx.Client(base_url=server.base_url, trust_env=False, timeout=10) as client:
            yield client
    finally:
        server.close()


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

    def __init__(self, state_file: StateFile) -> None:
        self.engine = DurableHost(toy_app.app, None, activity_workers=2, state_file=state_file)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self.engine.serve, args=(self._stop,))
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self.engine.close()


def test_wall_clock_engine_runs_a_timer_and_an_activity(tmp_path: Path) -> None:
    serving = Serving(StateFile(tmp_path / "state"))
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
    state_file = StateFile(tmp_path / "state")
    first = Serving(state_file)
    try:
        first.engine.start_instance(
            "alarm", "a2", json.dumps(json.dumps({"sleep": 2, "label": "later"}))
        )
        wait_until("the timer to be set", lambda: bool(first.engine.pending_timers()))
    finally:
        first.close()
    assert first.engine.activity_calls == []

    second = Serving(state_file)
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
    state_file = StateFile(tmp_path / "state")
    engine = DurableHost(toy_app.app, None, activity_workers=1, state_file=state_file)
    try:
        engine.start_instance("alarm", "a3", json.dumps(json.dumps({"sleep": 1, "label": "x"})))
        # Read as a host started after a kill would, with the first one never stopped.
        saved = state_file.load()
        assert saved is not None
        assert saved.instances["a3"].status is RuntimeStatus.PENDING
        assert len(saved.mailbox) == 1  # its start, queued
    finally:
        engine.close()


def test_an_activity_running_when_the_host_died_runs_again_after_the_restart(
    tmp_path: Path,
) -> None:
    toy_app.gate.clear()
    state_file = StateFile(tmp_path / "first" / "state")
    first = Serving(state_file)
    try:
        first.engine.start_instance("gated_call", "g1", None)

        def in_flight_on_disk() -> bool:
            saved = state_file.load()
            return saved is not None and len(saved.in_flight) == 1

        wait_until("the running activity to be saved as in flight", in_flight_on_disk)
        # The state as a kill -9 would leave it: the activity never reported.
        copy = StateFile(tmp_path / "second" / "state")
        copy.path.parent.mkdir()
        shutil.copy(state_file.path, copy.path)
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
    serving = Serving(StateFile(tmp_path / "state"))
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


def test_a_state_file_of_another_version_is_refused_with_what_to_do(tmp_path: Path) -> None:
    state_file = StateFile(tmp_path / "state")
    state_file.path.write_bytes(b"not a state")
    (tmp_path / ".state-leftover").write_bytes(b"half a save")
    with pytest.raises(ValueError, match="delete"):
        state_file.load()
    assert not (tmp_path / ".state-leftover").exists()


def test_a_second_host_on_the_same_state_folder_stops_before_loading(tmp_path: Path) -> None:
    with LocalHost(routes, tmp_path, KEYS, 0), pytest.raises(StateInUse):
        LocalHost(routes, tmp_path, KEYS, 0)


def test_a_state_file_needs_activity_workers_and_a_wall_clock(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="activity workers"):
        DurableHost(toy_app.app, None, state_file=StateFile(tmp_path / "state"))


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
