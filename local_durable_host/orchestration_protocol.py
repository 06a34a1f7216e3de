"""The extension's side of one orchestrator call: the context JSON it sends, and what it does
with the reply (OutOfProcOrchestrationShim replaying the SDK's actions through DTFx).
"""

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import IntEnum
from typing import Any

from local_durable_host import history as events
from local_durable_host.history import EventType, HistoryEvent
from local_durable_host.mailbox import Mailbox
from local_durable_host.model import RuntimeStatus, UnknownFunctionError, parse_stored_json
from local_durable_host.work import (
    ActivityWork,
    EntityWork,
    InstanceRecord,
    RetryState,
    StartExecution,
)
from local_durable_host.worker_calls import DurableFunctions, OrchestratorReply

# host.json defaults for Azure Storage; the SDK splits longer timers into 3-day pieces.
MAXIMUM_SHORT_TIMER_DURATION = "6.00:00:00"
LONG_RUNNING_TIMER_INTERVAL = "3.00:00:00"


class ActionType(IntEnum):
    """The SDK's action numbers (`models/actions/ActionType.py`) that the stand-in applies."""

    CALL_ACTIVITY = 0
    CALL_ACTIVITY_WITH_RETRY = 1
    CONTINUE_AS_NEW = 4
    CREATE_TIMER = 5
    WAIT_FOR_EXTERNAL_EVENT = 6
    CALL_ENTITY = 7
    SIGNAL_ENTITY = 9
    WHEN_ANY = 11
    WHEN_ALL = 12


def orchestrator_input(instance: InstanceRecord, call_start: int) -> str:
    """The context JSON the extension passes; events before `call_start` are replayed."""
    history = [
        {**event, "IsPlayed": index < call_start} for index, event in enumerate(instance.history)
    ]
    return json.dumps(
        {
            "history": history,
            "input": parse_stored_json(instance.input_json),
            "instanceId": instance.instance_id,
            "isReplaying": call_start > 0,
            "parentInstanceId": None,
            # Schema V3 (upperSchemaVersionNew 2) is what makes the SDK split long timers.
            "upperSchemaVersion": 1,
            "upperSchemaVersionNew": 2,
            "longRunningTimerIntervalDuration": LONG_RUNNING_TIMER_INTERVAL,
            "maximumShortTimerDuration": MAXIMUM_SHORT_TIMER_DURATION,
            "defaultHttpAsyncRequestSleepTimeMillseconds": 30000,
        }
    )


def execution_started(instance: InstanceRecord, now: datetime) -> HistoryEvent:
    """The ExecutionStarted event of the instance's current execution."""
    return events.execution_started(
        now,
        name=instance.name,
        version=instance.version,
        input_json=instance.input_json,
        instance_id=instance.instance_id,
        execution_id=instance.execution_id,
    )


def record_termination(instance: InstanceRecord, reason: str, now: datetime) -> None:
    """Apply a processed terminate message: the instance ends with the reason as its output."""
    instance.history.append(events.orchestrator_started(now))
    instance.history.append(events.execution_terminated(now, reason=reason))
    instance.history.append(events.execution_completed(now, status="Terminated", result=reason))
    instance.history.append(events.orchestrator_completed(now))
    instance.status = RuntimeStatus.TERMINATED
    instance.output_json = reason
    instance.last_updated_time = now
    instance.record_history_length()


