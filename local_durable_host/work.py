"""The stand-in's stored instances, queued messages and pending durable timers."""

import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from local_durable_host.history import HistoryEvent
from local_durable_host.model import RuntimeStatus

_GUID_NAMESPACE = uuid.UUID("5d2c3f4e-8a59-4c1e-9a7b-0d6f1e2a3b4c")


@dataclass
class RetryState:
    """An activity called with retry options, and its attempts so far."""

    function_name: str
    input_json: str | None
    max_attempts: int
    interval: timedelta
    attempts: int = 1


@dataclass
class InstanceRecord:
    """An orchestration instance; an episode is one execution, renewed by continue-as-new."""

    instance_id: str
    name: str
    version: str
    execution_id: str
    input_json: str | None
    created_time: datetime
    status: RuntimeStatus = RuntimeStatus.PENDING
    output_json: str | None = None
    custom_status_json: str | None = None
    last_updated_time: datetime = field(default_factory=lambda: datetime.min.replace(tzinfo=UTC))
    history: list[HistoryEvent] = field(default_factory=list)
    episode_count: int = 0
    max_history_lengths: list[int] = field(default_factory=list)
    # What this execution scheduled so far and the next sequence number: the SDK numbers
    # tasks the same way but never sends the numbers, so both sides must count alike.
    action_signatures: list[str] = field(default_factory=list)
    next_event_id: int = 0
    retries: dict[int, RetryState] = field(default_factory=dict)

    def take_event_id(self) -> int:
        event_id = self.next_event_id
        self.next_event_id += 1
        return event_id

    def begin_execution(self) -> None:
        """Reset what belongs to one execution; the instance's status and ids stay."""
        self.status = RuntimeStatus.RUNNING
        self.history = []
        self.episode_count += 1
        self.max_history_lengths.append(0)
        self.action_signatures = []
        self.next_event_id = 0
        self.retries = {}

    def record_history_length(self) -> None:
        if self.max_history_lengths:
            self.max_history_lengths[-1] = max(self.max_history_lengths[-1], len(self.history))


@dataclass(frozen=True)
class StartExecution:
    """Run the first episode of an execution (ExecutionStarted)."""

    instance_id: str
    execution_id: str


@dataclass(frozen=True)
class DeliverEvent:
    """Hand one history event to an orchestration (one orchestrator call per event)."""

    instance_id: str
    execution_id: str | None  # None: whichever execution is current (client events)
    event: HistoryEvent


@dataclass(frozen=True)
class Terminate:
    """A client's terminate request, applied when processed."""

    instance_id: str
    reason: str


@dataclass(frozen=True)
class ActivityWork:
    """An activity invocation scheduled by an orchestration."""

    instance_id: str
    execution_id: str
    task_id: int
    function_name: str
    input_json: str | None


@dataclass(frozen=True)
class EntityWork:
    """One entity operation; a call (not a signal) answers its caller by request id."""

    name: str
    key: str
    operation: str
    input_json: str | None
    is_signal: bool
    request_id: str
    caller_instance_id: str | None = None
    caller_execution_id: str | None = None


Work = StartExecution | DeliverEvent | Terminate | ActivityWork | EntityWork


@dataclass(frozen=True)
class Timer:
    """A durable timer waiting for the virtual clock."""

    fire_at: datetime
    sequence: int
    instance_id: str
    execution_id: str
    timer_id: int


class Mailbox:
    """Queued messages (one FIFO for everything) and pending durable timers."""

    def __init__(self) -> None:
        self._queue: deque[Work] = deque()
        self._timers: list[Timer] = []
        self._counter = 0

    def __len__(self) -> int:
        return len(self._queue)

    def send(self, work: Work, *, first: bool = False) -> None:
        """Queue at the back, or at the front for what must happen next (continue-as-new)."""
        if first:
            self._queue.appendleft(work)
        else:
            self._queue.append(work)

    def take(self) -> Work | None:
        return self._queue.popleft() if self._queue else None

    def take_entity_batch(self, first: EntityWork) -> list[EntityWork]:
        """`first` and every queued operation for the same entity, in enqueue order."""
        batch, rest = [first], deque[Work]()
        for work in self._queue:
            if isinstance(work, EntityWork) and (work.name, work.key) == (first.name, first.key):
                batch.append(work)
            else:
                rest.append(work)
        self._queue = rest
        return batch

    def has_start_for(self, instance_id: str) -> bool:
        return any(
            isinstance(w, StartExecution) and w.instance_id == instance_id for w in self._queue
        )

    def start_timer(self, instance: InstanceRecord, timer_id: int, fire_at: datetime) -> None:
        self._timers.append(
            Timer(
                fire_at, self._next_number(), instance.instance_id, instance.execution_id, timer_id
            )
        )

    def drop_timers(self, execution_id: str) -> None:
        # A finished execution's timers would be dropped on arrival; drop them now instead.
        self._timers = [t for t in self._timers if t.execution_id != execution_id]

    def due_timer(self, now: datetime) -> Timer | None:
        """The timer take_due_timer(now) would take, left in place."""
        due = [t for t in self._timers if t.fire_at <= now]
        return min(due, key=lambda t: (t.fire_at, t.sequence)) if due else None

    def take_due_timer(self, now: datetime) -> Timer | None:
        """The earliest timer due at `now` (creation order breaks ties), removed."""
        timer = self.due_timer(now)
        if timer is not None:
            self._timers.remove(timer)
        return timer

    def timers(self) -> list[Timer]:
        return sorted(self._timers, key=lambda t: (t.fire_at, t.sequence))

    def new_guid(self) -> uuid.UUID:
        # Deterministic, so two runs of a test see the same ids.
        return uuid.uuid5(_GUID_NAMESPACE, str(self._next_number()))

    def _next_number(self) -> int:
        # A plain int, not itertools.count: the local host pickles the mailbox.
        self._counter += 1
        return self._counter
