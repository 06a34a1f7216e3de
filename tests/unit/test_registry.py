import os
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from scheduling.models import Job
from scheduling.registry import (
    KEPT_CANCELLATIONS,
    RegistryState,
    UnknownOperation,
    add,
    all_shards,
    apply_operation,
    cancel,
    claim,
    listing,
    release,
    remove,
    reset,
    shard_for,
)

T0 = datetime(2026, 12, 1, tzinfo=UTC)


def job(transaction_id: str, minutes: int = 0) -> Job:
    return Job(
        transaction_id=transaction_id,
        exec_at=T0 + timedelta(minutes=minutes),
        prompt_type="log.append",
        payload={"message": "hi"},
        accepted_at=T0 - timedelta(days=1),
        registry_shard="shard-0",
    )


def test_add_is_idempotent() -> None:
    state, added = add(RegistryState(), job("a"))
    again, added_again = add(state, job("a"))
    assert added
    assert not added_again
    assert again == state
    assert list(state.jobs) == ["a"]


def test_remove_is_idempotent() -> None:
    state, _ = add(RegistryState(), job("a"))
    state, removed = remove(state, "a")
    state, removed_again = remove(state, "a")
    assert removed
    assert not removed_again
    assert state.jobs == {}


def test_claim_only_registered_jobs() -> None:
    state, _ = add(RegistryState(), job("a"))
    state, claimed = claim(state, "a")
    assert claimed
    assert state.jobs["a"]["firing"]
    state, claimed_again = claim(state, "a")
    assert claimed_again
    _, claimed_missing = claim(state, "gone")
    assert not claimed_missing


def test_claim_after_remove_fails() -> None:
    state, _ = add(RegistryState(), job("a"))
    state, _ = remove(state, "a")
    _, claimed = claim(state, "a")
    assert not claimed


def test_cancel_drops_pending_jobs_but_not_firing_ones() -> None:
    state = RegistryState()
    for name in "abc":
        state, _ = add(state, job(name))
    state, _ = claim(state, "b")
    state, answer = cancel(state, "req-1", ["a", "b", "zzz"])
    assert answer.verdicts == {"a": "cancelled", "b": "firing", "zzz": "absent"}
    assert sorted(state.jobs) == ["b", "c"]
    _, claimed = claim(state, "a")
    assert not claimed


def test_cancel_answers_a_repeated_request_the_same() -> None:
    state, _ = add(RegistryState(), job("a"))
    state, first = cancel(state, "req-1", ["a"])
    state, again = cancel(state, "req-1", ["a"])
    assert first == again
    assert again.verdicts == {"a": "cancelled"}


def test_cancel_keeps_a_bounded_memory_of_answers() -> None:
    state = RegistryState()
    for index in range(KEPT_CANCELLATIONS + 10):
        state, _ = cancel(state, f"req-{index}", [])
    assert len(state.cancellations) == KEPT_CANCELLATIONS
    assert f"req-{KEPT_CANCELLATIONS + 9}" in state.cancellations
    assert "req-0" not in state.cancellations


def test_release_makes_a_job_cancellable_between_attempts() -> None:
    state, _ = add(RegistryState(), job("a"))
    state, _ = claim(state, "a")
    _, answer = cancel(state, "req-1", ["a"])
    assert answer.verdicts == {"a": "firing"}
    state, released = release(state, "a")
    assert released
    state, answer = cancel(state, "req-2", ["a"])
    assert answer.verdicts == {"a": "cancelled"}
    _, claimed = claim(state, "a")
    assert not claimed


def test_apply_operation_round_trips_through_json() -> None:
    state = RegistryState()
    state, added = apply_operation(state, "add", {"job": job("a").model_dump(mode="json")})
    assert added is True
    state = RegistryState.model_validate(state.model_dump(mode="json"))
    assert list(state.jobs) == ["a"]
    state, claimed = apply_operation(state, "claim", {"transaction_id": "a"})
    assert claimed is True
    state, released = apply_operation(state, "release", {"transaction_id": "a"})
    assert released is True
    state, answer = apply_operation(state, "cancel", {"request_id": "r", "transaction_ids": ["a"]})
    assert answer == {"verdicts": {"a": "cancelled"}}
    state, removed = apply_operation(state, "remove", {"transaction_id": "a"})
    assert removed is False
    with pytest.raises(UnknownOperation):
        apply_operation(state, "explode", None)


def test_shard_choice_is_stable_and_spread() -> None:
    # Fixed expectations: a change to the hash would strand every existing job's entry.
    assert shard_for("job-1", 16) == "shard-10"
    assert shard_for("job-2", 16) == "shard-9"
    counts = Counter(shard_for(f"job-{index}", 16) for index in range(1600))
    assert set(counts) == set(all_shards(16))
    assert max(counts.values()) < 150


@pytest.mark.parametrize("seed", ["1", "2"])
def test_shard_choice_does_not_depend_on_the_process(seed: str) -> None:
    code = "from scheduling.registry import shard_for; print(shard_for('job-1', 16))"
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONHASHSEED": seed},
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip() == "shard-10"


def test_reset_forgets_all_but_firing_jobs() -> None:
    state = RegistryState()
    for name in "abc":
        state, _ = add(state, job(name))
    state, _ = claim(state, "b")
    state, count = reset(state)
    assert count == 2
    assert list(state.jobs) == ["b"]
    state, again = reset(state)
    assert again == 0


def test_listing_is_in_exec_at_then_id_order() -> None:
    state = RegistryState()
    for name, minutes in [("c", 5), ("b", 1), ("a", 5), ("d", 0)]:
        state, _ = add(state, job(name, minutes))
    assert [entry["transaction_id"] for entry in listing(state)] == ["d", "b", "a", "c"]
