"""Flow control per destination: who may fire now, decided on a flow key's small state.

A flow key (by default the target's host) has at most `max_parallel` attempts in flight and
starts at most `rate_per_second` of them per second (a token bucket holding one second's
worth). Its state lives in one durable entity (blueprints/flow_control.py); every decision
on that state is a pure function here, so it is tested without the Durable runtime.

A **holder** is one acquisition by one orchestration: `{instance_id}|{ticket}`, the ticket
new for every acquisition, so an answer or a release meant for an earlier one never counts
for a later one. The state holds ids and times only, never anything of a payload.

Rate: a grant takes a token even when the bucket is empty, and then starts at the moment
the bucket would have refilled that token (`start_at`); so waiting for the rate costs no
messages, only a timer in the holder's orchestration. Tokens owed this way are bounded by
`max_parallel`, because each owed token belongs to a holder.

Lost releases: an orchestration terminated or purged while it holds a slot never releases
it. Each holder therefore has a lease from its `start_at`: after `lease` it is reclaimed by
the next operation on the key. The lease (FLOW_SLOT_LEASE_SECONDS) is longer than anything
that can legitimately hold a slot: an attempt's activity is cut off by the host's
functionTimeout, and its request by the attempt's own timeout, well before. A live holder
whose lease ran out (only if the activity waited that long in the host's queue) is merely
released early; its own release later is then a no-op.
"""

from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from scheduling.models import FLOW_KEY_PATTERN, FlowControlRequest, UtcDatetime
from scheduling.settings import ATTEMPT_START_MARGIN_SECONDS, SchedulerSettings

ENTITY_NAME = "flow_control"


class FlowLimits(BaseModel):
    """The flow key a job goes through and the limits it asks for; shown in clear."""

    model_config = ConfigDict(frozen=True)

    key: str = Field(pattern=FLOW_KEY_PATTERN)
    max_parallel: int = Field(ge=1)
    rate_per_second: float = Field(gt=0)


class FlowLimitError(ValueError):
    """A job asked for more than the settings allow; `field` names the request field."""

    def __init__(self, field: str, message: str, kind: str = "above_bound") -> None:
        super().__init__(message)
        self.field = field
        self.kind = kind


def flow_for(
    requested: FlowControlRequest | None, destination_key: str | None, settings: SchedulerSettings
) -> FlowLimits | None:
    """The flow a job goes through, or None: flow control is only where it is asked for.

    A job that names `flow_control` goes through its own key or its destination's; a job
    to a destination that FLOW_LIMITS names goes through that key; with
    FLOW_CONTROL_BY_DEFAULT on, every job with a destination does. Its limits are its own,
    else the key's in FLOW_LIMITS, else the defaults; a job may not ask for more than the
    bounds, nor for more than FLOW_LIMITS gives its key, nor name another key than its
    destination's when FLOW_LIMITS names that destination (the operator's limits protect it
    from every job).
    """
    if (
        requested is not None
        and requested.key is not None
        and destination_key in settings.flow_limits
        and requested.key != destination_key
    ):
        raise FlowLimitError(
            "key",
            f"{destination_key} has flow limits set by the operator (FLOW_LIMITS), so its jobs "
            "go through its own key: leave flow_control.key out",
            kind="operator_limited",
        )
    if requested is None:
        if destination_key is None:
            return None
        if destination_key not in settings.flow_limits and not settings.flow_control_by_default:
            return None
        requested = FlowControlRequest()
    key = requested.key or destination_key
    if key is None:
        return None
    configured = settings.flow_limits.get(key)
    max_parallel_bound = settings.flow_max_parallel_bound
    rate_bound = settings.flow_rate_per_second_bound
    if configured is not None:
        max_parallel_bound, rate_bound = configured.max_parallel, configured.rate_per_second
    max_parallel = requested.max_parallel or (
        configured.max_parallel if configured else settings.flow_max_parallel
    )
    if max_parallel > max_parallel_bound:
        raise FlowLimitError(
            "max_parallel", f"max_parallel must be at most {max_parallel_bound} for {key}"
        )
    rate = requested.rate_per_second or (
        configured.rate_per_second if configured else settings.flow_rate_per_second
    )
    if rate > rate_bound:
        raise FlowLimitError(
            "rate_per_second", f"rate_per_second must be at most {rate_bound:g} for {key}"
        )
    return FlowLimits(key=key, max_parallel=max_parallel, rate_per_second=rate)


