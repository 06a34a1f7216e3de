"""schedule_orchestrator driven through the real SDK with the history JSON the host sends."""

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from function_app import app
from scheduling.models import Job
from scheduling.retry import RetryPolicy
from tests.support import history as events
from tests.support.worker_calls import OrchestratorReply, call_orchestrator, discover

ORCHESTRATOR = discover(app).orchestrators["schedule_orchestrator"]
INSTANCE = "7f1c2a34-0000-4000-8000-000000000001"
T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
CLAIM_REQUEST = "a1b2c3d4-0000-4000-8000-00000000c1a1"

# Action types of the out-of-process protocol (ARCHITECTURE.md).
CALL_ACTIVITY, CONTINUE_AS_NEW, CREATE_TIMER, CALL_ENTITY, SIGNAL_ENTITY = 0, 4, 5, 7, 9


def job(exec_at: datetime) -> Job:
    return Job(
        transaction_id=INSTANCE,
        exec_at=exec_at,
        prompt_type="log.append",
        payload={"message": "hello"},
        accepted_at=T0,
        registry_shard="shard-3",
    )


class Episode:
    """Builds one execution's history the way the extension appends to it."""

    def __init__(self, started: datetime, job: Job) -> None:
        # The Python client posts the input as a JSON string; the extension stores it as such.
        self.input = json.dumps(job.model_dump(mode="json"))
        self.input_json = json.dumps(self.input)
        self.history = [
            events.orchestrator_started(started),
            events.execution_started(
                started,
                name="schedule_orchestrator",
                version="",
                input_json=self.input_json,
                instance_id=INSTANCE,
                execution_id="exec-1",
            ),
        ]

    def run(self) -> OrchestratorReply:
        context = {
            "history": self.history,
            "input": self.input,
            "instanceId": INSTANCE,
            "isReplaying": False,
            "parentInstanceId": None,
            "upperSchemaVersion": 1,
            "upperSchemaVersionNew": 2,
            "longRunningTimerIntervalDuration": "3.00:00:00",
            "maximumShortTimerDuration": "6.00:00:00",
        }
        return call_orchestrator(ORCHESTRATOR, json.dumps(context))

    def then(self, at: datetime, *recorded: dict[str, Any], new: dict[str, Any]) -> None:
        """Record what the last call did, then a new call at `at` that brings `new`."""
        self.history += [
            *recorded,
            events.orchestrator_completed(at),
            events.orchestrator_started(at),
            new,
        ]


def actions_of(reply: OrchestratorReply) -> list[dict[str, Any]]:
    """Every action of the execution so far: the SDK reports replayed ones again."""
    return [action for group in reply.actions for action in group]


def newest_action(reply: OrchestratorReply, count: int) -> dict[str, Any]:
    """The action the latest call added, checking the execution has `count` in all."""
    actions = actions_of(reply)
    assert len(actions) == count, actions
    return actions[-1]


def claim_answered(
    episode: Episode,
    at: datetime,
    claimed: bool,
    event_id: int,
    *recorded: dict[str, Any],
    request_id: str = CLAIM_REQUEST,
) -> None:
    """The claim the last call sent (after `recorded`) and the shard's answer to it."""
    request = events.entity_request(
        operation="claim",
        input_json=json.dumps(json.dumps({"transaction_id": INSTANCE})),
        request_id=request_id,
        is_signal=False,
        parent_instance_id=INSTANCE,
        parent_execution_id="exec-1",
    )
    episode.then(
        at,
        *recorded,
        events.event_sent(
            at,
            event_id=event_id,
            target_instance_id="@schedule_entity@shard-3",
            name="claim",
            input_json=request,
        ),
        new=events.event_raised(
            at, name=request_id, input_json=json.dumps({"result": json.dumps(claimed)})
        ),
    )


def test_first_episode_waits_for_exec_at() -> None:
    exec_at = T0 + timedelta(hours=2)
    reply = Episode(T0, job(exec_at)).run()
    assert not reply.is_done
    action = newest_action(reply, 1)
    assert action["actionType"] == CREATE_TIMER
    assert datetime.fromisoformat(action["fireAt"]) == exec_at
    assert reply.state["customStatus"] == {"phase": "waiting", "exec_at": "2026-12-01T10:00:00Z"}


