import os
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from scheduling.models import Job
from scheduling.registry import (
    KEPT_CANCELLATIONS,
    KEPT_TOMBSTONES,
    JobRef,
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
from scheduling.timing import format_utc

T0 = datetime(2026, 12, 1, tzinfo=UTC)
ACCEPTED = T0 - timedelta(days=1)


def job(transaction_id: str, minutes: int = 0, accepted: datetime = ACCEPTED) -> Job:
    return Job(
        transaction_id=transaction_id,
        exec_at=T0 + timedelta(minutes=minutes),
        prompt_type="log.append",
        payload={"message": "hi"},
        accepted_at=accepted,
        registry_shard="shard-0",
    )


def ref(transaction_id: str, accepted: datetime = ACCEPTED) -> JobRef:
    return JobRef(transaction_id=transaction_id, accepted_at=format_utc(accepted))


def registry_of(*names: str) -> RegistryState:
    state = RegistryState()
    for name in names:
        state, _ = add(state, job(name))
    return state


def test_add_is_idempotent() -> None:
    state, added = add(RegistryState(), job("a"))
    again, added_again = add(state, job("a"))
    assert added
    assert not added_again
    assert again == state
    assert list(state.jobs) == ["a"]


def test_remove_is_idempotent_and_generation_scoped() -> None:
    state = registry_of("a")
    same_id_newer_job = ref("a", ACCEPTED + timedelta(hours=1))
    state, removed = remove(state, same_id_newer_job)
    assert not removed
    state, removed = remove(state, ref("a"))
    state, removed_again = remove(state, ref("a"))
    assert removed
    assert not removed_again
    assert state.jobs == {}


def test_claim_answers() -> None:
    state = registry_of("a")
    state, answer = claim(state, ref("a"))
    assert answer == "claimed"
    assert state.jobs["a"]["firing"]
    state, again = claim(state, ref("a"))
    assert again == "claimed"
    # No registration yet, and not cancelled: it may still be on its way.
    _, unknown = claim(state, ref("late"))
    assert unknown == "unknown"


def test_cancel_drops_pending_jobs_and_marks_firing_ones_last() -> None:
    state = registry_of("a", "b", "c")
    state, _ = claim(state, ref("b"))
    state, answer = cancel(state, "req-1", [ref("a"), ref("b"), ref("zzz")])
    assert answer.verdicts == {"a": "cancelled", "b": "firing", "zzz": "absent"}
    assert sorted(state.jobs) == ["b", "c"]
    assert state.jobs["b"]["cancel_requested"]
    _, claimed = claim(state, ref("a"))
    assert claimed == "cancelled"


def test_a_registration_arriving_after_its_cancel_stays_out() -> None:
    # The API's add and a delete's cancel come from different senders: no order is promised.
    state, answer = cancel(RegistryState(), "req-1", [ref("a")])
    assert answer.verdicts == {"a": "absent"}
    state, added = add(state, job("a"))
    assert not added
    _, claimed = claim(state, ref("a"))
    assert claimed == "cancelled"


def test_a_new_job_with_a_cancelled_jobs_id_is_not_buried() -> None:
    # An Idempotency-Key reused after a delete: same id, new generation.
    state, _ = cancel(registry_of("a"), "req-1", [ref("a")])
    newer = ACCEPTED + timedelta(hours=1)
    state, added = add(state, job("a", accepted=newer))
    assert added
    _, claimed = claim(state, ref("a", newer))
    assert claimed == "claimed"


def test_an_entry_of_another_generation_gives_way() -> None:
    # Two creates raced with one Idempotency-Key; the winner's registration must stand.
    newer = ACCEPTED + timedelta(seconds=1)
    state, added = add(registry_of("a"), job("a", accepted=newer))
    assert added
    assert state.jobs["a"]["accepted_at"] == format_utc(newer)
    _, unknown = claim(state, ref("a"))
    assert unknown == "unknown"


def test_a_keyed_race_loser_that_buries_itself_cannot_displace_the_winner() -> None:
    winner, loser = ref("a", ACCEPTED), ref("a", ACCEPTED + timedelta(seconds=1))
    late = job("a", accepted=ACCEPTED + timedelta(seconds=1))
    # add(winner), add(loser) displaces it; the loser buries itself, re-adds the winner...
    state = registry_of("a")
    state, _ = add(state, late)
    state, _ = cancel(state, "bury-loser", [loser])
    state, _ = add(state, job("a"))
    # ...and the loser's add, delivered again late, stays out.
    state, added = add(state, late)
    assert not added
    _, claimed = claim(state, winner)
    assert claimed == "claimed"


def test_a_displaced_firing_job_gets_no_further_attempt() -> None:
    # An Idempotency-Key re-used after a delete while the old entry was still held.
    state = registry_of("a")
    state, _ = claim(state, ref("a"))
    newer = ACCEPTED + timedelta(hours=1)
    state, added = add(state, job("a", accepted=newer))
    assert added
    _, released = release(state, ref("a"))
    assert released == "absent"
    state, removed = remove(state, ref("a"))
    assert not removed  # the old job's final removal leaves the new entry alone
    assert state.jobs["a"]["accepted_at"] == format_utc(newer)


def test_tombstones_of_jobs_due_first_are_evicted_first() -> None:
    state = RegistryState()
    for index in range(KEPT_TOMBSTONES + 1):
        due = format_utc(T0 + timedelta(minutes=KEPT_TOMBSTONES - index))
        stone = JobRef(transaction_id=f"j{index}", accepted_at=format_utc(ACCEPTED), exec_at=due)
        state, _ = cancel(state, f"r{index}", [stone])
    assert len(state.tombstones) == KEPT_TOMBSTONES
    # The last one cancelled is due first: it went, the earliest cancelled stays.
    _, evicted = claim(state, ref(f"j{KEPT_TOMBSTONES}"))
    _, kept = claim(state, ref("j0"))
    assert evicted == "unknown"
    assert kept == "cancelled"


def test_remove_leaves_no_tombstone() -> None:
    state, _ = remove(registry_of("a"), ref("a"))
    state, added = add(state, job("a"))
    assert added  # only a cancel keeps a registration out


def test_cancel_answers_a_repeated_request_the_same() -> None:
    state = registry_of("a")
    state, first = cancel(state, "req-1", [ref("a")])
    state, again = cancel(state, "req-1", [ref("a")])
    assert first == again
    assert again.verdicts == {"a": "cancelled"}


def test_memories_are_bounded() -> None:
    state = RegistryState()
    for index in range(KEPT_CANCELLATIONS + 10):
        state, _ = cancel(state, f"req-{index}", [ref(f"job-{index}")])
    assert len(state.cancellations) == KEPT_CANCELLATIONS
    assert f"req-{KEPT_CANCELLATIONS + 9}" in state.cancellations
    assert "req-0" not in state.cancellations
    for index in range(KEPT_TOMBSTONES + 10):
        state, _ = cancel(state, f"more-{index}", [ref(f"more-{index}")])
    assert len(state.tombstones) == KEPT_TOMBSTONES


def test_release_between_attempts() -> None:
    state = registry_of("a")
    state, _ = claim(state, ref("a"))
    state, released = release(state, ref("a"))
    assert released == "released"
    state, answer = cancel(state, "req-1", [ref("a")])
    assert answer.verdicts == {"a": "cancelled"}
    _, claimed = claim(state, ref("a"))
    assert claimed == "cancelled"


def test_release_after_a_cancel_met_the_attempt_ends_the_job() -> None:
    state = registry_of("a")
    state, _ = claim(state, ref("a"))
    state, answer = cancel(state, "req-1", [ref("a")])
    assert answer.verdicts == {"a": "firing"}
    state, released = release(state, ref("a"))
    assert released == "cancelled"
    assert state.jobs == {}
    _, claimed = claim(state, ref("a"))
    assert claimed == "cancelled"


def test_reset_cancels_everything() -> None:
    state = registry_of("a", "b", "c")
    state, _ = claim(state, ref("b"))
    state, count = reset(state)
    assert count == 3
    assert list(state.jobs) == ["b"]
    assert state.jobs["b"]["cancel_requested"]


def test_listing_is_in_exec_at_then_id_order() -> None:
    state = RegistryState()
    for name, minutes in [("c", 5), ("b", 1), ("a", 5), ("d", 0)]:
        state, _ = add(state, job(name, minutes))
    assert [entry["transaction_id"] for entry in listing(state)] == ["d", "b", "a", "c"]


def test_apply_operation_round_trips_through_json() -> None:
    a = ref("a").model_dump()
    state = RegistryState()
    state, added = apply_operation(state, "add", {"job": job("a").model_dump(mode="json")})
    assert added is True
    state = RegistryState.model_validate(state.model_dump(mode="json"))
    state, claimed = apply_operation(state, "claim", a)
    assert claimed == "claimed"
    state, released = apply_operation(state, "release", a)
    assert released == "released"
    state, answer = apply_operation(state, "cancel", {"request_id": "r", "jobs": [a]})
    assert answer == {"verdicts": {"a": "cancelled"}}
    state, removed = apply_operation(state, "remove", a)
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
