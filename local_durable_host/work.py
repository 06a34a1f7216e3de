"""What the engine works on: an orchestration instance, and the messages and timers queued for it
(the mailbox, mailbox.py, keeps them in order)."""

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from local_durable_host.history import HistoryEvent
from local_durable_host.model import RuntimeStatus


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
    # How often a batch holding it failed to run (the queue message's dequeue count).
    failed_deliveries: int = 0


Work = StartExecution | DeliverEvent | Terminate | ActivityWork | EntityWork


@dataclass(frozen=True)
class Timer:
    """A durable timer waiting for its FireAt."""

    fire_at: datetime
    sequence: int
    instance_id: str
    execution_id: str
    timer_id: int
