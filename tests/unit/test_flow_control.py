"""Flow control's decisions: grant order, the token bucket, leases of lost releases."""

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from scheduling.flow_control import (
    FlowLimitError,
    FlowLimits,
    FlowState,
    acquire,
    flow_for,
    holder_id,
    instance_of,
    is_idle,
    is_stale,
    may_start,
    release,
    take_token,
)
from scheduling.models import FlowControlRequest
from scheduling.settings import (
    ATTEMPT_START_MARGIN_SECONDS,
    KeyLimits,
    SchedulerSettings,
    parse_flow_limits,
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


# -- which jobs go through a key, and with what limits --------------------------------------


def settings(**values: object) -> SchedulerSettings:
    return SchedulerSettings.model_validate(values)


@pytest.mark.parametrize(
    ("requested", "destination", "values", "expected"),
    [
        # Nobody asked: no key, whatever the destination.
        (None, "hooks.example.com", {}, None),
        (None, None, {"flow_control_by_default": True}, None),
        # The job asks: its host's key, or its own, with its limits or the defaults.
        ({}, "hooks.example.com", {}, ("hooks.example.com", 10, 50.0)),
        ({"key": "team-a", "max_parallel": 3}, "hooks.example.com", {}, ("team-a", 3, 50.0)),
        ({"key": "team-a"}, None, {}, ("team-a", 10, 50.0)),
        ({}, None, {}, None),  # a log.append asking with no key: nothing to go through
        # FLOW_LIMITS names the destination: its limits, and the job may ask for less.
        (
            None,
            "api.example.com",
            {"flow_limits": "api.example.com=5/20"},
            ("api.example.com", 5, 20.0),
        ),
        (None, "other.example.com", {"flow_limits": "api.example.com=5/20"}, None),
        (
            {"max_parallel": 2},
            "api.example.com",
            {"flow_limits": "api.example.com=5/20"},
            ("api.example.com", 2, 20.0),
        ),
        (
            {"key": "api.example.com"},
            None,
            {"flow_limits": "api.example.com=5/20"},
            ("api.example.com", 5, 20.0),
        ),
        # Keys compare without case, and an IPv6 destination with or without brackets.
        (
            None,
            "api.example.com",
            {"flow_limits": "API.Example.com=5/20"},
            ("api.example.com", 5, 20.0),
        ),
        (None, "::1", {"flow_limits": "[::1]=2/1"}, ("::1", 2, 1.0)),
        (
            {"key": "API.example.com"},
            None,
            {"flow_limits": "api.example.com=5/20"},
            ("api.example.com", 5, 20.0),
        ),
        # The default switched on: every destination's key, with the defaults.
        (
            None,
            "hooks.example.com",
            {"flow_control_by_default": True},
            ("hooks.example.com", 10, 50.0),
        ),
    ],
)
def test_a_job_goes_through_a_key_only_where_it_or_the_settings_ask(
    requested: dict[str, object] | None,
    destination: str | None,
    values: dict[str, object],
    expected: tuple[str, int, float] | None,
) -> None:
    request = None if requested is None else FlowControlRequest.model_validate(requested)
    flow = flow_for(request, destination, settings(**values))
    found = None if flow is None else (flow.key, flow.max_parallel, flow.rate_per_second)
    assert found == expected


@pytest.mark.parametrize(
    ("requested", "values", "field"),
    [
        ({"max_parallel": 101}, {}, "max_parallel"),
        ({"rate_per_second": 500.5}, {}, "rate_per_second"),
        ({"max_parallel": 6}, {"flow_limits": "api.example.com=5/20"}, "max_parallel"),
        ({"rate_per_second": 21}, {"flow_limits": "api.example.com=5/20"}, "rate_per_second"),
    ],
)
def test_a_job_may_not_ask_for_more_than_the_bounds_or_its_keys_limits(
    requested: dict[str, object], values: dict[str, object], field: str
) -> None:
    with pytest.raises(FlowLimitError) as refused:
        flow_for(
            FlowControlRequest.model_validate(requested), "api.example.com", settings(**values)
        )
    assert refused.value.field == field


def test_a_job_cannot_leave_its_destinations_operator_limits_by_naming_its_own_key() -> None:
    limited = settings(flow_limits="api.example.com=5/20")
    for own_key in ("tenant-7", "api.example.com.", "other.example.com"):
        with pytest.raises(FlowLimitError) as refused:
            flow_for(FlowControlRequest(key=own_key), "api.example.com", limited)
        assert refused.value.field == "key"
    # Naming the destination's own key, in any case, is what it gets anyway.
    flow = flow_for(FlowControlRequest(key="API.example.com"), "api.example.com", limited)
    assert flow is not None
    assert (flow.key, flow.max_parallel) == ("api.example.com", 5)
    # A destination without operator limits may still be grouped under a job's own key.
    grouped = flow_for(FlowControlRequest(key="tenant-7"), "free.example.com", limited)
    assert grouped is not None
    assert grouped.key == "tenant-7"


def test_flow_limits_are_read_strictly() -> None:
    assert parse_flow_limits(" a.example.com=5/20 , [::1]=1/0.5 ") == {
        "a.example.com": KeyLimits(max_parallel=5, rate_per_second=20.0),
        "::1": KeyLimits(max_parallel=1, rate_per_second=0.5),
    }
    assert parse_flow_limits("") == {}
    for wrong in (
        "a=5",
        "a=5/20,",
        "a=5/20,a=1/1",
        "a=5/20,A=1/1",
        "a=0/1",
        "a=1/0",
        "a b=1/1",
        "a=1.5/2",
        "a=1/2e3",
    ):
        with pytest.raises(ValueError, match="FLOW_LIMITS"):
            parse_flow_limits(wrong)


def test_flow_limits_come_from_the_environment_as_operators_write_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FLOW_LIMITS", "api.example.com=5/20")
    monkeypatch.setenv("FLOW_CONTROL_BY_DEFAULT", "true")
    read = SchedulerSettings()
    assert read.flow_limits == {"api.example.com": KeyLimits(5, 20.0)}
    assert read.flow_control_by_default is True
    monkeypatch.setenv("FLOW_LIMITS", "api.example.com=5/20,")
    with pytest.raises(ValidationError, match="entry 2"):
        SchedulerSettings()


# -- a lease that no queue can outlive --------------------------------------------------


def test_a_granted_slot_says_when_its_lease_ends() -> None:
    state, answer = acquire(FlowState(), "a", limits(max_parallel=1), T0, LEASE, queue_limit=3)
    assert (answer.start_at, answer.lease_ends_at) == (T0, T0 + LEASE)
    state, _ = acquire(state, "b", limits(max_parallel=1), T0, LEASE, queue_limit=3)
    later = T0 + timedelta(seconds=5)
    _, grants = release(state, ["a"], later, LEASE)
    assert [(g.holder, g.lease_ends_at) for g in grants] == [("b", later + LEASE)]


def test_an_attempt_starts_only_if_its_request_ends_within_the_lease() -> None:
    config = settings(http_call_max_timeout_seconds=30, flow_slot_lease_seconds=600)
    ends = T0 + timedelta(seconds=600)
    latest_start = ends - timedelta(seconds=30 + ATTEMPT_START_MARGIN_SECONDS)
    assert may_start(ends, T0, config)
    assert may_start(ends, latest_start, config)
    assert not may_start(ends, latest_start + timedelta(microseconds=1), config)


def test_a_lease_too_short_for_the_longest_request_is_refused() -> None:
    with pytest.raises(ValidationError, match="FLOW_SLOT_LEASE_SECONDS"):
        settings(http_call_max_timeout_seconds=60, flow_slot_lease_seconds=120)
    settings(http_call_max_timeout_seconds=60, flow_slot_lease_seconds=121)
