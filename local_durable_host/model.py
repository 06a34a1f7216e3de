"""Statuses, snapshots and log records shared by the stand-in's engine and its HTTP API."""

import json
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from local_durable_host.history import HistoryEvent


class RuntimeStatus(StrEnum):
    """Orchestration runtime status names, as the status API spells them."""

    PENDING = "Pending"
    RUNNING = "Running"
    COMPLETED = "Completed"
    CONTINUED_AS_NEW = "ContinuedAsNew"
    FAILED = "Failed"
    TERMINATED = "Terminated"


TERMINAL_STATUSES = frozenset(
    {RuntimeStatus.COMPLETED, RuntimeStatus.FAILED, RuntimeStatus.TERMINATED}
)


class PurgeNonTerminal(StrEnum):
    """What purging a Pending/Running instance does; real backends differ."""

    # Azure Storage: the instance row and history are deleted whatever the status
    # (AzureTableTrackingStore.PurgeInstanceHistoryAsync has no status check). Its queued
    # messages are then dropped on arrival; activity work already queued still runs.
    DELETE = "delete"
    # A backend that only purges finished instances: nothing is deleted, the API answers
    # 200 with instancesDeleted 0 and the instance keeps running.
    KEEP = "keep"


class Delivery(StrEnum):
    """Outcome of a terminate or raise-event request."""

    ACCEPTED = "accepted"
    NOT_FOUND = "not_found"
    GONE = "gone"


class UnknownFunctionError(ValueError):
    """The app has no durable function of that kind and name (the extension answers 400)."""


class InstanceAlreadyExistsError(RuntimeError):
    """Starting an id whose instance is still active (the extension answers 500)."""

    def __init__(self, status: RuntimeStatus) -> None:
        super().__init__(f"An Orchestration instance with the status {status} already exists.")
        self.status = status


def parse_stored_json(text: str | None) -> Any:
    """Decode a stored payload like the extension's ParseToJToken: non-JSON stays a string."""
    if text is None:
        return None
    stripped = text.strip()
    if not stripped:
        return ""
    try:
        return json.loads(stripped)
    except json.JSONDecodeError:
        return stripped


@dataclass(frozen=True)
class InstanceView:
    """A snapshot of one orchestration instance; an episode is one execution (continue-as-new)."""

    instance_id: str
    name: str
    runtime_status: RuntimeStatus
    input_json: str | None
    output_json: str | None
    custom_status_json: str | None
    created_time: datetime
    last_updated_time: datetime
    history: list[HistoryEvent]
    episode_count: int
    max_history_length_per_episode: list[int]

    @property
    def input(self) -> Any:
        """The input as the status API returns it (a JSON string for Python-client starts)."""
        return parse_stored_json(self.input_json)

    @property
    def output(self) -> Any:
        """The returned value, the failure message, or the termination reason."""
        return parse_stored_json(self.output_json)

    @property
    def custom_status(self) -> Any:
        """The last custom status the orchestrator set, or None."""
        return parse_stored_json(self.custom_status_json)


@dataclass(frozen=True)
class EntityView:
    """A snapshot of one entity's stored state."""

    name: str
    key: str
    exists: bool
    state_json: str | None

    @property
    def state(self) -> Any:
        """The decoded state, or None when the entity does not exist."""
        return json.loads(self.state_json) if self.exists and self.state_json else None


@dataclass(frozen=True)
class ClientCall:
    """One request the HTTP API received; `path` is relative to the RPC base URL."""

    method: str
    path: str
    query: dict[str, str]
    body: str | None
    status: int


@dataclass(frozen=True)
class ActivityCall:
    """One activity invocation and its outcome."""

    instance_id: str
    name: str
    input_json: str | None
    at: datetime
    result_json: str | None
    error_message: str | None


@dataclass(frozen=True)
class EntityOperation:
    """One entity operation as processed, in processing order."""

    name: str
    key: str
    operation: str
    input_json: str | None
    is_signal: bool
    caller_instance_id: str | None
    at: datetime
    is_error: bool
    result_json: str | None