def test_fired_timer_claims_then_calls_the_activity_then_unregisters() -> None:
    exec_at = T0 + timedelta(hours=2)
    the_job = job(exec_at)
    episode = Episode(T0, the_job)
    episode.run()

    episode.then(
        exec_at,
        events.timer_created(T0, event_id=0, fire_at=exec_at),
        new=events.timer_fired(exec_at, timer_id=0, fire_at=exec_at),
    )
    claim = newest_action(episode.run(), 2)
    assert claim["actionType"] == CALL_ENTITY
    assert claim["instanceId"] == "@schedule_entity@shard-3"
    assert claim["operation"] == "claim"

    claim_answered(episode, exec_at, claimed=True, event_id=1)
    call = newest_action(episode.run(), 3)
    assert call["actionType"] == CALL_ACTIVITY
    assert call["functionName"] == "execute_prompt"
    assert json.loads(call["input"]) == {"job": the_job.model_dump(mode="json"), "number": 1}

    outcome = {"transaction_id": INSTANCE, "ok": True, "outcome": {"ok": True}}
    episode.then(
        exec_at,
        events.task_scheduled(exec_at, event_id=2, name="execute_prompt", input_json=call["input"]),
        new=events.task_completed(exec_at, task_scheduled_id=2, result_json=json.dumps(outcome)),
    )
    reply = episode.run()
    assert reply.is_done
    assert reply.state["output"] == outcome
    signal = newest_action(reply, 4)
    assert signal["actionType"] == SIGNAL_ENTITY
    assert signal["instanceId"] == "@schedule_entity@shard-3"
    assert signal["operation"] == "remove"


def test_a_past_exec_at_fires_at_once() -> None:
    reply = Episode(T0, job(T0 - timedelta(minutes=5))).run()
    assert newest_action(reply, 1)["actionType"] == CALL_ENTITY


def test_an_unclaimable_job_completes_cancelled_without_firing() -> None:
    episode = Episode(T0, job(T0 - timedelta(minutes=5)))
    episode.run()
    claim_answered(episode, T0, claimed=False, event_id=0)
    reply = episode.run()
    assert reply.is_done
    assert [action["actionType"] for action in actions_of(reply)] == [CALL_ENTITY]
    assert reply.state["output"]["cancelled"] is True
    assert reply.state["output"]["ok"] is False


def test_a_failed_activity_still_completes_and_unregisters() -> None:
    episode = Episode(T0, job(T0))
    episode.run()
    claim_answered(episode, T0, claimed=True, event_id=0)
    call = newest_action(episode.run(), 2)
    episode.then(
        T0,
        events.task_scheduled(T0, event_id=1, name="execute_prompt", input_json=call["input"]),
        new=events.task_failed(
            T0,
            task_scheduled_id=1,
            reason="Activity function 'execute_prompt' failed",
            details="boom",
        ),
    )
    reply = episode.run()
    assert reply.is_done
    assert reply.state["output"]["ok"] is False
    assert "execute_prompt failed" in reply.state["output"]["outcome"]["error"]
    assert newest_action(reply, 3)["operation"] == "remove"


@pytest.mark.parametrize("days", [4, 300])
def test_a_far_job_waits_three_days_then_continues_as_new(days: int) -> None:
    the_job = job(T0 + timedelta(days=days))
    episode = Episode(T0, the_job)
    timer = newest_action(episode.run(), 1)
    assert timer["actionType"] == CREATE_TIMER
    chunk_end = T0 + timedelta(days=3)
    assert datetime.fromisoformat(timer["fireAt"]) == chunk_end

    episode.then(
        chunk_end,
        events.timer_created(T0, event_id=0, fire_at=chunk_end),
        new=events.timer_fired(chunk_end, timer_id=0, fire_at=chunk_end),
    )
    reply = episode.run()
    again = newest_action(reply, 2)
    assert again["actionType"] == CONTINUE_AS_NEW
    assert Job.model_validate(json.loads(again["input"])) == the_job


def test_replaying_the_same_history_gives_the_same_actions() -> None:
    episode = Episode(T0, job(T0 + timedelta(hours=1)))
    episode.run()
    episode.then(
        T0 + timedelta(hours=1),
        events.timer_created(T0, event_id=0, fire_at=T0 + timedelta(hours=1)),
        new=events.timer_fired(
            T0 + timedelta(hours=1), timer_id=0, fire_at=T0 + timedelta(hours=1)
        ),
    )
    first, second = episode.run(), episode.run()
    assert first.raw == second.raw


