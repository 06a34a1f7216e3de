"""schedule_entity driven with the batch JSON the host sends, through the real SDK."""

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from function_app import app
from scheduling.models import Job
from tests.support.worker_calls import call_entity, discover

ENTITY = discover(app).entities["schedule_entity"]
T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def job_json(transaction_id: str, minutes: int = 10) -> dict[str, Any]:
    return Job(
        transaction_id=transaction_id,
        exec_at=T0 + timedelta(minutes=minutes),
        prompt_type="log.append",
        payload={"message": "m"},
        accepted_at=T0,
        registry_shard="shard-1",
    ).model_dump(mode="json")


def operation(name: str, argument: Any, *, signal: bool = True) -> dict[str, Any]:
    # As the extension passes a client's or an orchestration's input: JSON text of JSON text.
    encoded = None if argument is None else json.dumps(json.dumps(argument))
    return {"name": name, "input": encoded, "isSignal": signal}


def run_batch(state: Any, *operations: dict[str, Any]) -> dict[str, Any]:
    batch = {
        "self": {"name": "schedule_entity", "key": "shard-1"},
        "exists": state is not None,
        "state": None if state is None else json.dumps(state),
        "batch": list(operations),
    }
    return call_entity(ENTITY, json.dumps(batch))


def results_of(output: dict[str, Any]) -> list[Any]:
    return [json.loads(result["result"]) for result in output["results"]]


def state_of(output: dict[str, Any]) -> dict[str, Any]:
    state: dict[str, Any] = json.loads(output["entityState"])
    return state


def test_a_batch_of_operations_in_order() -> None:
    output = run_batch(
        None,
        operation("add", {"job": job_json("a", 20)}),
        operation("add", {"job": job_json("b", 10)}),
        operation("add", {"job": job_json("a", 20)}),
        operation("claim", {"transaction_id": "a"}, signal=False),
        operation("list", {}, signal=False),
        operation("remove", {"transaction_id": "a"}),
    )
    added, added_b, added_again, claimed, listed, removed = results_of(output)
    assert (added, added_b, added_again, claimed, removed) == (
        True,
        True,
        False,
        "claimed",
        True,
    )
    assert [entry["transaction_id"] for entry in listed] == ["b", "a"]
    assert [entry["firing"] for entry in listed] == [False, True]
    assert output["entityExists"] is True
    assert list(state_of(output)["jobs"]) == ["b"]
    assert not any(result["isError"] for result in output["results"])


def test_state_carries_over_between_batches() -> None:
    first = run_batch(None, operation("add", {"job": job_json("a")}))
    second = run_batch(
        state_of(first),
        operation(
            "cancel",
            {"request_id": "r1", "jobs": [{"transaction_id": "a"}, {"transaction_id": "zzz"}]},
        ),
    )
    assert results_of(second) == [{"verdicts": {"a": "cancelled", "zzz": "absent"}}]
    state = state_of(second)
    assert state["jobs"] == {}
    assert state["cancellations"]["r1"] == {"verdicts": {"a": "cancelled", "zzz": "absent"}}


def test_a_failing_operation_is_an_error_result_and_the_rest_still_run() -> None:
    output = run_batch(
        None,
        operation("add", {"job": job_json("a")}),
        operation("explode", {}),
        operation("add", {"job": {"transaction_id": "broken"}}),
        operation("claim", {"transaction_id": "a"}, signal=False),
    )
    errors = [result["isError"] for result in output["results"]]
    assert errors == [False, True, True, False]
    assert list(state_of(output)["jobs"]) == ["a"]
    assert state_of(output)["jobs"]["a"]["firing"] is True


def test_an_operation_without_input_does_not_break_the_shard() -> None:
    # A client signal with an empty input arrives as null, which the SDK cannot decode.
    start = state_of(run_batch(None, operation("add", {"job": job_json("a")})))
    output = run_batch(start, operation("reset", None), operation("list", None, signal=False))
    reset_count, listed = results_of(output)
    assert reset_count == 1
    assert listed == []
    assert len(state_of(output)["tombstones"]) == 1
