"""The app's HTTP functions and activities in Python worker processes beside the local host
(FUNCTIONS_WORKER_PROCESS_COUNT): each runs in a process of its own, spread evenly, and a
worker that dies fails only what it was running, as on the Functions host."""

import json
import logging
import multiprocessing
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from local_durable_host.app_server import AppServer, Keys
from local_durable_host.engine import DurableHost
from local_durable_host.model import RuntimeStatus
from local_durable_host.worker_processes import WorkerProcesses
from tests.support import toy_app


@pytest.fixture
def workers() -> Iterator[WorkerProcesses]:
    workers = WorkerProcesses("tests.support.toy_app", count=2, threads=4)
    try:
        yield workers
    finally:
        workers.close()


@pytest.fixture
def engine(tmp_path: Path, workers: WorkerProcesses) -> Iterator[DurableHost]:
    host = DurableHost(
        toy_app.app,
        None,
        activity_workers=4,
        state_path=tmp_path / "state",
        worker_processes=workers,
    )
    stop = threading.Event()
    serving = threading.Thread(target=host.serve, args=(stop,))
    serving.start()
    try:
        yield host
    finally:
        stop.set()
        serving.join(10)
        host.close()


@pytest.fixture
def api(engine: DurableHost, workers: WorkerProcesses) -> Iterator[httpx.Client]:
    """The toy app's HTTP functions served by the host, run in the worker processes."""
    keys = Keys(function_key="f", master_key="m")
    server = AppServer(toy_app.app, engine.client_binding, keys, workers=workers)
    try:
        with httpx.Client(base_url=server.base_url, trust_env=False, timeout=30) as client:
            yield client
    finally:
        server.close()


def finished(engine: DurableHost, instance_ids: list[str]) -> list[object]:
    def done() -> bool:
        return all(
            engine.instance(i).runtime_status is RuntimeStatus.COMPLETED for i in instance_ids
        )

    wait_until(done)
    return [engine.instance(i).output for i in instance_ids]


