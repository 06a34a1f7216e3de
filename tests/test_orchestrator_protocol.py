"""schedule_orchestrator driven through the real SDK with the history JSON the host sends."""

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from function_app import app
from scheduling.models import Job, JobResult
from scheduling.registry import CLAIM_RETRY_SECONDS, MAX_CLAIM_TRIES
from scheduling.retry import RetryPolicy
from tests.support import history as events
from tests.support.worker_calls import OrchestratorReply, call_orchestrator, discover

ORCHESTRATOR = discover(app).orchestrators["schedule_orchestrator"]
INSTANCE = "7f1c2a34-0000-4000-8000-000000000001"
T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)

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


def entity_answered(
    episode: Episode,
    at: datetime,
    operation: str,
    answer: str,
    event_id: int,
    *recorded: dict[str, Any],
) -> None:
    """The entity call the last call made (after `recorded`) and the shard's answer to it."""
    request_id = f"{operation}-{event_id}"
    request = events.entity_request(
        operation=operation,
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
            name=operation,
            input_json=request,
        ),
        new=events.event_raised(
            at, name=request_id, input_json=json.dumps({"result": json.dumps(answer)})
        ),
    )


def attempt_result(ok: bool, **outcome: Any) -> str:
    """An activity's result as execute_prompt returns it."""
    result = JobResult(
        transaction_id=INSTANCE,
        prompt_type="log.append",
        ok=ok,
        outcome={"ok": ok, **outcome},
    )
    return result.model_dump_json()


