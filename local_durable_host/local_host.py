"""The app on this machine without Core Tools: the engine on the wall clock, its state on disk,
the app's HTTP routes on a loopback port, its timer triggers at their schedules."""

import fcntl
import logging
import os
import threading
from datetime import timedelta
from pathlib import Path
from types import TracebackType
from typing import IO, Self

import azure.functions as func

from local_durable_host.app_server import AppServer, Keys
from local_durable_host.engine import DurableHost
from local_durable_host.timer_triggers import TimerTriggers
from local_durable_host.worker_processes import WorkerProcesses

STATE_FILE_NAME = "durable-state.sqlite3"
# What hosts before the SQLite store saved: refused, not silently left behind.
OLD_STATE_FILE_NAME = "durable-state.pickle"
# Activities at once: an http.call waits on its target, and the others should not wait on it.
ACTIVITY_WORKERS = 32
# Python worker processes for HTTP functions and activities (0: in the host's own process). The
# Functions
# host starts 1 by default; 2 drained a 1,000-job burst fastest here (docs/local-development.md).
WORKER_PROCESSES = 2
RETENTION = timedelta(hours=72)
TASK_HUB = "LocalDurableHost"
log = logging.getLogger(__name__)


class LocalHost:
    """Starts on construction; `close()` (or leaving the `with`) stops it, state kept."""

    def __init__(
        self,
        app: func.FunctionRegister,
        state_dir: Path,
        keys: Keys,
        port: int,
        *,
        activity_workers: int = ACTIVITY_WORKERS,
        retention: timedelta = RETENTION,
        activity_start_delay: timedelta = timedelta(0),
        worker_processes: int = 0,
        app_reference: str = "function_app",
    ) -> None:
        """`retention`: finished orchestrations older than this are purged (at start, then
        every few minutes); `activity_start_delay`: see DurableHost; `worker_processes` > 0
        runs HTTP functions and activities in that many Python worker processes, each importing
        `app_reference` (worker_processes.py), 0 in this process."""
        # Two hosts on one state folder would run each other's activities and overwrite each
        # other's saves: the second one stops here, before it loads anything.
        self._lock_file = _lock(state_dir)
        workers = None
        try:
            _refuse_old_state(state_dir)
            if worker_processes:
                workers = WorkerProcesses(app_reference, worker_processes, activity_workers)
            self.engine = DurableHost(
                app,
                None,
                task_hub_name=TASK_HUB,
                activity_workers=activity_workers,
                state_path=state_dir / STATE_FILE_NAME,
                retention=retention,
                activity_start_delay=activity_start_delay,
                worker_processes=workers,
            )
        except BaseException:
            if workers is not None:
                workers.close()
            self._lock_file.close()
            raise
        try:
            # Bound before anything runs: a taken port stops the host with nothing done.
            self.server = AppServer(app, self.engine.client_binding, keys, port, workers=workers)
        except BaseException:
            self.engine.close()
            self._lock_file.close()
            raise
        # Async activities (one that raises an event through the durable client) on the
        # app's one loop, as in the worker: the SDK's HTTP session belongs to that loop.
        self.engine.run_async = self.server.run_async
        self._stop = threading.Event()
        self._processing = threading.Thread(
            target=self.engine.serve,
            args=(self._stop,),
            kwargs={"on_error": _stop_the_process},
            name="durable-engine",
            daemon=True,
        )
        self._processing.start()
        self.timers = TimerTriggers(
            app, self.engine.client_binding, self.server.run_async, self.engine.now()
        )
        self._timer_thread = threading.Thread(
            target=self._run_timers, name="timer-triggers", daemon=True
        )
        self._timer_thread.start()

    def _run_timers(self) -> None:
        while not self._stop.is_set():
            self.timers.run_due(self.engine.now())
            due = self.timers.next_due()
            wait = 60.0 if due is None else (due - self.engine.now()).total_seconds()
            self._stop.wait(min(max(wait, 0.0), 60.0))

    @property
    def base_url(self) -> str:
        return self.server.base_url

    def close(self) -> None:
        self._stop.set()
        self._timer_thread.join(timeout=10)
        self.server.close()
        self._processing.join(timeout=10)
        self.engine.close()
        self._lock_file.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


class StateInUse(RuntimeError):
    """Another local host runs on the same state folder."""


def _lock(state_dir: Path) -> IO[bytes]:
    state_dir.mkdir(parents=True, exist_ok=True)
    lock_file = (state_dir / "lock").open("wb")
    try:
        fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        lock_file.close()
        raise StateInUse(
            f"another local durable host is running on {state_dir}/: stop it first"
        ) from None
    return lock_file


def _refuse_old_state(state_dir: Path) -> None:
    old = state_dir / OLD_STATE_FILE_NAME
    if old.exists():
        raise ValueError(
            f"{old} was saved by an older version of the local durable host (before its state "
            f"moved to {STATE_FILE_NAME}): delete it, or {state_dir}/, to start empty (the job "
            "store keeps the jobs: the stalled-job repair starts each again once it is 10 "
            "minutes overdue)"
        )


def _stop_the_process(error: BaseException) -> None:
    # A step failed half-way: going on would run, or save, a state that holds half of it.
    # The last save is whole; a restart goes on from there.
    log.critical("the local durable host stopped on an error", exc_info=error)
    os._exit(70)