class Holder(BaseModel):
    """A granted slot: who holds it, and from when (the start its rate allowed)."""

    holder: str
    since: UtcDatetime


class FlowState(BaseModel):
    """One flow key's whole state: small by construction (bounded holders and queue)."""

    max_parallel: int = Field(default=1, ge=1)
    rate_per_second: float = Field(default=1.0, gt=0)
    tokens: float = 0.0
    # None: never used, so the bucket is full.
    refilled_at: UtcDatetime | None = None
    # The latest time any operation brought; time on this key never runs backwards.
    clock: UtcDatetime | None = None
    holders: list[Holder] = Field(default_factory=list)
    queue: list[str] = Field(default_factory=list)


class Grant(BaseModel):
    """A slot given to `holder`, which may start at `start_at` and is reclaimed at
    `lease_ends_at` (its attempt must be over by then)."""

    holder: str
    start_at: UtcDatetime
    lease_ends_at: UtcDatetime


class AcquireAnswer(BaseModel):
    """granted: go at `start_at`. queued: wait to be told (a Grant). full: the queue is at its
    bound. Either way ask again at `recheck_at` at the latest (set by the entity, from the
    settings). `notify` lists other holders granted meanwhile (a stale holder was
    reclaimed): the caller tells them."""

    outcome: Literal["granted", "queued", "full"]
    start_at: UtcDatetime | None = None
    lease_ends_at: UtcDatetime | None = None
    position: int | None = None
    recheck_at: UtcDatetime | None = None
    notify: list[Grant] = Field(default_factory=list)


def holder_id(instance_id: str, ticket: str) -> str:
    return f"{instance_id}|{ticket}"


def instance_of(holder: str) -> str:
    """The orchestration instance a holder id names."""
    return holder.rsplit("|", 1)[0]


def bucket_capacity(rate_per_second: float) -> float:
    """One second's worth of starts, at least one."""
    return max(1.0, rate_per_second)


def refill(state: FlowState, now: datetime) -> FlowState:
    """The bucket at `now`: refilled at the rate since the last refill, up to its capacity."""
    capacity = bucket_capacity(state.rate_per_second)
    if state.refilled_at is None:
        return state.model_copy(update={"tokens": capacity, "refilled_at": now})
    elapsed = max(0.0, (now - state.refilled_at).total_seconds())
    tokens = min(capacity, state.tokens + elapsed * state.rate_per_second)
    return state.model_copy(update={"tokens": tokens, "refilled_at": max(now, state.refilled_at)})


def take_token(state: FlowState, now: datetime) -> tuple[FlowState, datetime]:
    """Take one token; the state after, and when the taker may start (now, or when the token
    it took on credit will have been refilled)."""
    state = refill(state, now)
    tokens = state.tokens - 1.0
    wait = 0.0 if tokens >= 0 else -tokens / state.rate_per_second
    return state.model_copy(update={"tokens": tokens}), now + timedelta(seconds=wait)


def is_stale(holder: Holder, now: datetime, lease: timedelta) -> bool:
    """Whether a holder has outlived its lease: its release was lost."""
    return now - holder.since > lease


def _reclaim_stale(state: FlowState, now: datetime, lease: timedelta) -> FlowState:
    kept = [h for h in state.holders if not is_stale(h, now, lease)]
    return state if len(kept) == len(state.holders) else state.model_copy(update={"holders": kept})