@dataclass
class ReplyHandler:
    """Turns one orchestrator reply into history events, queued messages and timers."""

    instance: InstanceRecord
    now: datetime
    mailbox: Mailbox
    functions: DurableFunctions
    # How long a scheduled activity waits in the work-item queue before a worker takes it.
    activity_start_delay: timedelta = timedelta(0)

    def apply(self, new_event: HistoryEvent | None, reply: OrchestratorReply) -> None:
        """`new_event` is the message this call delivered (None for the execution's start)."""
        instance = self.instance
        custom_status = reply.state.get("customStatus")
        if custom_status is not None:
            instance.custom_status_json = json.dumps(custom_status)
        actions = flatten(reply.actions)
        mismatch = replay_mismatch(instance.action_signatures, actions)
        if mismatch and not reply.error:
            self._finish_failed(f"Non-Deterministic workflow detected: {mismatch}")
        else:
            try:
                self._apply_actions(new_event, reply, actions)
            except (UnknownFunctionError, NotImplementedError, ValueError) as error:
                # The extension checks names while replaying the actions; the orchestration
                # fails. An action not emulated here (a sub-orchestration) fails it too.
                self._finish_failed(f"Orchestrator function '{instance.name}' failed: {error}")
        instance.last_updated_time = self.now
        instance.record_history_length()

    def fail(self, message: str) -> None:
        """End the instance as failed without calling its orchestrator."""
        self._finish_failed(message)
        self.instance.last_updated_time = self.now
        self.instance.record_history_length()

    def _apply_actions(
        self,
        new_event: HistoryEvent | None,
        reply: OrchestratorReply,
        actions: list[dict[str, Any]],
    ) -> None:
        instance = self.instance
        self._continue_retry(new_event)
        continue_input: str | None = None
        continues_as_new = False
        for action in actions[len(instance.action_signatures) :]:
            instance.action_signatures.append(signature(action))
            if action["actionType"] == ActionType.CONTINUE_AS_NEW:
                continues_as_new, continue_input = True, action.get("input")
                instance.take_event_id()  # the SDK numbers it too
            else:
                self._schedule(action)
        # Like the extension: schedule what the orchestrator asked for, then end the execution.
        if reply.error:
            self._finish_failed(f"Orchestrator function '{instance.name}' failed: {reply.error}")
        elif continues_as_new:
            self._continue_as_new(continue_input)
        elif reply.is_done:
            self._finish_completed(reply.state.get("output"))
        else:
            instance.history.append(events.orchestrator_completed(self.now))

    def _schedule(self, action: dict[str, Any]) -> None:
        kind = action["actionType"]
        if kind == ActionType.WAIT_FOR_EXTERNAL_EVENT:
            return  # the SDK matches EventRaised by name; nothing is recorded or numbered
        event_id = self.instance.take_event_id()
        if kind in (ActionType.CALL_ACTIVITY, ActionType.CALL_ACTIVITY_WITH_RETRY):
            name, input_json = str(action["functionName"]), action.get("input")
            self._schedule_activity(event_id, name, input_json)
            if kind == ActionType.CALL_ACTIVITY_WITH_RETRY:
                options = action["retryOptions"]
                self.instance.retries[event_id] = RetryState(
                    function_name=name,
                    input_json=input_json,
                    max_attempts=int(options["maxNumberOfAttempts"]),
                    interval=timedelta(milliseconds=options["firstRetryIntervalInMilliseconds"]),
                )
        elif kind == ActionType.CREATE_TIMER:
            self._schedule_timer(event_id, events.parse_timestamp(action["fireAt"]))
        elif kind in (ActionType.CALL_ENTITY, ActionType.SIGNAL_ENTITY):
            self._send_to_entity(event_id, action, is_signal=kind == ActionType.SIGNAL_ENTITY)
        else:
            raise NotImplementedError(f"DurableHost does not emulate action type {kind}: {action}")

    def _schedule_activity(self, event_id: int, name: str, input_json: str | None) -> None:
        if name.lower() not in self.functions.activities:
            raise UnknownFunctionError(
                f"The function '{name}' doesn't exist, is disabled, or is not an activity function."
            )
        instance = self.instance
        instance.history.append(
            events.task_scheduled(self.now, event_id=event_id, name=name, input_json=input_json)
        )
        work = ActivityWork(instance.instance_id, instance.execution_id, event_id, name, input_json)
        if self.activity_start_delay:
            self.mailbox.send_later(work, self.now + self.activity_start_delay)
        else:
            self.mailbox.send(work)

    def _schedule_timer(self, event_id: int, fire_at: datetime) -> None:
        self.instance.history.append(
            events.timer_created(self.now, event_id=event_id, fire_at=fire_at)
        )
        self.mailbox.start_timer(self.instance, event_id, fire_at)

    def _send_to_entity(self, event_id: int, action: dict[str, Any], *, is_signal: bool) -> None:
        instance = self.instance
        name, key = parse_scheduler_id(str(action["instanceId"]))
        if name not in self.functions.entities:
            raise UnknownFunctionError(
                f"The function '{name}' doesn't exist, is disabled, or is not an entity function."
            )
        operation = str(action["operation"])
        # The extension re-serialises the SDK's JSON text as a JSON string; the SDK decodes twice.
        input_json = json.dumps(action.get("input"))
        request_id = str(self.mailbox.new_guid())
        request = events.entity_request(
            operation=operation,
            input_json=input_json,
            request_id=request_id,
            is_signal=is_signal,
            parent_instance_id=instance.instance_id,
            parent_execution_id=instance.execution_id,
        )
        instance.history.append(
            events.event_sent(
                self.now,
                event_id=event_id,
                target_instance_id=f"@{name}@{key}",
                name=operation,
                input_json=request,
            )
        )
        self.mailbox.send(
            EntityWork(
                name,
                key,
                operation,
                input_json,
                is_signal,
                request_id,
                caller_instance_id=instance.instance_id,
                caller_execution_id=instance.execution_id,
            )
        )

    def _continue_retry(self, new_event: HistoryEvent | None) -> None:
        # The SDK numbers a retry's timer and next attempt while handling the event, before
        # the orchestrator code resumes; so they are scheduled before the reply's new actions.
        if new_event is None:
            return
        instance = self.instance
        if new_event["EventType"] == EventType.TASK_FAILED:
            retry = instance.retries.get(new_event["TaskScheduledId"])
            if retry is None:
                return
            # DTFx's RetryInterceptor waits before each next attempt; after the last attempt
            # it still creates a timer, due at once, before the failure reaches the code.
            last = retry.attempts >= retry.max_attempts
            timer_id = instance.take_event_id()
            self._schedule_timer(timer_id, self.now if last else self.now + retry.interval)
            instance.retries[timer_id] = retry
        elif new_event["EventType"] == EventType.TIMER_FIRED:
            retry = instance.retries.get(new_event["TimerId"])
            if retry is None or retry.attempts >= retry.max_attempts:
                return
            retry.attempts += 1
            task_id = instance.take_event_id()
            self._schedule_activity(task_id, retry.function_name, retry.input_json)
            instance.retries[task_id] = retry

    def _finish_completed(self, output: Any) -> None:
        instance = self.instance
        instance.status = RuntimeStatus.COMPLETED
        instance.output_json = None if output is None else json.dumps(output)
        self._end_execution(
            events.execution_completed(self.now, status="Completed", result=instance.output_json)
        )

    def _finish_failed(self, message: str) -> None:
        self.instance.status = RuntimeStatus.FAILED
        self.instance.output_json = message
        self._end_execution(events.execution_completed(self.now, status="Failed", result=message))

    def _continue_as_new(self, sdk_input: str | None) -> None:
        instance = self.instance
        stored_input = json.dumps(sdk_input)  # stored like a client's input: as a JSON string
        self._end_execution(events.continued_as_new(self.now, input_json=stored_input))
        instance.status = RuntimeStatus.CONTINUED_AS_NEW
        instance.input_json = stored_input
        instance.execution_id = self.mailbox.new_guid().hex
        # The new execution starts next: client events still queued reach it, while results
        # and timers addressed to the old execution are dropped.
        self.mailbox.send(StartExecution(instance.instance_id, instance.execution_id), first=True)

    def _end_execution(self, last_event: HistoryEvent) -> None:
        self.instance.history.append(last_event)
        self.instance.history.append(events.orchestrator_completed(self.now))
        self.mailbox.drop_timers(self.instance.execution_id)


