"""The app's HTTP functions and activities in Python worker processes, as the Functions host
runs them.

The Functions host never runs app code in its own process: it starts
`FUNCTIONS_WORKER_PROCESS_COUNT` language worker processes (default 1, at most 10) and
spreads invocations evenly among them (learn.microsoft.com/azure/azure-functions/
functions-app-settings#functions_worker_process_count); each worker runs several invocations
at once on its own threads (PYTHON_THREADPOOL_THREAD_COUNT) and every async function on its
one event loop. Here each worker process imports the app; the host sends it an admitted
HTTP request (http_functions.HttpCall) or an activity's name and input JSON, each with the
durable client binding, and gets back the response, the activity's JSON result, or the
error, as over the host's gRPC channel. Orchestrators and entities stay in the host's
process (short, deterministic, ordered by the engine), and so do timer triggers (a few runs
an hour): there the local host departs from the Functions host.

Why bother: the app's CPU (the Azure SDKs' above all) then runs on other cores than the
engine's and the HTTP server's, instead of contending for one interpreter lock with them.
"""

import asyncio
import contextlib
import importlib
import itertools
import logging
import multiprocessing
import os
import signal
import threading
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any
from urllib.parse import urlsplit

from local_durable_host.http_functions import (
    AppResponse,
    FunctionFailed,
    HttpCall,
    HttpFunction,
    call_http,
    call_http_async,
    close_durable_session,
    http_functions,
    is_async,
)
from local_durable_host.worker_calls import (
    ActivityOutcome,
    DurableFunction,
    call_activity,
    discover,
)

# The Functions host's limit for FUNCTIONS_WORKER_PROCESS_COUNT.
MAX_WORKER_PROCESSES = 10
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ActivityCall:
    name: str
    input_json: str | None
    client_binding: str


# Over a worker's pipe: (call id, ActivityCall | HttpCall) there, None to stop it; back,
# (call id, the activity's outcome, the function's response, or the type of what it raised).

# What an activity whose worker process exited before answering ends with.
EXITED = ActivityOutcome(error_message="WorkerProcessExited: the worker process exited")
_EXITED_TYPE = "WorkerProcessExited"


class WorkerProcesses:
    """`count` worker processes, each importing `app_reference` ("module" or "module:attr",
    attr `app` by default) and running up to `threads` invocations at once."""

    def __init__(self, app_reference: str, count: int, threads: int) -> None:
        if not 1 <= count <= MAX_WORKER_PROCESSES:
            raise ValueError(f"worker processes must be 1 to {MAX_WORKER_PROCESSES} (got {count})")
        self._app_reference = app_reference
        self._threads = threads
        self._context = multiprocessing.get_context("spawn")
        self._ids = itertools.count(1)
        self._closing = False
        self._workers = [_Worker(self, number) for number in range(count)]
        self._next = itertools.cycle(range(count))
        self._pick = threading.Lock()
        try:
            for worker in self._workers:
                worker.wait_ready()
        except BaseException:
            self.close()
            raise

    def call_activity(
        self, name: str, input_json: str | None, client_binding: str
    ) -> ActivityOutcome:
        """Run activity `name` in the next worker (round robin, as the host spreads them)."""
        answer = self._next_worker().call(ActivityCall(name, input_json, client_binding))
        return answer if isinstance(answer, ActivityOutcome) else EXITED

    def call_http(self, call: HttpCall) -> AppResponse:
        """Run an HTTP function in the next worker; FunctionFailed if it raised or its worker
        exited."""
        answer = self._next_worker().call(call)
        if isinstance(answer, AppResponse):
            return answer
        raise FunctionFailed(answer if isinstance(answer, str) else _EXITED_TYPE)

    def _next_worker(self) -> "_Worker":
        with self._pick:
            return self._workers[next(self._next)]

    def close(self) -> None:
        self._closing = True
        for worker in self._workers:
            worker.close()

    def _spawn(self) -> tuple[BaseProcess, Connection]:
        ours, theirs = self._context.Pipe()
        process = self._context.Process(
            target=_serve,
            args=(theirs, self._app_reference, self._threads, _logger_levels()),
            name="durable-worker",
            daemon=True,
        )
        process.start()
        theirs.close()
        return process, ours


class _Worker:
    def __init__(self, pool: WorkerProcesses, number: int) -> None:
        self._pool = pool
        self._number = number
        self._send = threading.Lock()
        self._pending: dict[int, Future[ActivityOutcome | AppResponse | str]] = {}
        self._start()

    def _start(self, *, replacing: bool = False) -> None:
        self._process, self._connection = self._pool._spawn()
        self._ready: Future[None] = Future()
        self._reader = threading.Thread(
            target=self._read,
            args=(replacing,),
            name=f"durable-worker-{self._number}",
            daemon=True,
        )
        self._reader.start()

    def wait_ready(self) -> None:
        self._ready.result()

    def call(self, call: ActivityCall | HttpCall) -> ActivityOutcome | AppResponse | str:
        """Its answer; EXITED if the worker exited before giving one."""
        answer: Future[ActivityOutcome | AppResponse | str] = Future()
        call_id = next(self._pool._ids)
        with self._send:
            self._pending[call_id] = answer
            try:
                self._connection.send((call_id, call))
            except OSError:  # it just exited: _read fails what it held and replaces it
                self._pending.pop(call_id, None)
                return EXITED
        return answer.result()

    def _read(self, replacing: bool) -> None:
        connection = self._connection
        failure: BaseException | None = None
        try:
            message = connection.recv()
            if isinstance(message, BaseException):
                failure = message
            else:
                self._ready.set_result(None)
                while True:
                    call_id, result = connection.recv()
                    with self._send:
                        answer = self._pending.pop(call_id)
                    answer.set_result(result)
        except (EOFError, OSError):
            pass
        # As the Functions host does when a language worker exits: what it was running fails,
        # and a new worker takes its place.
        with self._send:
            lost, self._pending = self._pending, {}
            for answer in lost.values():
                answer.set_result(EXITED)
            if not self._ready.done():
                error = failure or RuntimeError("a worker process exited as it started")
                self._ready.set_exception(error)  # the host's start raises it
                if replacing:  # nobody waits for a replacement: say it here
                    log.error(
                        "worker process %d could not start again (%s): what is sent to it "
                        "fails until the host is restarted",
                        self._number,
                        error,
                    )
                # Whatever is sent from now on fails at once (OSError), not waits forever.
                self._connection.close()
                return
            if self._pool._closing:
                return
            log.error(
                "worker process %d exited; %d invocations failed; starting another",
                self._number,
                len(lost),
            )
            self._process.join(5)
            self._connection.close()
            self._start(replacing=True)

    def close(self) -> None:
        with self._send, contextlib.suppress(OSError):
            self._connection.send(None)
        self._process.join(10)
        if self._process.is_alive():
            self._process.kill()
            self._process.join(5)
        self._connection.close()