def attempt_done(
    episode: Episode, at: datetime, call: dict[str, Any], event_id: int, result: str
) -> None:
    episode.then(
        at,
        events.task_scheduled(
            at, event_id=event_id, name="execute_prompt", input_json=call["input"]
        ),
        new=events.task_completed(at, task_scheduled_id=event_id, result_json=result),
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
    # Named with its generation, so a message about an earlier job with this id misses.
    assert json.loads(claim["input"]) == {
        "transaction_id": INSTANCE,
        "accepted_at": "2026-12-01T08:00:00Z",
        "exec_at": "2026-12-01T10:00:00Z",
    }

    entity_answered(episode, exec_at, "claim", "claimed", 1)
    call = newest_action(episode.run(), 3)
    assert call["actionType"] == CALL_ACTIVITY
    assert call["functionName"] == "execute_prompt"
    assert json.loads(call["input"]) == {"job": the_job.model_dump(mode="json"), "number": 1}

    result = attempt_result(True)
    attempt_done(episode, exec_at, call, 2, result)
    reply = episode.run()
    assert reply.is_done
    assert reply.state["output"] == json.loads(result)
    signal = newest_action(reply, 4)
    assert signal["actionType"] == SIGNAL_ENTITY
    assert signal["instanceId"] == "@schedule_entity@shard-3"
    assert signal["operation"] == "remove"


def test_a_past_exec_at_fires_at_once() -> None:
    reply = Episode(T0, job(T0 - timedelta(minutes=5))).run()
    assert newest_action(reply, 1)["actionType"] == CALL_ENTITY


def test_a_cancelled_job_completes_without_firing() -> None:
    episode = Episode(T0, job(T0 - timedelta(minutes=5)))
    episode.run()
    entity_answered(episode, T0, "claim", "cancelled", 0)
    reply = episode.run()
    assert reply.is_done
    assert [action["actionType"] for action in actions_of(reply)] == [CALL_ENTITY, SIGNAL_ENTITY]
    assert reply.state["output"]["cancelled"] is True
    assert reply.state["output"]["ok"] is False
    assert reply.state["customStatus"]["phase"] == "cancelled"


def test_a_registration_still_on_its_way_is_waited_for() -> None:
    episode = Episode(T0, job(T0))
    episode.run()
    entity_answered(episode, T0, "claim", "unknown", 0)
    timer = newest_action(episode.run(), 2)
    assert timer["actionType"] == CREATE_TIMER
    retry_at = T0 + timedelta(seconds=CLAIM_RETRY_SECONDS)
    assert datetime.fromisoformat(timer["fireAt"]) == retry_at
    episode.then(
        retry_at,
        events.timer_created(T0, event_id=1, fire_at=retry_at),
        new=events.timer_fired(retry_at, timer_id=1, fire_at=retry_at),
    )
    assert newest_action(episode.run(), 3)["operation"] == "claim"
    entity_answered(episode, retry_at, "claim", "claimed", 2)
    assert newest_action(episode.run(), 4)["actionType"] == CALL_ACTIVITY


def test_a_registration_that_never_arrives_ends_as_a_failure_not_a_cancellation() -> None:
    episode = Episode(T0, job(T0))
    episode.run()
    now, event_id = T0, 0
    for _ in range(MAX_CLAIM_TRIES - 1):
        entity_answered(episode, now, "claim", "unknown", event_id)
        timer = newest_action(episode.run(), event_id + 2)
        fire_at = datetime.fromisoformat(timer["fireAt"])
        episode.then(
            fire_at,
            events.timer_created(now, event_id=event_id + 1, fire_at=fire_at),
            new=events.timer_fired(fire_at, timer_id=event_id + 1, fire_at=fire_at),
        )
        now, event_id = fire_at, event_id + 2
    entity_answered(episode, now, "claim", "unknown", event_id)
    reply = episode.run()
    assert reply.is_done
    assert CALL_ACTIVITY not in [action["actionType"] for action in actions_of(reply)]
    assert reply.state["output"]["cancelled"] is False
    assert reply.state["output"]["outcome"]["error"] == "the job's registration never arrived"
    # A registration still arriving now must stay out: the job is buried, not just dropped.
    bury = actions_of(reply)[-1]
    assert bury["actionType"] == SIGNAL_ENTITY
    assert bury["operation"] == "cancel"


def test_a_failed_activity_still_completes_and_unregisters() -> None:
    episode = Episode(T0, job(T0))
    episode.run()
    entity_answered(episode, T0, "claim", "claimed", 0)
    call = newest_action(episode.run(), 2)
    episode.then(
        T0,
        events.task_scheduled(T0, event_id=1, name="execute_prompt", input_json=call["input"]),
        new=events.task_failed(
            T0,
            task_scheduled_id=1,
            reason="Activity function 'execute_prompt' failed",
            details="ValueError: Authorization=Bearer s3cret",
        ),
    )
    reply = episode.run()
    assert reply.is_done
    assert reply.state["output"]["ok"] is False
    assert reply.state["output"]["attempts"] == 1
    assert "execute_prompt failed" in reply.state["output"]["outcome"]["error"]
    assert "s3cret" not in json.dumps(reply.state["output"])
    assert newest_action(reply, 3)["operation"] == "remove"


def test_a_retryable_failure_releases_waits_claims_and_tries_again() -> None:
    the_job = job(T0).model_copy(
        update={"retry": RetryPolicy(max_attempts=2, initial_delay_seconds=60)}
    )
    episode = Episode(T0, the_job)
    episode.run()
    entity_answered(episode, T0, "claim", "claimed", 0)
    call = newest_action(episode.run(), 2)
    failed = attempt_result(False, retryable=True, retry_after_seconds=120)
    attempt_done(episode, T0, call, 1, failed)
    release = newest_action(episode.run(), 3)
    # Pending again while it waits, so that a delete can cancel it.
    assert release["actionType"] == CALL_ENTITY
    assert release["operation"] == "release"

    entity_answered(episode, T0, "release", "released", 2)
    reply = episode.run()
    timer = newest_action(reply, 4)
    assert timer["actionType"] == CREATE_TIMER
    # Retry-After (120 s) is longer than the backoff (60 s plus at most 10 %): it wins.
    retry_at = T0 + timedelta(seconds=120)
    assert datetime.fromisoformat(timer["fireAt"]) == retry_at
    assert reply.state["customStatus"]["phase"] == "retrying"

    episode.then(
        retry_at,
        events.timer_created(T0, event_id=3, fire_at=retry_at),
        new=events.timer_fired(retry_at, timer_id=3, fire_at=retry_at),
    )
    assert newest_action(episode.run(), 5)["operation"] == "claim"
    entity_answered(episode, retry_at, "claim", "claimed", 4)
    second = newest_action(episode.run(), 6)
    assert second["actionType"] == CALL_ACTIVITY
    assert json.loads(second["input"])["number"] == 2

    attempt_done(episode, retry_at, second, 5, failed)
    reply = episode.run()
    # The policy allows two attempts: the second failure is final.
    assert reply.is_done
    assert newest_action(reply, 7)["operation"] == "remove"
    assert reply.state["customStatus"] == {"phase": "done", "ok": False, "attempts": 2}


def first_attempt_failed_retryably() -> Episode:
    """A job allowed 3 attempts whose first failed with a 503: it now releases its claim."""
    episode = Episode(T0, job(T0).model_copy(update={"retry": RetryPolicy(max_attempts=3)}))
    episode.run()
    entity_answered(episode, T0, "claim", "claimed", 0)
    call = newest_action(episode.run(), 2)
    attempt_done(episode, T0, call, 1, attempt_result(False, retryable=True, error="503"))
    assert newest_action(episode.run(), 3)["operation"] == "release"
    return episode


def test_a_delete_that_met_the_attempt_makes_it_the_last() -> None:
    episode = first_attempt_failed_retryably()
    entity_answered(episode, T0, "release", "cancelled", 2)
    reply = episode.run()
    assert reply.is_done
    assert [action["actionType"] for action in actions_of(reply)].count(CALL_ACTIVITY) == 1
    output = reply.state["output"]
    assert output["cancelled"] is True
    # The attempt that ran is not hidden: its outcome is the job's outcome.
    assert output["outcome"]["error"] == "503"


def test_a_job_cancelled_while_waiting_to_retry_keeps_its_last_outcome() -> None:
    episode = first_attempt_failed_retryably()
    entity_answered(episode, T0, "release", "released", 2)
    timer = newest_action(episode.run(), 4)
    retry_at = datetime.fromisoformat(timer["fireAt"])
    episode.then(
        retry_at,
        events.timer_created(T0, event_id=3, fire_at=retry_at),
        new=events.timer_fired(retry_at, timer_id=3, fire_at=retry_at),
    )
    episode.run()
    entity_answered(episode, retry_at, "claim", "cancelled", 4)
    reply = episode.run()
    assert reply.is_done
    assert [action["actionType"] for action in actions_of(reply)].count(CALL_ACTIVITY) == 1
    assert reply.state["output"]["cancelled"] is True
    assert reply.state["output"]["outcome"]["error"] == "503"


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


def test_a_release_the_shard_fails_ends_the_job_with_its_outcome() -> None:
    episode = first_attempt_failed_retryably()
    request_id = "release-2"
    episode.then(
        T0,
        events.event_sent(
            T0,
            event_id=2,
            target_instance_id="@schedule_entity@shard-3",
            name="release",
            input_json=events.entity_request(
                operation="release",
                input_json=None,
                request_id=request_id,
                is_signal=False,
                parent_instance_id=INSTANCE,
                parent_execution_id="exec-1",
            ),
        ),
        new=events.event_raised(
            T0,
            name=request_id,
            input_json=json.dumps({"result": json.dumps("boom"), "exceptionType": "Error"}),
        ),
    )
    reply = episode.run()
    # No further attempt without the shard's say-so; the attempt's outcome is the result.
    assert reply.is_done
    assert [action["actionType"] for action in actions_of(reply)].count(CALL_ACTIVITY) == 1
    assert reply.state["output"]["outcome"]["error"] == "503"
    assert reply.state["output"]["cancelled"] is False
    assert newest_action(reply, 4)["operation"] == "remove"