def _grant_waiting(
    state: FlowState, now: datetime, lease: timedelta
) -> tuple[FlowState, list[Grant]]:
    """Grant the queue's head, in order, while slots are free."""
    grants: list[Grant] = []
    while state.queue and len(state.holders) < state.max_parallel:
        head, rest = state.queue[0], state.queue[1:]
        state, start_at = take_token(state, now)
        state = state.model_copy(
            update={"queue": rest, "holders": [*state.holders, Holder(holder=head, since=start_at)]}
        )
        grants.append(Grant(holder=head, start_at=start_at, lease_ends_at=start_at + lease))
    return state, grants


def _advance_clock(state: FlowState, now: datetime) -> tuple[FlowState, datetime]:
    clock = now if state.clock is None else max(state.clock, now)
    return state.model_copy(update={"clock": clock}), clock


def acquire(
    state: FlowState,
    holder: str,
    limits: FlowLimits,
    now: datetime,
    lease: timedelta,
    queue_limit: int,
) -> tuple[FlowState, AcquireAnswer]:
    """`holder` asks for a slot under `limits` (the key takes the latest limits asked for).

    Asking again is safe: a holder is told its grant again, a waiter its place. A newcomer
    is granted at once only if nobody waits before it.
    """
    state, now = _advance_clock(state, now)
    state = state.model_copy(
        update={"max_parallel": limits.max_parallel, "rate_per_second": limits.rate_per_second}
    )
    state, others = _grant_waiting(_reclaim_stale(state, now, lease), now, lease)
    held = next((h for h in state.holders if h.holder == holder), None)
    if held is not None:
        mine = [g for g in others if g.holder == holder]
        others = [g for g in others if g.holder != holder]
        start_at = mine[0].start_at if mine else held.since
        return state, _granted(start_at, lease, others)
    if holder in state.queue:
        position = state.queue.index(holder) + 1
        return state, AcquireAnswer(outcome="queued", position=position, notify=others)
    if not state.queue and len(state.holders) < state.max_parallel:
        state, start_at = take_token(state, now)
        state = state.model_copy(
            update={"holders": [*state.holders, Holder(holder=holder, since=start_at)]}
        )
        return state, _granted(start_at, lease, others)
    if len(state.queue) >= queue_limit:
        return state, AcquireAnswer(outcome="full", notify=others)
    state = state.model_copy(update={"queue": [*state.queue, holder]})
    return state, AcquireAnswer(outcome="queued", position=len(state.queue), notify=others)


def _granted(start_at: datetime, lease: timedelta, others: list[Grant]) -> AcquireAnswer:
    return AcquireAnswer(
        outcome="granted", start_at=start_at, lease_ends_at=start_at + lease, notify=others
    )


def release(
    state: FlowState, holders: list[str], now: datetime, lease: timedelta
) -> tuple[FlowState, list[Grant]]:
    """`holders` are done (or gone): their slots, or places in the queue, are freed; the
    waiters granted in their place, whom the caller tells. Releasing twice is a no-op."""
    state, now = _advance_clock(state, now)
    leaving = set(holders)
    state = state.model_copy(
        update={
            "holders": [h for h in state.holders if h.holder not in leaving],
            "queue": [q for q in state.queue if q not in leaving],
        }
    )
    return _grant_waiting(_reclaim_stale(state, now, lease), now, lease)


def may_start(lease_ends_at: datetime, now: datetime, settings: SchedulerSettings) -> bool:
    """Whether an attempt holding a slot until `lease_ends_at` may start now: only if it
    ends before the lease does, else the key may already have given the slot to another
    (the attempt waited that long in the host's queue) and must be asked again."""
    longest = ATTEMPT_START_MARGIN_SECONDS + settings.http_call_max_timeout_seconds
    return now + timedelta(seconds=longest) <= lease_ends_at


def is_idle(state: FlowState) -> bool:
    """Nobody holds or waits and the bucket is full again: the state is as good as new, so
    the entity may forget it (flow keys come and go with destinations)."""
    if state.holders or state.queue:
        return False
    if state.refilled_at is None or state.clock is None:
        return True
    missing = bucket_capacity(state.rate_per_second) - state.tokens
    return state.clock >= state.refilled_at + timedelta(seconds=missing / state.rate_per_second)