def _load_app(reference: str) -> Any:
    module_name, _, attribute = reference.partition(":")
    return getattr(importlib.import_module(module_name), attribute or "app")


def _logger_levels() -> dict[str, int]:
    """The root logger's level and every logger's own, as this process set them (e.g. the
    Azure SDK's line per request off), for a worker to log as the host does."""
    levels = {"": logging.getLogger().level}
    for name, logger in logging.Logger.manager.loggerDict.items():
        if isinstance(logger, logging.Logger) and logger.level != logging.NOTSET:
            levels[name] = logger.level
    return levels


def _serve(
    connection: Connection, app_reference: str, threads: int, levels: dict[str, int]
) -> None:
    """The worker process: import the app, then run each invocation asked for on a thread
    (an async function on the worker's one event loop)."""
    # A Ctrl-C (to the terminal's whole process group) or a TERM to the host's group is the
    # host's to handle: it finishes what runs, then stops its workers. A host that is gone
    # ends them all the same: their pipe closes.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s (worker): %(message)s")
    for name, level in levels.items():
        logging.getLogger(name or None).setLevel(level)
    try:
        app = _load_app(app_reference)
        activities = discover(app).activities
        routes = {function.name: function for function in http_functions(app)}
    except BaseException as error:
        connection.send(RuntimeError(f"the worker could not load the app: {error!r}"))
        return
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, name="worker-event-loop", daemon=True).start()
    connection.send("ready")
    send = threading.Lock()

    def answer(call_id: int, result: ActivityOutcome | AppResponse | str) -> None:
        with send:
            connection.send((call_id, result))

    def run(call_id: int, call: ActivityCall | HttpCall) -> None:
        try:
            if isinstance(call, HttpCall):
                answer(call_id, _serve_http(routes, call, loop))
            else:
                answer(call_id, _run_activity(activities, call, loop))
        except BaseException as error:  # sys.exit() in a function: still an answer
            answer(call_id, type(error).__name__)

    async def serve_on_loop(call_id: int, function: HttpFunction, call: HttpCall) -> None:
        result = await _serve_http_async(function, call)
        # A large answer is written off the loop, which other invocations share.
        await asyncio.to_thread(answer, call_id, result)

    pool = ThreadPoolExecutor(threads, thread_name_prefix="worker-invocation")
    on_loop: set[Future[None]] = set()
    try:
        while (message := connection.recv()) is not None:
            call_id, call = message
            function = routes.get(call.function_name) if isinstance(call, HttpCall) else None
            if function is not None and is_async(function):
                # As the worker runs async functions: on its loop, holding no thread meanwhile.
                running = asyncio.run_coroutine_threadsafe(
                    serve_on_loop(call_id, function, call), loop
                )
                on_loop.add(running)
                running.add_done_callback(on_loop.discard)
            else:
                pool.submit(run, call_id, call)
    except (EOFError, OSError):  # the host is gone: nobody is left to answer
        os._exit(0)
    pool.shutdown(wait=True)
    wait(list(on_loop), timeout=10)
    close_durable_session(loop)


def _run_activity(
    activities: dict[str, DurableFunction], call: ActivityCall, loop: asyncio.AbstractEventLoop
) -> ActivityOutcome:
    activity = activities.get(call.name.lower())
    if activity is None:
        return ActivityOutcome(
            error_message=f"The function '{call.name}' doesn't exist, is disabled, or is not "
            "an activity function."
        )
    return call_activity(
        activity,
        call.input_json,
        call.client_binding,
        lambda coroutine: asyncio.run_coroutine_threadsafe(coroutine, loop).result(),
    )


def _serve_http(
    routes: dict[str, HttpFunction], call: HttpCall, loop: asyncio.AbstractEventLoop
) -> AppResponse | str:
    """The function's response, or the type name of what it raised (logged here, where its
    traceback is)."""
    function = routes.get(call.function_name)
    if function is None:  # the host and its workers index the same app
        return "FunctionNotFound"
    try:
        return call_http(function, call, loop)
    except FunctionFailed as failed:
        return _failed(call, failed)


async def _serve_http_async(function: HttpFunction, call: HttpCall) -> AppResponse | str:
    try:
        return await call_http_async(function, call)
    except FunctionFailed as failed:
        return _failed(call, failed)
    except BaseException as error:  # not let out: it would stop the worker's event loop
        return type(error).__name__


def _failed(call: HttpCall, failed: FunctionFailed) -> str:
    # The path only: the query may carry a key (`?code=`).
    log.error("%s %s failed", call.method, urlsplit(call.url).path, exc_info=failed.__cause__)
    return failed.error_type
