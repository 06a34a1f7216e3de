"""schedule_orchestrator driven through the real SDK with the history JSON the host sends."""

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from function_app import app
from local_durable_host import history as events
from local_durable_host.worker_calls import OrchestratorReply, call_orchestrator, discover
from scheduling.job_record import AttemptReport, JobRun

ORCHESTRATOR = discover(app).orchestrators["schedule_orchestrator"]
INSTANCE = "7f1c2a34-0000-4000-8000-000000000001"
GENERATION = "0f3e9a1c2b4d4e6f8a0b1c2d3e4f5a6b"
T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)

# Action types of the out-of-process protocol (ARCHITECTURE.md).
CALL_ACTIVITY, CONTINUE_AS_NEW, CREATE_TIMER = 0, 4, 5


def job(exec_at: datetime) -> JobRun:
    return JobRun(transaction_id=INSTANCE, generation=GENERATION, exec_at=exec_at)


class Episode:
    """Builds one execution's history the way the extension appends to it."""

    def __init__(self, started: datetime, job: JobRun) -> None:
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


def report(state: str, attempt: int = 1, next_attempt_at: datetime | None = None) -> str:
    """An activity's result as execute_prompt returns it."""
    return AttemptReport.model_validate(
        {"state": state, "attempt": attempt, "next_attempt_at": next_attempt_at}
    ).model_dump_json()


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


def attempt_failed(episode: Episode, at: datetime, call: dict[str, Any], event_id: int) -> None:
    episode.then(
        at,
        events.task_scheduled(
            at, event_id=event_id, name="execute_prompt", input_json=call["input"]
        ),
        new=events.task_failed(
            at,
            task_scheduled_id=event_id,
            reason="Activity function 'execute_prompt' failed:  store unavailable",
            details=json.dumps({"ClassName": "System.Exception", "Message": "store unavailable"}),
        ),
    )


def fired(episode: Episode, exec_at: datetime) -> OrchestratorReply:
    """The first episode's timer fires at exec_at; the reply to that."""
    episode.run()
    episode.then(
        exec_at,
        events.timer_created(T0, event_id=0, fire_at=exec_at),
        new=events.timer_fired(exec_at, timer_id=0, fire_at=exec_at),
    )
    return episode.run()


def test_first_episode_waits_for_exec_at() -> None:
    exec_at = T0 + timedelta(hours=2)
    reply = Episode(T0, job(exec_at)).run()
    assert not reply.is_done
    action = newest_action(reply, 1)
    assert action["actionType"] == CREATE_TIMER
    assert datetime.fromisoformat(action["fireAt"]) == exec_at
    assert reply.state["customStatus"] == {"phase": "waiting", "exec_at": "2026-12-01T10:00:00Z"}


def test_at_exec_at_the_activity_gets_the_job_id_and_attempt_never_a_payload() -> None:
    exec_at = T0 + timedelta(hours=2)
    episode = Episode(T0, job(exec_at))
    call = newest_action(fired(episode, exec_at), 2)
    assert call["actionType"] == CALL_ACTIVITY
    assert call["functionName"] == "execute_prompt"
    assert json.loads(call["input"]) == {
        "transaction_id": INSTANCE,
        "generation": GENERATION,
        "due_at": "2026-12-01T10:00:00Z",
        "attempt": 1,
    }

    attempt_done(episode, exec_at, call, 1, report("succeeded"))
    reply = episode.run()
    assert reply.is_done
    assert reply.state["output"] == {
        "transaction_id": INSTANCE,
        "state": "succeeded",
        "attempts": 1,
    }
    assert reply.state["customStatus"] == {"phase": "done", "state": "succeeded"}


def test_a_past_exec_at_fires_at_once() -> None:
    reply = Episode(T0, job(T0 - timedelta(minutes=5))).run()
    assert newest_action(reply, 1)["actionType"] == CALL_ACTIVITY


@pytest.mark.parametrize("state", ["cancelled", "gone", "failed"])
def test_an_attempt_the_record_refused_or_ended_ends_the_orchestration(state: str) -> None:
    episode = Episode(T0, job(T0))
    call = newest_action(episode.run(), 1)
    attempt_done(episode, T0, call, 0, report(state, attempt=1 if state == "failed" else 0))
    reply = episode.run()
    assert reply.is_done
    assert reply.state["output"]["state"] == state