def flatten(actions: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """All leaf actions in order; WhenAny/WhenAll only group actions scheduled with them."""
    flat: list[dict[str, Any]] = []

    def visit(action: dict[str, Any]) -> None:
        if action["actionType"] in (ActionType.WHEN_ANY, ActionType.WHEN_ALL):
            for child in action["compoundActions"]:
                visit(child)
        else:
            flat.append(action)

    for group in actions:
        for action in group:
            visit(action)
    return flat


def signature(action: dict[str, Any]) -> str:
    """What replays must reproduce at an action's position: its type and target."""
    target = action.get("functionName") or action.get("externalEventName") or ""
    if "operation" in action:
        target = f"{action.get('instanceId')}:{action['operation']}"
    return f"{ActionType(action['actionType']).name}({target})"


def replay_mismatch(recorded: list[str], actions: list[dict[str, Any]]) -> str | None:
    """Why a reply's actions do not start with what was scheduled before, or None."""
    for index, (before, action) in enumerate(zip(recorded, actions, strict=False)):
        if before != signature(action):
            return f"action {index} was {before}, the replay produced {signature(action)}"
    if len(actions) < len(recorded):
        return f"{len(recorded)} actions were scheduled, the replay produced {len(actions)}"
    return None


def parse_scheduler_id(scheduler_id: str) -> tuple[str, str]:
    """`@name@key` to (lower-cased name, key); the key may itself contain `@`."""
    name, _, key = scheduler_id[1:].partition("@")
    return name.lower(), key
