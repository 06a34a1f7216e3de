"""Builders for the history events the Durable extension sends to a Python orchestrator.

Field names and numbers follow DTFx's JSON serialisation, which the SDK reads
(`azure.durable_functions.models.history.HistoryEvent`).
"""

import json
from datetime import UTC, datetime
from enum import IntEnum
from typing import Any

HistoryEvent = dict[str, Any]

# DTFx numbers only the events that start a task (with the orchestrator's sequence number).
NO_EVENT_ID = -1


class EventType(IntEnum):
    """DTFx history event numbers (the SDK's HistoryEventType)."""

    EXECUTION_STARTED = 0
    EXECUTION_COMPLETED = 1
    EXECUTION_TERMINATED = 3
    TASK_SCHEDULED = 4
    TASK_COMPLETED = 5
    TASK_FAILED = 6
    TIMER_CREATED = 10
    TIMER_FIRED = 11
    ORCHESTRATOR_STARTED = 12
    ORCHESTRATOR_COMPLETED = 13
    EVENT_SENT = 14
    EVENT_RAISED = 15
    CONTINUE_AS_NEW = 16


def format_timestamp(moment: datetime) -> str:
    """ISO 8601 in UTC with microseconds and a `Z`, as the SDK writes `fireAt`."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_timestamp(text: str) -> datetime:
    """Parse an ISO 8601 timestamp into an aware UTC datetime (naive counts as UTC)."""
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _event(
    event_type: EventType, at: datetime, fields: dict[str, Any], event_id: int = NO_EVENT_ID
) -> HistoryEvent:
    # IsPlayed is recomputed per orchestrator call (see DurableHost), False is the fresh value.
    return {
        "EventType": int(event_type),
        "EventId": event_id,
        "IsPlayed": False,
        "Timestamp": format_timestamp(at),
        **fields,
    }


def orchestrator_started(at: datetime) -> HistoryEvent:
    """Opens every orchestrator call; its Timestamp is `context.current_utc_datetime`."""
    return _event(EventType.ORCHESTRATOR_STARTED, at, {})


def orchestrator_completed(at: datetime) -> HistoryEvent:
    """Closes an orchestrator call."""
    return _event(EventType.ORCHESTRATOR_COMPLETED, at, {})


def execution_started(
    at: datetime,
    *,
    name: str,
    version: str,
    input_json: str | None,
    instance_id: str,
    execution_id: str,
) -> HistoryEvent:
    """First event of an execution; SDK 1.7 reads `Version` from it, so it must be present."""
    return _event(
        EventType.EXECUTION_STARTED,
        at,
        {
            "Name": name,
            "Version": version,
            "Input": input_json,
            "OrchestrationInstance": {"InstanceId": instance_id, "ExecutionId": execution_id},
            "ParentInstance": None,
            "Tags": None,
        },
    )


def task_scheduled(
    at: datetime, *, event_id: int, name: str, input_json: str | None
) -> HistoryEvent:
    """An activity call was scheduled with sequence number `event_id`."""
    return _event(
        EventType.TASK_SCHEDULED, at, {"Name": name, "Version": "", "Input": input_json}, event_id
    )


def task_completed(at: datetime, *, task_scheduled_id: int, result_json: str) -> HistoryEvent:
    """An activity returned; `Result` is its JSON-encoded return value."""
    return _event(
        EventType.TASK_COMPLETED, at, {"TaskScheduledId": task_scheduled_id, "Result": result_json}
    )


def task_failed(at: datetime, *, task_scheduled_id: int, reason: str, details: str) -> HistoryEvent:
    """An activity raised; the orchestrator sees `Exception(f"{Reason} \\n {Details}")`."""
    return _event(
        EventType.TASK_FAILED,
        at,
        {"TaskScheduledId": task_scheduled_id, "Reason": reason, "Details": details},
    )


def timer_created(at: datetime, *, event_id: int, fire_at: datetime) -> HistoryEvent:
    """A durable timer was created with sequence number `event_id`."""
    return _event(EventType.TIMER_CREATED, at, {"FireAt": format_timestamp(fire_at)}, event_id)


def timer_fired(at: datetime, *, timer_id: int, fire_at: datetime) -> HistoryEvent:
    """A durable timer fired."""
    return _event(
        EventType.TIMER_FIRED, at, {"TimerId": timer_id, "FireAt": format_timestamp(fire_at)}
    )


def event_raised(at: datetime, *, name: str, input_json: str | None) -> HistoryEvent:
    """An external event, or an entity's answer to a call (Name is then the request id)."""
    return _event(EventType.EVENT_RAISED, at, {"Name": name, "Input": input_json})


def event_sent(
    at: datetime, *, event_id: int, target_instance_id: str, name: str, input_json: str
) -> HistoryEvent:
    """A message to an entity (`@name@key`); the SDK maps a call's request id from `Input`."""
    return _event(
        EventType.EVENT_SENT,
        at,
        {"InstanceId": target_instance_id, "Name": name, "Input": input_json},
        event_id,
    )


def execution_completed(at: datetime, *, status: str, result: str | None) -> HistoryEvent:
    """The execution ended (Completed or Failed)."""
    return _event(
        EventType.EXECUTION_COMPLETED, at, {"OrchestrationStatus": status, "Result": result}
    )


def execution_terminated(at: datetime, *, reason: str) -> HistoryEvent:
    """A terminate message was processed."""
    return _event(EventType.EXECUTION_TERMINATED, at, {"Input": reason})


def continued_as_new(at: datetime, *, input_json: str | None) -> HistoryEvent:
    """Last event of an execution that called `continue_as_new`."""
    return _event(
        EventType.CONTINUE_AS_NEW,
        at,
        {"OrchestrationStatus": "ContinuedAsNew", "Result": input_json},
    )


def entity_request(
    *,
    operation: str,
    input_json: str | None,
    request_id: str,
    is_signal: bool,
    parent_instance_id: str,
    parent_execution_id: str,
) -> str:
    """The request message JSON an EventSent carries; the SDK reads only its `id`."""
    message: dict[str, Any] = {"op": operation, "id": request_id, "parent": parent_instance_id}
    if is_signal:
        message["signal"] = True
    if input_json is not None:
        message["input"] = input_json
    message["parentExecution"] = parent_execution_id
    return json.dumps(message)
