"""A local stand-in for the Durable Functions extension, for tests and the local host.

`DurableHost(app, ...)` drives the app's own orchestrator, activity and entity functions
with the JSON the extension sends them (worker_calls.py, orchestration_protocol.py), serves
the HTTP API that `DurableOrchestrationClient` calls (extension_api.py) and keeps every
instance's history. Messages are processed one at a time, FIFO.

Two clocks:
- virtual (tests): work happens only inside `run()` / `advance*()` / `step()`, and
  activities run inline, so a test decides every interleaving;
- wall (the local host, local_host.py): `serve()` processes messages as they come and fires
  timers when their time comes; activities run on a thread pool (and, given
  `worker_processes`, in Python worker processes, as on the Functions host, where the app
  server runs the HTTP functions too); with a
  `state_path`, every change is saved (store.py) before it is acknowledged, so a killed host
  resumes where it stopped.

The state is kept in SQLite (store.py; in memory without a `state_path`), written change by
change; live instances are also held in memory, finished ones only in the store, read when
asked for, and purged once they are older than `retention`.

Two switches make it behave as the real host does under failure and delay:
- `fail_entity_invocations(name, key)`: the worker's invocation of an entity batch fails (not
  an operation inside it): nobody is answered, and the batch is delivered again after the
  Azure Storage queue's back-off (TaskEntityShim.ExecuteOutOfProcBatch lets the failed
  invocation raise; DurableTaskExtension.cs's EntityMiddleware records it as an internal
  error and aborts the batch with a SessionAbortedException, nothing of it committed;
  DurableTask.AzureStorage's TaskHubQueue.AbandonMessageAsync hides each message for
  2^dequeueCount seconds, at most 600). An entity function that raises outside its
  operations is handled the same way. (Only a function timeout answers every operation of
  a batch with an error, in ExecuteOutOfProcBatch; function timeouts are not emulated.)
- `activity_start_delay`: an activity waits that long in the work-item queue before a
  worker takes it (DurableTask.AzureStorage queues activities as messages for any worker).

Not emulated: sub-orchestrations, call_http, scheduled signals, suspend/resume/rewind/
restart, listing and purge-by-filter (501); timer lateness from queue polling; message
order that differs from send order across senders (one global FIFO here, but for entity
operations delivered again after a failed batch, which others overtake; where the app's
writers race, the job store's compare-and-swap decides, tested in tests/test_races.py);
payload size limits; the system key check. Activities are delivered at least once, as on
the real host: one that was running when the host was killed runs again after a restart.

Whole at ~1,050 lines: one class, every method of which reads or changes the engine's state
under the same two locks and the commit rule of `_change`; split, that rule would be spread
over files. What needs neither is beside it: mailbox.py (queue and timers), store.py
(SQLite), orchestration_protocol.py (an orchestrator's reply), worker_calls.py (calling the
app's functions), extension_api.py (the client's HTTP API).
"""

import copy
import dataclasses
import json
import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import azure.functions as func

from local_durable_host import history as events
from local_durable_host.extension_api import DurableHttpApi
from local_durable_host.history import EventType, HistoryEvent
from local_durable_host.mailbox import Mailbox, Taken
from local_durable_host.model import (
    TERMINAL_STATUSES,
    ActivityCall,
    ClientCall,
    Delivery,
    EntityOperation,
    EntityView,
    InstanceAlreadyExistsError,
    InstanceView,
    PurgeNonTerminal,
    RuntimeStatus,
    UnknownFunctionError,
)
from local_durable_host.orchestration_protocol import (
    ReplyHandler,
    execution_started,
    orchestrator_input,
    record_termination,
)
from local_durable_host.store import DurableStore, StoreCounts, StoredState
from local_durable_host.work import (
    ActivityWork,
    DeliverEvent,
    EntityWork,
    InstanceRecord,
    StartExecution,
    Terminate,
    Work,
)
from local_durable_host.worker_calls import (
    ActivityOutcome,
    DurableFunction,
    OrchestratorReply,
    call_activity,
    call_entity,
    call_orchestrator,
    discover,
)
from local_durable_host.worker_processes import WorkerProcesses

# While busy, the engine's own steps are saved together at most this far apart.
SAVE_INTERVAL_SECONDS = 0.2
RECENT_CALLS_KEPT = 1000
# How often serve() looks for finished instances past their retention, and how many it
# purges per transaction (so a large purge does not hold up the work for long).
RETENTION_SWEEP_SECONDS = 300.0
PURGE_BATCH = 500
# DurableTask.AzureStorage's TaskHubQueue.AbandonMessageAsync: an abandoned message is hidden
# for 2^dequeueCount seconds, at most 600 (then it is logged as a poison message, and retried).
REDELIVERY_MAX_SECONDS = 600
log = logging.getLogger(__name__)


class NonDeterminismError(AssertionError):
    """Two calls of an orchestrator with the same history returned different replies."""


class EntityInvocationFailed(RuntimeError):
    """The worker's invocation of an entity batch failed (fail_entity_invocations)."""