def test_a_retryable_failure_waits_then_claims_and_tries_again() -> None:
    the_job = job(T0).model_copy(
        update={"retry": RetryPolicy(max_attempts=2, initial_delay_seconds=60)}
    )
    episode = Episode(T0, the_job)
    episode.run()
    claim_answered(episode, T0, claimed=True, event_id=0)
    call = newest_action(episode.run(), 2)
    failed = {"ok": False, "outcome": {"ok": False, "retryable": True, "retry_after_seconds": 120}}
    episode.then(
        T0,
        events.task_scheduled(T0, event_id=1, name="execute_prompt", input_json=call["input"]),
        new=events.task_completed(T0, task_scheduled_id=1, result_json=json.dumps(failed)),
    )
    reply = episode.run()
    release, timer = actions_of(reply)[2:]
    # Pending again while it waits, so that a delete can cancel it.
    assert release["actionType"] == SIGNAL_ENTITY
    assert release["operation"] == "release"
    assert timer["actionType"] == CREATE_TIMER
    # Retry-After (120 s) is longer than the backoff (60 s plus at most 10 %): it wins.
    retry_at = T0 + timedelta(seconds=120)
    assert datetime.fromisoformat(timer["fireAt"]) == retry_at
    assert reply.state["customStatus"]["phase"] == "retrying"

    release_sent = events.event_sent(
        T0,
        event_id=2,
        target_instance_id="@schedule_entity@shard-3",
        name="release",
        input_json=events.entity_request(
            operation="release",
            input_json=None,
            request_id="release-1",
            is_signal=True,
            parent_instance_id=INSTANCE,
            parent_execution_id="exec-1",
        ),
    )
    episode.then(
        retry_at,
        release_sent,
        events.timer_created(T0, event_id=3, fire_at=retry_at),
        new=events.timer_fired(retry_at, timer_id=3, fire_at=retry_at),
    )
    claim_again = newest_action(episode.run(), 5)
    assert claim_again["operation"] == "claim"
    claim_answered(episode, retry_at, True, 4, request_id="claim-2")
    second = newest_action(episode.run(), 6)
    assert second["actionType"] == CALL_ACTIVITY
    assert json.loads(second["input"])["number"] == 2

    episode.then(
        retry_at,
        events.task_scheduled(
            retry_at, event_id=5, name="execute_prompt", input_json=second["input"]
        ),
        new=events.task_completed(retry_at, task_scheduled_id=5, result_json=json.dumps(failed)),
    )
    reply = episode.run()
    # The policy allows two attempts: the second failure is final.
    assert reply.is_done
    assert newest_action(reply, 7)["operation"] == "remove"
    assert reply.state["customStatus"] == {"phase": "done", "ok": False, "attempts": 2}


def test_a_job_cancelled_while_waiting_to_retry_does_not_try_again() -> None:
    the_job = job(T0).model_copy(update={"retry": RetryPolicy(max_attempts=3)})
    episode = Episode(T0, the_job)
    episode.run()
    claim_answered(episode, T0, claimed=True, event_id=0)
    call = newest_action(episode.run(), 2)
    failed = {"ok": False, "outcome": {"ok": False, "retryable": True}}
    episode.then(
        T0,
        events.task_scheduled(T0, event_id=1, name="execute_prompt", input_json=call["input"]),
        new=events.task_completed(T0, task_scheduled_id=1, result_json=json.dumps(failed)),
    )
    timer = newest_action(episode.run(), 4)
    retry_at = datetime.fromisoformat(timer["fireAt"])
    episode.then(
        retry_at,
        events.timer_created(T0, event_id=3, fire_at=retry_at),
        new=events.timer_fired(retry_at, timer_id=3, fire_at=retry_at),
    )
    episode.run()
    claim_answered(episode, retry_at, False, 4, request_id="claim-2")
    reply = episode.run()
    assert reply.is_done
    assert [action["actionType"] for action in actions_of(reply)].count(CALL_ACTIVITY) == 1
    assert reply.state["output"]["cancelled"] is True
    assert reply.state["output"]["attempts"] == 1