def test_retrying_waits_until_the_time_the_record_names_then_runs_the_next_attempt() -> None:
    episode = Episode(T0, job(T0))
    call = newest_action(episode.run(), 1)
    retry_at = T0 + timedelta(seconds=95)
    attempt_done(episode, T0, call, 0, report("retrying", 1, retry_at))
    reply = episode.run()
    timer = newest_action(reply, 2)
    assert timer["actionType"] == CREATE_TIMER
    assert datetime.fromisoformat(timer["fireAt"]) == retry_at
    assert reply.state["customStatus"] == {
        "phase": "retrying",
        "attempt": 1,
        "next_attempt_at": "2026-12-01T08:01:35Z",
    }

    episode.then(
        retry_at,
        events.timer_created(T0, event_id=1, fire_at=retry_at),
        new=events.timer_fired(retry_at, timer_id=1, fire_at=retry_at),
    )
    second = newest_action(episode.run(), 3)
    assert second["actionType"] == CALL_ACTIVITY
    assert json.loads(second["input"])["attempt"] == 2


def test_a_failing_activity_is_run_again_forever_in_bounded_episodes() -> None:
    episode = Episode(T0, job(T0))
    call = newest_action(episode.run(), 1)
    attempt_failed(episode, T0, call, 0)
    reply = episode.run()
    timer = newest_action(reply, 2)
    assert timer["actionType"] == CREATE_TIMER
    assert datetime.fromisoformat(timer["fireAt"]) == T0 + timedelta(seconds=15)
    assert not reply.is_done

    now, event_id = T0 + timedelta(seconds=15), 1
    for _ in range(10):
        episode.then(
            now,
            events.timer_created(now, event_id=event_id, fire_at=now),
            new=events.timer_fired(now, timer_id=event_id, fire_at=now),
        )
        again = actions_of(episode.run())[-1]
        assert again["actionType"] == CALL_ACTIVITY
        assert json.loads(again["input"])["attempt"] == 1  # the same attempt, not a new one
        attempt_failed(episode, now, again, event_id + 1)
        event_id += 2
    episode.then(
        now,
        events.timer_created(now, event_id=event_id, fire_at=now),
        new=events.timer_fired(now, timer_id=event_id, fire_at=now),
    )
    last = actions_of(episode.run())[-1]
    attempt_failed(episode, now, last, event_id + 1)
    reply = episode.run()
    # The twelfth failure: not given up, but a fresh episode that remembers the count.
    again = actions_of(reply)[-1]
    assert again["actionType"] == CONTINUE_AS_NEW
    assert json.loads(again["input"])["store_failures"] == 12
    assert json.loads(again["input"])["attempt"] == 1


def test_a_claim_of_another_attempt_number_is_resumed() -> None:
    # An episode that continued as new mid-attempt meets the record's claim of attempt 3.
    episode = Episode(T0, job(T0))
    call = newest_action(episode.run(), 1)
    attempt_done(episode, T0, call, 0, report("firing", attempt=3))
    again = newest_action(episode.run(), 2)
    assert again["actionType"] == CALL_ACTIVITY
    assert json.loads(again["input"])["attempt"] == 3


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
    assert JobRun.model_validate(json.loads(again["input"])) == the_job


def test_a_recurring_jobs_next_run_is_a_new_episode_at_the_time_the_record_names() -> None:
    episode = Episode(T0, job(T0))
    call = newest_action(episode.run(), 1)
    next_run = T0 + timedelta(days=1)
    attempt_done(
        episode,
        T0,
        call,
        0,
        AttemptReport(state="pending", attempt=0, next_run_at=next_run).model_dump_json(),
    )
    reply = episode.run()
    again = newest_action(reply, 2)
    assert again["actionType"] == CONTINUE_AS_NEW
    assert JobRun.model_validate(json.loads(again["input"])) == job(next_run)


def test_replaying_the_same_history_gives_the_same_actions() -> None:
    episode = Episode(T0, job(T0 + timedelta(hours=1)))
    fired(episode, T0 + timedelta(hours=1))
    first, second = episode.run(), episode.run()
    assert first.raw == second.raw