@dataclass(frozen=True)
class FailedEntityInvocation:
    """A batch whose invocation failed: nobody was answered, each operation comes back later."""

    name: str
    key: str
    operations: tuple[str, ...]
    at: datetime
    error: str
    # When its first operation is delivered again.
    retry_at: datetime


class DurableHost:
    """Runs a `df.DFApp`'s durable functions and serves the extension's HTTP API on 127.0.0.1."""

    def __init__(
        self,
        app: func.FunctionRegister,
        start: datetime | None,
        *,
        purge_non_terminal: PurgeNonTerminal = PurgeNonTerminal.DELETE,
        check_replay_determinism: bool = False,
        task_hub_name: str = "TestHubName",
        max_steps_per_run: int = 10_000,
        activity_workers: int = 0,
        state_path: Path | None = None,
        retention: timedelta | None = None,
        activity_start_delay: timedelta = timedelta(0),
        worker_processes: WorkerProcesses | None = None,
    ) -> None:
        """`start`: the virtual clock's first moment; None runs on the wall clock.

        `activity_workers` > 0 runs activities on a pool of that many threads; on a virtual
        clock (by default activities run inline, so a test decides every interleaving) a test
        opts in to let attempts overlap, and `run()` then waits for them. `state_path` is the
        SQLite file the durable state is saved to after every change, and loaded from now;
        without it, the state is in memory. `retention`: finished instances older than this
        are purged, now and then (purge_expired). `activity_start_delay`: each activity
        starts no earlier than this after it was scheduled, as when it waits in the work-item
        queue; settable later (the attribute of the same name), for activities scheduled then.
        `worker_processes`: where activities run, as the Functions host runs them in its
        language workers (worker_processes.py); None runs them in this process. Closed with
        the host.
        """
        if start is not None and start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        if activity_start_delay < timedelta(0):
            raise ValueError("activity_start_delay must not be negative")
        if retention is not None and retention <= timedelta(0):
            raise ValueError("retention must be positive")
        self.purge_non_terminal = purge_non_terminal
        self.check_replay_determinism = check_replay_determinism
        self.task_hub_name = task_hub_name
        self.retention = retention
        self.activity_start_delay = activity_start_delay
        self._max_steps_per_run = max_steps_per_run
        self._worker_processes = worker_processes
        self._functions = discover(app)
        # Guards all state: the HTTP thread reads and queues while tests drive the processing.
        self._lock = threading.RLock()
        # Held across a whole change (a step taking its work, writing its outcome, a client
        # request, an activity's result) and its save, so a saved state is never half of one.
        self._change_lock = threading.RLock()
        # Held by a step from taking its work to writing its outcome, which are two changes
        # with the app's code between them: close() waits for it.
        self._step_lock = threading.Lock()
        self._closed = False
        self._virtual_now = None if start is None else start.astimezone(UTC)
        self._store = DurableStore(state_path)
        self._durable = state_path is not None
        self._mailbox = Mailbox(self._store)
        # Live instances; a finished one leaves memory once its last change is committed.
        self._instances: dict[str, InstanceRecord] = {}
        self._finished: set[str] = set()
        self._entities: dict[tuple[str, str], EntityView] = {}
        # Running activities (on the pool) by the sequence number of their message.
        self._in_flight: dict[int, ActivityWork] = {}
        # (entity name, key or None for every key) whose batches fail to run.
        self._failing_entities: set[tuple[str, str | None]] = set()
        # What tests inspect; on the wall clock only the latest, or a long-running host's
        # memory would grow with every call it ever made.
        kept = None if start is not None else RECENT_CALLS_KEPT
        self._activity_calls: deque[ActivityCall] = deque(maxlen=kept)
        self._entity_operations: deque[EntityOperation] = deque(maxlen=kept)
        self._discarded: deque[str] = deque(maxlen=kept)
        self._failed_entity_invocations: deque[FailedEntityInvocation] = deque(maxlen=kept)
        self._running = False
        self._wake = threading.Event()
        self._unsaved = False
        self._broken = False
        self._restore(self._store.load())
        self.purge_expired()
        self._activity_pool = (
            ThreadPoolExecutor(activity_workers, thread_name_prefix="durable-activity")
            if activity_workers
            else None
        )
        self._activity_returned = threading.Condition(self._lock)
        self._running_by_name: Counter[str] = Counter()
        self._peak_by_name: Counter[str] = Counter()
        # Where async activities are awaited: the local host sets its app server's loop (the
        # worker runs every async function on one loop); None, a loop of worker_calls' own.
        self.run_async: Callable[[Any], Any] | None = None
        self._http = DurableHttpApi(self, calls_kept=kept)

    def close(self) -> None:
        """Stop the HTTP server, wait for the step in progress and the running activities,
        save what is unsaved; no step runs after."""
        self._http.close()
        with self._step_lock:
            self._closed = True
            if self._activity_pool is not None:
                self._activity_pool.shutdown(wait=True, cancel_futures=True)
            if self._worker_processes is not None:
                self._worker_processes.close()
            try:
                self._save_if_changed()
            finally:
                self._store.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # -- clock and processing --------------------------------------------------------------

    def now(self) -> datetime:
        """The host's time, tz-aware UTC: the virtual clock's, or the wall clock's."""
        with self._lock:
            return self._virtual_now or datetime.now(UTC)

    @property
    def clock(self) -> Callable[[], datetime]:
        """A zero-argument callable returning the host's time, for the app's own code."""
        return self.now

    @property
    def is_virtual(self) -> bool:
        return self._virtual_now is not None

    def run(self) -> None:
        """Process queued messages and due timers until nothing is left; the clock stays put."""
        with self._lock:
            if self._running:
                raise RuntimeError("DurableHost.run() is already running")
            self._running = True
        try:
            for _ in range(self._max_steps_per_run):
                if not self.step():
                    self._save_if_changed()  # idle: what ran is saved, as serve() does
                    return
            raise RuntimeError(
                f"still busy after {self._max_steps_per_run} steps: does an orchestration loop "
                "without waiting for a later time?"
            )
        finally:
            with self._lock:
                self._running = False

    def serve(
        self,
        stop: threading.Event,
        max_idle_seconds: float = 0.5,
        on_error: Callable[[BaseException], None] | None = None,
    ) -> None:
        """Wall clock: process messages and due timers as they come, until `stop` is set.

        A step that raises (a bug here, not in the app: the app's own errors fail its
        instance or task, as on the real host) leaves memory holding half of it: `on_error`
        is told, and processing stops rather than go on, or save, from there.
        """
        if self.is_virtual:
            raise RuntimeError("serve() runs on the wall clock; drive a virtual one with run()")
        try:
            self._serve(stop, max_idle_seconds)
        except BaseException as error:
            self._broken = True
            if on_error is None:
                raise
            on_error(error)

    def _serve(self, stop: threading.Event, max_idle_seconds: float) -> None:
        last_save = time.monotonic()
        next_sweep = time.monotonic() + RETENTION_SWEEP_SECONDS
        while not stop.is_set():
            if time.monotonic() >= next_sweep:
                self.purge_expired()
                next_sweep = time.monotonic() + RETENTION_SWEEP_SECONDS
            if self.step():
                if time.monotonic() - last_save >= SAVE_INTERVAL_SECONDS:
                    self._save_if_changed()
                    last_save = time.monotonic()
                continue
            self._save_if_changed()
            last_save = time.monotonic()
            due = self._next_due()
            wait = max_idle_seconds
            if due is not None:
                wait = min(wait, max((due - self.now()).total_seconds(), 0.0))
            self._wake.wait(wait)
            self._wake.clear()

    def advance(self, seconds: float) -> None:
        """Move the clock forward by `seconds`, firing due timers in order (see advance_to)."""
        self.advance_to(self.now() + timedelta(seconds=seconds))

    def advance_to(self, moment: datetime) -> None:
        """Move the clock to `moment`, stopping at each due timer's FireAt, and at each moment
        a delayed message becomes visible, to run to quiescence."""
        target = moment.astimezone(UTC)
        if target < self.now():
            raise ValueError(f"the virtual clock cannot go back from {self.now()} to {target}")
        self.run()
        while (due := self._next_due()) is not None and due <= target:
            self._move_clock(max(self.now(), due))
            self.run()
        self._move_clock(target)
        self.run()

    def fail_next(self, method: str, path_prefix: str) -> None:
        """The next client request `method path...` (relative to the RPC base) gets a 500."""
        self._http.fail_next(method, path_prefix)

    def seed_entity(self, name: str, key: str, state_json: str) -> None:
        """Preset an entity's stored state, as if many operations had built it (benchmarks)."""
        with self._change(), self._lock:
            self._set_entity(EntityView(name.lower(), key, True, state_json))

    def fail_entity_invocations(self, name: str, key: str | None = None) -> None:
        """From now on, invoking a batch of entity `name` (each key, or only `key`) fails as
        when the worker's invocation itself fails (not an operation inside it, which the SDK
        answers as that operation's error): the extension aborts the batch, so no caller is
        answered and the entity's state stays; each operation is delivered again after the
        queue's back-off (2, 4, 8... seconds by the times it was delivered, at most 600), on
        the virtual clock as a delayed message that advance() reaches. One sender's later
        operations to the entity wait behind its earlier ones, as DTFx's entity message
        sorter keeps them. See failed_entity_invocations."""
        with self._lock:
            self._failing_entities.add((name.lower(), key))

    def heal_entity_invocations(self, name: str, key: str | None = None) -> None:
        """Undo fail_entity_invocations(name, key); with `key` None, for every key of `name`.
        Operations already waiting run when they are delivered again (not at once)."""
        with self._lock:
            self._failing_entities = {
                (failing_name, failing_key)
                for failing_name, failing_key in self._failing_entities
                if failing_name != name.lower() or (key is not None and failing_key != key)
            }

    def set_clock(self, moment: datetime) -> None:
        """Move the clock without processing anything: for races, driven on with step()."""
        if moment < self.now():
            raise ValueError(f"the virtual clock cannot go back from {self.now()} to {moment}")
        self._move_clock(moment)

    def _move_clock(self, moment: datetime) -> None:
        with self._lock:
            if self._virtual_now is None:
                raise RuntimeError("the wall clock cannot be moved")
            self._virtual_now = moment.astimezone(UTC)

    def _next_due(self) -> datetime | None:
        with self._lock:
            return self._mailbox.next_due()

    def step(self) -> bool:
        """Process one queued message (delayed ones queue up once visible), else fire the
        earliest due timer; False when idle.

        For races: e.g. purge or terminate while work of the instance is still queued.
        """
        with self._step_lock:
            return not self._closed and self._step()

    def _step(self) -> bool:
        with self._lock:
            if not len(self._mailbox) and not self._mailbox.has_due(self.now()):
                if self._virtual_now is not None and self._in_flight:
                    # Activities on threads, virtual clock: not idle until they have returned.
                    self._activity_returned.wait()
                    return True
                return False  # idle: nothing to save
        with self._change(save_now=False), self._lock:
            now = self.now()
            self._mailbox.release_due(now)
            taken = self._mailbox.take()
            sequence = None
            if taken is not None:
                sequence, work = taken
                handled = Taken(messages=(sequence,))
            else:
                timer = self._mailbox.take_due_timer(now)
                if timer is None:
                    return False
                fired = events.timer_fired(now, timer_id=timer.timer_id, fire_at=timer.fire_at)
                work = DeliverEvent(timer.instance_id, timer.execution_id, fired)
                handled = Taken(timer=timer.sequence)
        try:
            if isinstance(work, ActivityWork):
                assert sequence is not None
                self._start_activity(sequence, work, handled)
            elif isinstance(work, EntityWork):
                assert sequence is not None
                self._run_entity_batch(sequence, work)
            elif isinstance(work, Terminate):
                self._terminate(work, handled)
            else:
                self._run_orchestrator(work, handled)
        except BaseException:
            # The work left the queue in memory, not in the store: memory no longer matches
            # what a save would write, so nothing is saved from here on.
            self._broken = True
            raise
        return True

    @contextmanager
    def _change(self, *, save_now: bool = True) -> Iterator[None]:
        """One change of the durable state, whole; with a state file, saved before a client
        request is answered (`save_now`), or soon after for the engine's own steps.

        App code never runs inside a change: a step takes its work in one change and writes
        its outcome in another, and what it took stays in the store until then (mailbox.Taken),
        so a client request is not held up by an orchestrator's episode, and a step whose
        outcome is lost to a kill is done again after the restart: an orchestrator replays,
        an activity runs again (at least once, as on the real host).
        """
        if not self._durable:
            yield
            self._commit()  # in memory: nothing to wait for
        else:
            with self._change_lock:
                writes = self._store.writes
                try:
                    yield
                except BaseException:
                    if self._store.writes != writes:
                        # Half a change is in the open transaction: nothing may commit it
                        # (serve() stops the process; the last commit is whole).
                        self._broken = True
                    raise
                self._unsaved = True
                if save_now:
                    self._save_if_changed()
        self._wake.set()

    def _save_if_changed(self) -> None:
        if not self._durable:
            self._commit()
            return
        with self._change_lock:
            if self._broken:
                raise RuntimeError("the engine stopped on an error; its state was not saved")
            if self._unsaved:
                self._commit()
                self._unsaved = False

    def _commit(self) -> None:
        with self._lock:
            self._store.commit()
            # Committed, a finished instance is read from the store from now on.
            for instance_id in self._finished:
                instance = self._instances.get(instance_id)
                if instance is not None and instance.status in TERMINAL_STATUSES:
                    del self._instances[instance_id]
                    self._store.forget(instance_id)
            self._finished.clear()

    def _put(self, instance: InstanceRecord) -> None:
        self._store.put_instance(instance)
        if instance.status in TERMINAL_STATUSES:
            self._finished.add(instance.instance_id)

    def _set_entity(self, entity: EntityView) -> None:
        if entity.exists:
            self._entities[(entity.name, entity.key)] = entity
        else:
            self._entities.pop((entity.name, entity.key), None)
        self._store.put_entity(entity)

    def _restore(self, state: StoredState) -> None:
        for record in state.instances:
            self._instances[record.instance_id] = record
        self._mailbox.restore(state.messages, state.timers, state.counter)
        for entity in state.entities:
            self._entities[(entity.name, entity.key)] = entity
        # Running activities never reported: they are queued again, first.
        for sequence, work in reversed(state.in_flight):
            self._mailbox.send(work, first=True)
            self._store.activity_ended(sequence)
        self._store.commit()

    def purge_expired(self) -> int:
        """Purge the instances that finished (Completed, Failed, Terminated) longer than
        `retention` ago, as a purge request would; never a running one. Returns how many."""
        if self.retention is None:
            return 0
        purged = 0
        while True:
            with self._change(), self._lock:
                expired = self._store.finished_before(self.now() - self.retention, PURGE_BATCH)
                for instance_id in expired:
                    self._instances.pop(instance_id, None)
                    self._finished.discard(instance_id)
                    self._store.delete_instance(instance_id)
            purged += len(expired)
            if len(expired) < PURGE_BATCH:
                if purged:
                    log.info("purged %d instances finished over %s ago", purged, self.retention)
                return purged

    # -- the three kinds of function -------------------------------------------------------

    def _run_orchestrator(self, message: StartExecution | DeliverEvent, handled: Taken) -> None:
        with self._change(save_now=False), self._lock:
            instance = self._target_of(message)
            if instance is None:
                self._mailbox.acknowledge(handled)
                return
            new_event: HistoryEvent | None = None
            if isinstance(message, StartExecution):
                instance.begin_execution()
            else:
                new_event = {**message.event, "Timestamp": events.format_timestamp(self.now())}
            call_start = len(instance.history)
            instance.history.append(events.orchestrator_started(self.now()))
            instance.history.append(new_event or execution_started(instance, self.now()))
            context_json = orchestrator_input(instance, call_start)
            orchestrator = self._functions.orchestrators.get(instance.name.lower())
            execution_id = instance.execution_id
            if orchestrator is None:  # renamed or removed while its instance was running
                self._reply_handler(instance).fail(
                    f"The function '{instance.name}' doesn't exist, is disabled, or is not an "
                    "orchestrator function."
                )
                self._put(instance)
                self._mailbox.acknowledge(handled)
                return
        # App code runs outside the lock, so it may itself call the HTTP API.
        reply = call_orchestrator(orchestrator, context_json)
        if self.check_replay_determinism:
            self._check_same_reply(orchestrator, context_json, reply)
        with self._change(save_now=False), self._lock:
            self._mailbox.acknowledge(handled)
            current = self._instances.get(message.instance_id)
            if current is None or current.execution_id != execution_id:
                self._discard(f"reply of {message.instance_id!r}: purged or replaced meanwhile")
                return
            self._reply_handler(current).apply(new_event, reply)
            self._put(current)

    def _reply_handler(self, instance: InstanceRecord) -> ReplyHandler:
        return ReplyHandler(
            instance, self.now(), self._mailbox, self._functions, self.activity_start_delay
        )

    def _target_of(self, message: StartExecution | DeliverEvent) -> InstanceRecord | None:
        instance = self._instances.get(message.instance_id)
        if instance is None:
            # Not live: finished (in the store only), or unknown.
            stored = self._store.instance_status(message.instance_id)
            if stored is None:
                self._discard(f"{_describe(message)}: no such instance (purged?)")
            elif message.execution_id not in (None, stored[1]):
                self._discard(f"{_describe(message)}: addressed to a finished execution")
            else:
                self._discard(f"{_describe(message)}: the instance is {stored[0]}")
            return None
        if message.execution_id not in (None, instance.execution_id):
            self._discard(f"{_describe(message)}: addressed to a finished execution")
            return None
        if isinstance(message, StartExecution):
            return instance
        if instance.status in TERMINAL_STATUSES:
            self._discard(f"{_describe(message)}: the instance is {instance.status}")
            return None
        if instance.status is RuntimeStatus.PENDING:
            if self._mailbox.has_start_for(instance.instance_id):
                self._mailbox.send(message)  # its start is queued ahead; the event waits for it
            else:
                self._discard(f"{_describe(message)}: the instance never started")
            return None
        return instance

    def _check_same_reply(
        self, orchestrator: DurableFunction, context_json: str, reply: OrchestratorReply
    ) -> None:
        again = call_orchestrator(orchestrator, context_json)
        if (again.raw, again.raised) != (reply.raw, reply.raised):
            raise NonDeterminismError(
                f"orchestrator {orchestrator.durable_name!r} replied differently to the same "
                f"history:\n{reply.raw or reply.raised}\n{again.raw or again.raised}"
            )

    def _terminate(self, message: Terminate, handled: Taken) -> None:
        with self._change(save_now=False), self._lock:
            self._mailbox.acknowledge(handled)
            instance = self._instances.get(message.instance_id)
            if instance is None or instance.status in TERMINAL_STATUSES:
                self._discard(f"{_describe(message)}: the instance is gone or finished")
                return
            record_termination(instance, message.reason, self.now())
            self._mailbox.drop_timers(instance.execution_id)
            self._put(instance)

    def _start_activity(self, sequence: int, work: ActivityWork, handled: Taken) -> None:
        if self._activity_pool is None:
            outcome = self._call_activity(work)
            with self._change(save_now=False), self._lock:
                self._mailbox.acknowledge(handled)
                self._record_activity(work, outcome)
            return
        with self._change(save_now=False), self._lock:
            # From message to running activity, which a restart queues again if it never ended.
            self._mailbox.acknowledge(handled)
            self._in_flight[sequence] = work
            self._store.activity_started(sequence, work)
        self._activity_pool.submit(self._run_activity_on_pool, sequence, work)

    def _run_activity_on_pool(self, sequence: int, work: ActivityWork) -> None:
        name = work.function_name.lower()
        with self._lock:
            self._running_by_name[name] += 1
            self._peak_by_name[name] = max(self._peak_by_name[name], self._running_by_name[name])
        try:
            try:
                outcome = self._call_activity(work)
            finally:
                with self._lock:
                    self._running_by_name[name] -= 1
            with self._change(save_now=False), self._lock:
                self._in_flight.pop(sequence, None)
                self._store.activity_ended(sequence)
                self._record_activity(work, outcome)
        except Exception:
            # Nobody reads a pool thread's exception: say it, or the task waits in silence.
            log.exception("the result of activity %s was not recorded", work.function_name)
        with self._lock:
            self._activity_returned.notify_all()

    def _call_activity(self, work: ActivityWork) -> ActivityOutcome:
        with self._lock:
            activity = self._functions.activities.get(work.function_name.lower())
            client_binding = self.client_binding()
        if activity is None:  # renamed or removed while its task was queued
            return ActivityOutcome(
                error_message=f"The function '{work.function_name}' doesn't exist, is disabled, "
                "or is not an activity function."
            )
        if self._worker_processes is not None:
            return self._worker_processes.call_activity(
                activity.durable_name, work.input_json, client_binding
            )
        return call_activity(activity, work.input_json, client_binding, self.run_async)

    def _record_activity(self, work: ActivityWork, outcome: ActivityOutcome) -> None:
        with self._lock:
            activity = self._functions.activities.get(work.function_name.lower())
            name = activity.durable_name if activity else work.function_name
            now = self.now()
            self._activity_calls.append(
                ActivityCall(
                    instance_id=work.instance_id,
                    name=name,
                    input_json=work.input_json,
                    at=now,
                    result_json=outcome.result_json,
                    error_message=outcome.error_message,
                )
            )
            if outcome.result_json is not None:
                event = events.task_completed(
                    now, task_scheduled_id=work.task_id, result_json=outcome.result_json
                )
            else:
                # The extension cuts the message out of the host's "...\nException: <msg>\nStack:"
                # text and keeps the space after the colon.
                message = f" {outcome.error_message}"
                event = events.task_failed(
                    now,
                    task_scheduled_id=work.task_id,
                    reason=f"Activity function '{name}' failed: {message}",
                    details=json.dumps({"ClassName": "System.Exception", "Message": message}),
                )
            self._mailbox.send(DeliverEvent(work.instance_id, work.execution_id, event))

    def _run_entity_batch(self, first_seq: int, first: EntityWork) -> None:
        with self._change(save_now=False), self._lock:
            batch, handled = self._mailbox.take_entity_batch(first_seq, first)
            if not batch:
                return  # each waits behind an earlier operation of its sender
            entity = self._require_entity(first.name)
            stored = self.entity(first.name, first.key)
            failing = self._fails_invocation(first.name, first.key)
            batch_json = json.dumps(
                {
                    "self": {"name": first.name, "key": first.key},
                    "exists": stored.exists,
                    "state": stored.state_json,
                    "batch": [
                        {"name": w.operation, "input": w.input_json, "isSignal": w.is_signal}
                        for w in batch
                    ],
                }
            )
        try:
            if failing:
                raise EntityInvocationFailed("fail_entity_invocations is on for this entity")
            reply = call_entity(entity, batch_json)
        except Exception as error:
            # The SDK answers an operation's own error; this is the worker's, so the extension
            # aborts the batch (SessionAbortedException) and its messages come back later.
            if not failing:
                log.exception("entity %s@%s failed; its batch comes back", first.name, first.key)
            with self._change(save_now=False), self._lock:
                self._mailbox.acknowledge(handled)
                self._deliver_again(batch, f"{type(error).__name__}: {error}")
            return
        with self._change(save_now=False), self._lock:
            self._mailbox.acknowledge(handled)
            exists = bool(reply["entityExists"])
            self._set_entity(
                EntityView(
                    first.name, first.key, exists, reply.get("entityState") if exists else None
                )
            )
            for work, result in zip(batch, reply["results"], strict=True):
                self._entity_operations.append(
                    EntityOperation(
                        name=work.name,
                        key=work.key,
                        operation=work.operation,
                        input_json=work.input_json,
                        is_signal=work.is_signal,
                        caller_instance_id=work.caller_instance_id,
                        at=self.now(),
                        is_error=bool(result["isError"]),
                        result_json=result.get("result"),
                    )
                )
                if not work.is_signal and work.caller_instance_id is not None:
                    self._answer_entity_call(work, work.caller_instance_id, result)

    def _fails_invocation(self, name: str, key: str) -> bool:
        return bool({(name, None), (name, key)} & self._failing_entities)

    def _deliver_again(self, batch: list[EntityWork], error: str) -> None:
        # Each message is hidden by its own dequeue count (TaskHubQueue.AbandonMessageAsync).
        now = self.now()
        retry_at = []
        for work in batch:
            failures = work.failed_deliveries + 1
            hidden = min(2 ** min(failures, 10), REDELIVERY_MAX_SECONDS)
            visible_at = now + timedelta(seconds=hidden)
            self._mailbox.send_later(
                dataclasses.replace(work, failed_deliveries=failures), visible_at
            )
            retry_at.append(visible_at)
        first = batch[0]
        self._failed_entity_invocations.append(
            FailedEntityInvocation(
                name=first.name,
                key=first.key,
                operations=tuple(w.operation for w in batch),
                at=now,
                error=error,
                retry_at=min(retry_at),
            )
        )

    def _answer_entity_call(
        self, work: EntityWork, caller_instance_id: str, result: dict[str, Any]
    ) -> None:
        # The SDK finds the waiting call by the request id and reads `result`/`exceptionType`.
        response: dict[str, Any] = {"result": result.get("result")}
        if result["isError"]:
            response["exceptionType"] = "Error"
        answer = events.event_raised(
            self.now(), name=work.request_id, input_json=json.dumps(response)
        )
        self._mailbox.send(DeliverEvent(caller_instance_id, work.caller_execution_id, answer))

    def _require_entity(self, name: str) -> DurableFunction:
        entity = self._functions.entities.get(name.lower())
        if entity is None:
            raise UnknownFunctionError(
                f"The function '{name}' doesn't exist, is disabled, or is not an entity function."
            )
        return entity

    # -- client operations (what the HTTP API calls; tests may call them directly) ---------

    def start_instance(
        self, name: str, instance_id: str | None, input_json: str | None, version: str = ""
    ) -> str:
        """Create (or replace a finished) instance and queue its start; returns its id.

        `input_json` is stored as the extension stores it: for the Python client, a JSON
        string holding the JSON text, e.g. `json.dumps(json.dumps(value))`.
        """
        with self._change(), self._lock:
            if name.lower() not in self._functions.orchestrators:
                raise UnknownFunctionError(
                    f"The function '{name}' doesn't exist, is disabled, or is not an "
                    "orchestrator function."
                )
            if not instance_id:
                instance_id = self._mailbox.new_guid().hex
            elif instance_id.startswith("@") or any(
                c in "/\\#?" or ord(c) < 32 for c in instance_id
            ):
                raise ValueError(f"invalid instance id {instance_id!r}")
            existing = self._status_of(instance_id)
            if existing is not None:
                status, execution_id = existing
                if status not in TERMINAL_STATUSES:
                    raise InstanceAlreadyExistsError(status)
                self._mailbox.drop_timers(execution_id)
            instance = InstanceRecord(
                instance_id=instance_id,
                name=name,
                version=version,
                execution_id=self._mailbox.new_guid().hex,
                input_json=input_json,
                created_time=self.now(),
                last_updated_time=self.now(),
            )
            self._instances[instance_id] = instance
            self._put(instance)
            self._mailbox.send(StartExecution(instance_id, instance.execution_id))
            return instance_id

    def purge_instance(self, instance_id: str) -> int | None:
        """Delete an instance's state; None if unknown, else the number deleted (0 or 1)."""
        with self._change(), self._lock:
            existing = self._status_of(instance_id)
            if existing is None:
                return None
            status, execution_id = existing
            if status not in TERMINAL_STATUSES and self.purge_non_terminal is PurgeNonTerminal.KEEP:
                return 0
            self._mailbox.drop_timers(execution_id)
            self._instances.pop(instance_id, None)
            self._finished.discard(instance_id)
            self._store.delete_instance(instance_id)
            return 1

    def request_termination(self, instance_id: str, reason: str) -> Delivery:
        """Queue a terminate message; the instance stays as it is until it is processed."""
        with self._change(), self._lock:
            delivery = self._delivery_to(instance_id)
            if delivery is Delivery.ACCEPTED:
                self._mailbox.send(Terminate(instance_id, reason))
            return delivery

    def raise_event(self, instance_id: str, name: str, input_json: str | None) -> Delivery:
        """Queue an external event for the instance's current execution."""
        with self._change(), self._lock:
            delivery = self._delivery_to(instance_id)
            if delivery is Delivery.ACCEPTED:
                event = events.event_raised(self.now(), name=name, input_json=input_json)
                self._mailbox.send(DeliverEvent(instance_id, None, event))
            return delivery

    def signal_entity(self, name: str, key: str, operation: str, input_json: str | None) -> None:
        """Queue a one-way operation for entity `name` (lower-cased) / `key`."""
        with self._change(), self._lock:
            self._require_entity(name)
            request_id = str(self._mailbox.new_guid())
            self._mailbox.send(
                EntityWork(name.lower(), key, operation, input_json, True, request_id)
            )

    def _delivery_to(self, instance_id: str) -> Delivery:
        existing = self._status_of(instance_id)
        if existing is None:
            return Delivery.NOT_FOUND
        if existing[0] in TERMINAL_STATUSES:
            return Delivery.GONE
        return Delivery.ACCEPTED

    def _status_of(self, instance_id: str) -> tuple[RuntimeStatus, str] | None:
        """(status, execution id) of a live instance, or of a finished one from the store."""
        instance = self._instances.get(instance_id)
        if instance is not None:
            return instance.status, instance.execution_id
        return self._store.instance_status(instance_id)

    # -- HTTP API --------------------------------------------------------------------------

    @property
    def rpc_base_url(self) -> str:
        """`http://127.0.0.1:{port}/durabletask/`, what the SDK client calls."""
        return self._http.rpc_base_url

    def client_binding(self) -> str:
        """The durable client binding JSON the worker passes to a `durable_client_input`."""
        return self._http.client_binding()

    def request(
        self, method: str, path: str, body: str | None = None, content_type: str | None = None
    ) -> tuple[int, Any]:
        """Call the HTTP API in-process (logged like a real request); returns (status, JSON)."""
        return self._http.request(method, path, body, content_type)

    # -- inspection ------------------------------------------------------------------------

    def find_instance(self, instance_id: str) -> InstanceView | None:
        """A snapshot of the instance, or None if it was never started or was purged."""
        with self._lock:
            instance = self._instances.get(instance_id)
            if instance is not None:
                return _view(instance)
        stored = self._store.read_instance(instance_id)
        return None if stored is None else _view(stored)

    def instance(self, instance_id: str) -> InstanceView:
        """A snapshot of the instance; KeyError if unknown or purged."""
        view = self.find_instance(instance_id)
        if view is None:
            raise KeyError(instance_id)
        return view

    def instance_ids(self) -> list[str]:
        """Ids of every instance that exists (not purged), in creation order."""
        return self._store.instance_ids()

    def entity(self, name: str, key: str) -> EntityView:
        """The stored state of entity `name` (case-insensitive) / `key`."""
        with self._lock:
            found = self._entities.get((name.lower(), key))
            return found or EntityView(name.lower(), key, exists=False, state_json=None)

    def entity_state(self, name: str, key: str) -> Any:
        """The decoded state of an existing entity; KeyError if it does not exist."""
        view = self.entity(name, key)
        if not view.exists:
            raise KeyError((name, key))
        return view.state

    @property
    def client_calls(self) -> list[ClientCall]:
        """Every request the HTTP API received, in order."""
        return self._http.client_calls()

    @property
    def activity_calls(self) -> list[ActivityCall]:
        """Every activity invocation, in order."""
        with self._lock:
            return list(self._activity_calls)

    @property
    def entity_operations(self) -> list[EntityOperation]:
        """Every entity operation processed, in order."""
        with self._lock:
            return list(self._entity_operations)

    def peak_concurrent_activities(self, name: str) -> int:
        """The most invocations of activity `name` that ran at once (with activity_workers)."""
        with self._lock:
            return self._peak_by_name[name.lower()]

    @property
    def discarded_messages(self) -> list[str]:
        """Why messages were dropped: their instance was purged, replaced or had finished."""
        with self._lock:
            return list(self._discarded)

    def pending_timers(self) -> list[tuple[str, datetime]]:
        """(instance id, FireAt) of every timer not yet fired, earliest first."""
        with self._lock:
            return [(t.instance_id, t.fire_at) for t in self._mailbox.timers()]

    def queued_message_count(self) -> int:
        """Messages waiting to be processed (not those waiting to become visible)."""
        with self._lock:
            return len(self._mailbox)

    def delayed_messages(self) -> list[tuple[datetime, str]]:
        """(visible at, what) of each message not visible yet, earliest first: activities
        waiting out `activity_start_delay`, entity operations waiting to be delivered again."""
        with self._lock:
            return [(at, _describe_work(work)) for at, work in self._mailbox.delayed()]

    @property
    def failed_entity_invocations(self) -> list[FailedEntityInvocation]:
        """Every entity batch whose invocation failed, in order (fail_entity_invocations)."""
        with self._lock:
            return list(self._failed_entity_invocations)

    def instances_in_memory(self) -> int:
        """How many instances the engine holds in memory: the live ones (finished ones are in
        the store only, once committed)."""
        with self._lock:
            return len(self._instances)

    def storage_counts(self) -> StoreCounts:
        """SQL statements executed and rows changed in the store so far (for tests that
        count what a change writes)."""
        return self._store.counts()

    def _discard(self, why: str) -> None:
        self._discarded.append(why)


def _view(instance: InstanceRecord) -> InstanceView:
    return InstanceView(
        instance_id=instance.instance_id,
        name=instance.name,
        runtime_status=instance.status,
        input_json=instance.input_json,
        output_json=instance.output_json,
        custom_status_json=instance.custom_status_json,
        created_time=instance.created_time,
        last_updated_time=instance.last_updated_time,
        history=copy.deepcopy(instance.history),
        episode_count=instance.episode_count,
        max_history_length_per_episode=list(instance.max_history_lengths),
    )


def _describe_work(work: Work) -> str:
    if isinstance(work, ActivityWork):
        return f"activity {work.function_name} of {work.instance_id!r}"
    if isinstance(work, EntityWork):
        return f"operation {work.operation} of @{work.name}@{work.key}"
    return _describe(work)


def _describe(message: StartExecution | DeliverEvent | Terminate) -> str:
    if isinstance(message, StartExecution):
        return f"start of {message.instance_id!r}"
    if isinstance(message, Terminate):
        return f"terminate of {message.instance_id!r}"
    kind = EventType(message.event["EventType"]).name
    return f"{kind} for {message.instance_id!r}"
