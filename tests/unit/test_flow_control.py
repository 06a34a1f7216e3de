"""Flow control's decisions: grant order, the token bucket, leases of lost releases."""

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from scheduling.flow_control import (
    FlowLimits,
    FlowState,
    acquire,
    holder_id,
    instance_of,
    is_idle,
    is_stale,
    release,
    take_token,
)

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
LEASE = timedelta(minutes=10)


def limits(max_parallel: int = 2, rate: float = 1000.0) -> FlowLimits:
    return FlowLimits(key="hooks.example.com", max_parallel=max_parallel, rate_per_second=rate)


def ask(
    state: FlowState, who: str, *, at: datetime = T0, max_parallel: int = 2, rate: float = 1000.0
) -> tuple[FlowState, str]:
    state, answer = acquire(state, who, limits(max_parallel, rate), at, LEASE, queue_limit=3)
    return state, answer.outcome


def test_grants_up_to_max_parallel_then_queues_in_arrival_order() -> None:
    state = FlowState()
    outcomes = []
    for who in ("a", "b", "c", "d"):
        state, outcome = ask(state, who)
        outcomes.append(outcome)
    assert outcomes == ["granted", "granted", "queued", "queued"]
    assert [h.holder for h in state.holders] == ["a", "b"]
    assert state.queue == ["c", "d"]

    state, grants = release(state, ["b"], T0, LEASE)
    assert [g.holder for g in grants] == ["c"]
    assert [h.holder for h in state.holders] == ["a", "c"]
    assert state.queue == ["d"]


def test_asking_again_is_answered_the_same_and_changes_nothing() -> None:
    state, _ = ask(FlowState(), "a", max_parallel=1)
    state, _ = ask(state, "b", max_parallel=1)
    again, answer = acquire(state, "b", limits(max_parallel=1), T0, LEASE, queue_limit=3)
    assert (answer.outcome, answer.position) == ("queued", 1)
    assert again.queue == state.queue
    again, answer = acquire(state, "a", limits(max_parallel=1), T0, LEASE, queue_limit=3)
    assert answer.outcome == "granted"
    assert again.holders == state.holders


def test_a_newcomer_does_not_overtake_the_queue() -> None:
    state, _ = ask(FlowState(), "a", max_parallel=1)
    state, _ = ask(state, "b", max_parallel=1)
    # A release that is not processed yet: the slot frees only through release(), which
    # hands it to "b"; a newcomer asking meanwhile waits behind "b".
    state, grants = release(state, ["a"], T0, LEASE)
    assert [g.holder for g in grants] == ["b"]
    state, outcome = ask(state, "c", max_parallel=1)
    assert outcome == "queued"


def test_a_full_queue_answers_full_and_keeps_its_bound() -> None:
    state = FlowState()
    for who in ("a", "b", "c", "d", "e"):
        state, _ = ask(state, who)
    assert state.queue == ["c", "d", "e"]
    state, outcome = ask(state, "f")
    assert outcome == "full"
    assert state.queue == ["c", "d", "e"]


def test_releasing_twice_or_a_stranger_changes_nothing() -> None:
    state, _ = ask(FlowState(), "a", max_parallel=1)
    state, _ = ask(state, "b", max_parallel=1)
    state, _ = release(state, ["a"], T0, LEASE)
    after, grants = release(state, ["a", "zzz"], T0, LEASE)
    assert grants == []
    assert after.holders == state.holders
    assert after.queue == state.queue


def test_a_waiter_that_leaves_gives_up_its_place() -> None:
    state, _ = ask(FlowState(), "a", max_parallel=1)
    state, _ = ask(state, "b", max_parallel=1)
    state, _ = ask(state, "c", max_parallel=1)
    state, grants = release(state, ["b"], T0, LEASE)
    assert grants == []
    assert state.queue == ["c"]


def test_the_bucket_spaces_starts_at_the_rate_after_its_burst() -> None:
    state = FlowState(max_parallel=100, rate_per_second=2.0)
    starts = []
    for _ in range(5):
        state, start_at = take_token(state, T0)
        starts.append((start_at - T0).total_seconds())
    # Two tokens (one second's worth) at once, then one every half second.
    assert starts == [0.0, 0.0, 0.5, 1.0, 1.5]