def wait_until(probe: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not probe():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def start(engine: DurableHost, name: str, instance_id: str, job: object) -> str:
    return engine.start_instance(name, instance_id, json.dumps(json.dumps(job)))


def test_activities_run_in_the_worker_processes_spread_evenly(engine: DurableHost) -> None:
    ids = [start(engine, "whereabouts", f"w{n}", {}) for n in range(6)]
    processes = Counter(finished(engine, ids))
    assert os.getpid() not in processes
    assert sorted(processes.values()) == [3, 3]


def test_an_async_activity_runs_in_a_worker_process(engine: DurableHost) -> None:
    start(engine, "alarm", "a1", {"sleep": 0, "label": "hi"})
    assert finished(engine, ["a1"]) == ["HI"]


def test_a_worker_that_exits_fails_its_activity_and_a_new_one_takes_its_place(
    engine: DurableHost,
) -> None:
    start(engine, "whereabouts", "dies", {"exit": True})
    [outcome] = finished(engine, ["dies"])
    assert isinstance(outcome, str)
    assert outcome.startswith("failed: ")
    assert "WorkerProcessExited" in outcome
    ids = [start(engine, "whereabouts", f"after{n}", {}) for n in range(4)]
    processes = Counter(finished(engine, ids))
    assert os.getpid() not in processes
    assert sorted(processes.values()) == [2, 2]
    assert [call.name for call in engine.activity_calls].count("process_id") == 5


def test_a_worker_count_beyond_the_hosts_limit_is_refused() -> None:
    with pytest.raises(ValueError, match="1 to 10"):
        WorkerProcesses("tests.support.toy_app", count=11, threads=1)


def test_a_worker_logs_as_the_host_is_configured(tmp_path: Path) -> None:
    quiet = logging.getLogger("azure.core.pipeline.policies.http_logging_policy")
    saved = quiet.level
    quiet.setLevel(logging.WARNING)
    try:
        workers = WorkerProcesses("tests.support.toy_app", count=1, threads=1)
    finally:
        quiet.setLevel(saved)
    try:
        host = DurableHost(toy_app.app, None, activity_workers=1, worker_processes=workers)
        with host:
            stop = threading.Event()
            serving = threading.Thread(target=host.serve, args=(stop,))
            serving.start()
            try:
                start(host, "logger_levels", "l1", ["", quiet.name])
                [levels] = finished(host, ["l1"])
            finally:
                stop.set()
                serving.join(10)
    finally:
        workers.close()
    assert levels == [logging.getLogger().level, logging.WARNING]


def test_an_app_the_workers_cannot_import_stops_the_start_with_its_error() -> None:
    with pytest.raises(RuntimeError, match=r"could not load the app.*no_such_app"):
        WorkerProcesses("tests.support.no_such_app", count=2, threads=1)
    assert multiprocessing.active_children() == []


def test_http_functions_run_in_the_worker_processes_spread_evenly(api: httpx.Client) -> None:
    served_by = Counter(int(api.get("/api/whereabouts").text) for _ in range(6))
    assert os.getpid() not in served_by
    assert sorted(served_by.values()) == [3, 3]


def test_a_function_in_a_worker_starts_an_orchestration_the_host_runs(
    api: httpx.Client, engine: DurableHost
) -> None:
    reply = api.post("/api/start/whereabouts", json={})
    assert reply.status_code == 200
    started = reply.json()
    assert started["pid"] != os.getpid()
    [activity_process] = finished(engine, [started["instance_id"]])
    assert activity_process not in (os.getpid(), None)


def test_a_function_that_raises_in_a_worker_is_a_500_naming_only_its_error_type(
    capfd: pytest.CaptureFixture[str],
) -> None:
    # Started here, so that the worker's output goes where capfd reads.
    workers = WorkerProcesses("tests.support.toy_app", count=1, threads=1)
    server = AppServer(toy_app.app, lambda: "{}", Keys("f", "m"), workers=workers)
    try:
        with httpx.Client(base_url=server.base_url, trust_env=False, timeout=30) as api:
            reply = api.get("/api/whereabouts", params={"raise": "1"})
            assert (reply.status_code, reply.json()) == (500, {"error": "ValueError"})
            assert "asked to" not in reply.text
            assert api.get("/api/whereabouts").status_code == 200
    finally:
        server.close()
        workers.close()
    # The worker logs what it raised, with its traceback, where the developer sees it.
    logged = capfd.readouterr().err
    assert "GET /api/whereabouts failed" in logged
    assert "ValueError: asked to" in logged


def test_a_worker_that_exits_mid_request_fails_that_request_and_a_new_one_serves_on(
    api: httpx.Client,
) -> None:
    reply = api.get("/api/whereabouts", params={"exit": "1"})
    assert (reply.status_code, reply.json()) == (500, {"error": "WorkerProcessExited"})
    served_by = Counter(int(api.get("/api/whereabouts").text) for _ in range(4))
    assert os.getpid() not in served_by
    assert sorted(served_by.values()) == [2, 2]


@pytest.fixture
def one_worker() -> Iterator[tuple[httpx.Client, WorkerProcesses]]:
    """The toy app's HTTP functions in one worker process with one thread."""
    workers = WorkerProcesses("tests.support.toy_app", count=1, threads=1)
    server = AppServer(toy_app.app, lambda: "{}", Keys("f", "m"), workers=workers)
    try:
        with httpx.Client(base_url=server.base_url, trust_env=False, timeout=60) as api:
            yield api, workers
    finally:
        server.close()
        workers.close()


def test_an_async_function_that_waits_holds_no_thread_of_its_worker(
    one_worker: tuple[httpx.Client, WorkerProcesses],
) -> None:
    """As the Python worker runs async functions on its loop: with one thread, a second
    request still runs while the first waits for it."""
    api, _ = one_worker
    with ThreadPoolExecutor(1) as waiting:
        first = waiting.submit(api.get, "/api/meet/m1")
        time.sleep(0.5)  # let it be waiting (if it is not yet, the meeting still happens)
        assert api.get("/api/meet/m1", params={"arrive": "1"}).status_code == 200
        reply = first.result()
    assert (reply.status_code, reply.text) == (200, "met")


def test_a_function_that_calls_sys_exit_in_a_worker_is_a_500_and_the_worker_goes_on(
    one_worker: tuple[httpx.Client, WorkerProcesses],
) -> None:
    api, _ = one_worker
    pid = api.get("/api/whereabouts").text
    reply = api.get("/api/whereabouts", params={"sys_exit": "1"})
    assert (reply.status_code, reply.json()) == (500, {"error": "SystemExit"})
    assert api.get("/api/whereabouts").text == pid


def test_a_replacement_that_cannot_load_the_app_fails_what_it_is_sent_and_says_why(
    one_worker: tuple[httpx.Client, WorkerProcesses],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    api, _ = one_worker
    assert api.get("/api/whereabouts").status_code == 200
    monkeypatch.setenv("TOY_APP_UNLOADABLE", "1")  # as an app saved with an error
    reply = api.get("/api/whereabouts", params={"exit": "1"})
    assert reply.json() == {"error": "WorkerProcessExited"}
    # Answered (not left waiting for a worker that never starts), and the console says why.
    reply = api.get("/api/whereabouts")
    assert (reply.status_code, reply.json()) == (500, {"error": "WorkerProcessExited"})
    assert "could not start again" in caplog.text
    assert "the toy app was made unloadable" in caplog.text