def test_the_bucket_refills_with_time_up_to_its_capacity() -> None:
    state = FlowState(max_parallel=100, rate_per_second=2.0)
    state, _ = take_token(state, T0)
    state, _ = take_token(state, T0)
    state, start_at = take_token(state, T0 + timedelta(seconds=0.5))
    assert start_at == T0 + timedelta(seconds=0.5)
    # Long idle: never more than capacity (2) in hand.
    later = T0 + timedelta(hours=1)
    for expected in (0.0, 0.0, 0.5):
        state, start_at = take_token(state, later)
        assert (start_at - later).total_seconds() == expected


def test_a_grant_on_credit_starts_when_its_token_is_refilled() -> None:
    state = FlowState()
    state, first = acquire(state, "a", limits(5, rate=1.0), T0, LEASE, queue_limit=3)
    state, second = acquire(state, "b", limits(5, rate=1.0), T0, LEASE, queue_limit=3)
    assert first.start_at == T0
    assert second.outcome == "granted"
    assert second.start_at == T0 + timedelta(seconds=1)


def test_a_holder_past_its_lease_is_reclaimed_and_its_slot_granted() -> None:
    state, _ = ask(FlowState(), "lost", max_parallel=1)
    state, _ = ask(state, "b", max_parallel=1)
    assert not is_stale(state.holders[0], T0 + LEASE, LEASE)
    assert is_stale(state.holders[0], T0 + LEASE + timedelta(seconds=1), LEASE)

    later = T0 + LEASE + timedelta(seconds=1)
    state, answer = acquire(state, "c", limits(max_parallel=1), later, LEASE, queue_limit=3)
    # "b" is granted in the lost holder's place, and the caller is told to tell it.
    assert [g.holder for g in answer.notify] == ["b"]
    assert answer.outcome == "queued"
    assert [h.holder for h in state.holders] == ["b"]
    # The lost holder's release, if it ever comes, frees nothing of b's.
    state, grants = release(state, ["lost"], later, LEASE)
    assert grants == []
    assert [h.holder for h in state.holders] == ["b"]


def test_a_waiter_asking_when_reclaim_grants_it_is_told_granted_not_notified() -> None:
    state, _ = ask(FlowState(), "lost", max_parallel=1)
    state, _ = ask(state, "b", max_parallel=1)
    later = T0 + LEASE + timedelta(seconds=1)
    state, answer = acquire(state, "b", limits(max_parallel=1), later, LEASE, queue_limit=3)
    assert answer.outcome == "granted"
    assert answer.notify == []


def test_time_on_a_key_never_runs_backwards() -> None:
    state, _ = ask(FlowState(), "a", max_parallel=1, at=T0 + timedelta(seconds=5))
    # A caller whose clock lags: the key keeps its own latest time.
    state, _ = release(state, ["a"], T0, LEASE)
    assert state.clock == T0 + timedelta(seconds=5)


def test_a_raised_max_parallel_grants_waiters_at_once() -> None:
    state, _ = ask(FlowState(), "a", max_parallel=1)
    state, _ = ask(state, "b", max_parallel=1)
    state, answer = acquire(state, "c", limits(max_parallel=3), T0, LEASE, queue_limit=3)
    assert [g.holder for g in answer.notify] == ["b"]
    assert answer.outcome == "granted"


def test_idle_once_nobody_holds_and_the_bucket_is_full() -> None:
    state, _ = ask(FlowState(), "a", max_parallel=1, rate=2.0)
    assert not is_idle(state)
    state, _ = release(state, ["a"], T0, LEASE)
    assert not is_idle(state)  # one token short
    state, _ = release(state, [], T0 + timedelta(seconds=0.5), LEASE)
    assert is_idle(state)


def test_holder_ids_name_their_instance() -> None:
    who = holder_id("0b6f3c2e-1111-4222-8333-944455556666.abc", "7f00")
    assert instance_of(who) == "0b6f3c2e-1111-4222-8333-944455556666.abc"


@pytest.mark.parametrize("key", ["", "a/b", "a#b", "a?b", "x@y", "a b", "k" * 129])
def test_flow_keys_that_cannot_name_an_entity_are_refused(key: str) -> None:
    with pytest.raises(ValidationError):
        FlowLimits(key=key, max_parallel=1, rate_per_second=1)
