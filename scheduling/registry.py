"""The registry of pending jobs: pure state transitions behind the `schedule_entity` shards.

The registry is where "fire" and "delete" meet. An attempt fires only after it *claims*
its entry; a delete *cancels* an entry that no attempt holds, or asks a running attempt to
be the last. One shard processes one operation at a time, so exactly one side wins, and
the cancel's answer (kept under its request id, since a client cannot read a signal's
result) says which.

Operations name a job by transaction id *and* acceptance time (its generation), so a stale
message about an earlier job with the same id (an Idempotency-Key reused after a delete)
cannot touch the current one. A cancelled job leaves a tombstone, so its registration
arriving late or twice (messages from different senders are not ordered, and may be
delivered again) cannot bring it back.
"""

import hashlib
from typing import Any, Literal

from pydantic import BaseModel, Field

from scheduling.models import Job, PendingJob

REGISTRY_ENTITY = "schedule_entity"
# A claim that finds no registration waits for it this long between tries, this many times
# (the API registers a job before starting it, but from another sender: order is not kept).
CLAIM_RETRY_SECONDS = 30
MAX_CLAIM_TRIES = 10
# Recent cancellation answers and tombstones kept per shard. A client reads its answer
# within seconds. A tombstone matters until its job's claim: the ones due first go first.
KEPT_CANCELLATIONS = 64
KEPT_TOMBSTONES = 1024

CancelVerdict = Literal["cancelled", "firing", "absent"]
ClaimAnswer = Literal["claimed", "cancelled", "unknown"]
ReleaseAnswer = Literal["released", "cancelled", "absent"]


class JobRef(BaseModel):
    """A job as registry operations name it: its id, its generation and when it is due."""

    transaction_id: str
    accepted_at: str | None = None  # None: whatever generation is registered (operators)
    exec_at: str | None = None  # orders tombstones for eviction; unknown sorts first


class Cancellation(BaseModel):
    """What one cancel request did to each job it named."""

    verdicts: dict[str, CancelVerdict]


class RegistryState(BaseModel):
    """One shard's state: its jobs by transaction id, cancellation answers, tombstones.

    Entries stay plain JSON objects (PendingJob's shape, checked when added): every operation
    rewrites the whole shard, so re-validating thousands of entries each time would dominate.
    """

    jobs: dict[str, dict[str, Any]] = Field(default_factory=dict)
    cancellations: dict[str, Cancellation] = Field(default_factory=dict)
    # "<transaction id> <accepted_at>" of cancelled jobs -> their exec_at ("" if unknown).
    tombstones: dict[str, str] = Field(default_factory=dict)


class UnknownOperation(ValueError):
    pass


def shard_for(transaction_id: str, shard_count: int) -> str:
    """The shard (entity key) a job lives in: stable across processes, unlike `hash()`."""
    digest = hashlib.sha256(transaction_id.encode()).digest()
    return f"shard-{int.from_bytes(digest[:8], 'big') % shard_count}"


def all_shards(shard_count: int) -> list[str]:
    return [f"shard-{index}" for index in range(shard_count)]


def _entry(state: RegistryState, ref: JobRef) -> dict[str, Any] | None:
    entry = state.jobs.get(ref.transaction_id)
    if entry is None or (ref.accepted_at is not None and entry["accepted_at"] != ref.accepted_at):
        return None
    return entry


def _is_buried(state: RegistryState, ref: JobRef) -> bool:
    if ref.accepted_at is not None:
        return f"{ref.transaction_id} {ref.accepted_at}" in state.tombstones
    return any(stone.split(" ", 1)[0] == ref.transaction_id for stone in state.tombstones)


def _bury(
    state: RegistryState, transaction_id: str, accepted_at: str, exec_at: str
) -> RegistryState:
    tombstones = {**state.tombstones, f"{transaction_id} {accepted_at}": exec_at}
    while len(tombstones) > KEPT_TOMBSTONES:
        del tombstones[min(tombstones, key=lambda stone: tombstones[stone])]
    return state.model_copy(update={"tombstones": tombstones})


def _without(state: RegistryState, transaction_id: str, *, bury: bool) -> RegistryState:
    entry = state.jobs[transaction_id]
    jobs = {key: value for key, value in state.jobs.items() if key != transaction_id}
    state = state.model_copy(update={"jobs": jobs})
    if bury:
        state = _bury(state, transaction_id, entry["accepted_at"], entry["exec_at"])
    return state


def _with(state: RegistryState, transaction_id: str, **changes: Any) -> RegistryState:
    jobs = {**state.jobs, transaction_id: {**state.jobs[transaction_id], **changes}}
    return state.model_copy(update={"jobs": jobs})


def add(state: RegistryState, job: Job) -> tuple[RegistryState, bool]:
    """Register a job; False when it is there already, or was cancelled before it arrived.

    An entry of another generation gives way: two creates racing with one Idempotency-Key
    both register, and the one whose orchestration started must stand (the loser buries
    its own generation, so its registration cannot come back).
    """
    entry = PendingJob.of(job).model_dump(mode="json")
    ref = JobRef(transaction_id=job.transaction_id, accepted_at=entry["accepted_at"])
    present = state.jobs.get(job.transaction_id)
    if _is_buried(state, ref):
        return state, False
    if present is not None and present["accepted_at"] == entry["accepted_at"]:
        return state, False
    return state.model_copy(update={"jobs": {**state.jobs, job.transaction_id: entry}}), True


def remove(state: RegistryState, ref: JobRef) -> tuple[RegistryState, bool]:
    """Drop a job's entry: its orchestration has ended; whether it was there."""
    if _entry(state, ref) is None:
        return state, False
    return _without(state, ref.transaction_id, bury=False), True


def claim(state: RegistryState, ref: JobRef) -> tuple[RegistryState, ClaimAnswer]:
    """Hold a job for one attempt. "unknown": its registration has not arrived (yet)."""
    entry = _entry(state, ref)
    if entry is None:
        return state, "cancelled" if _is_buried(state, ref) else "unknown"
    if entry["firing"]:
        return state, "claimed"  # the same claim, delivered again
    return _with(state, ref.transaction_id, firing=True), "claimed"


def release(state: RegistryState, ref: JobRef) -> tuple[RegistryState, ReleaseAnswer]:
    """After an attempt that will be retried: pending again, or cancelled if that was asked."""
    entry = _entry(state, ref)
    if entry is None:
        return state, "cancelled" if _is_buried(state, ref) else "absent"
    if entry.get("cancel_requested"):
        return _without(state, ref.transaction_id, bury=True), "cancelled"
    return _with(state, ref.transaction_id, firing=False), "released"


def cancel(
    state: RegistryState, request_id: str, refs: list[JobRef]
) -> tuple[RegistryState, Cancellation]:
    """Cancel each job no attempt holds; a held one gets no further attempt. Answers kept."""
    if request_id in state.cancellations:
        return state, state.cancellations[request_id]
    state, verdicts = _cancel_each(state, refs)
    answer = Cancellation(verdicts=verdicts)
    kept = list(state.cancellations.items())[-(KEPT_CANCELLATIONS - 1) :]
    return state.model_copy(update={"cancellations": {**dict(kept), request_id: answer}}), answer


def _cancel_each(
    state: RegistryState, refs: list[JobRef]
) -> tuple[RegistryState, dict[str, CancelVerdict]]:
    verdicts: dict[str, CancelVerdict] = {}
    for ref in refs:
        entry = _entry(state, ref)
        if entry is None:
            verdicts[ref.transaction_id] = "absent"
            if ref.accepted_at is not None:
                # Its registration may still be on its way: make sure it stays out.
                state = _bury(state, ref.transaction_id, ref.accepted_at, ref.exec_at or "")
        elif entry["firing"]:
            verdicts[ref.transaction_id] = "firing"
            state = _with(state, ref.transaction_id, cancel_requested=True)
        else:
            verdicts[ref.transaction_id] = "cancelled"
            state = _without(state, ref.transaction_id, bury=True)
    return state, verdicts


def reset(state: RegistryState) -> tuple[RegistryState, int]:
    """Cancel every job (for operators, by signal): what `cancel` does to each; how many."""
    refs = [
        JobRef(transaction_id=tid, accepted_at=entry["accepted_at"])
        for tid, entry in state.jobs.items()
    ]
    new_state, _ = _cancel_each(state, refs)
    return new_state, len(refs)


def listing(state: RegistryState) -> list[dict[str, Any]]:
    """The shard's jobs in firing order."""
    return sorted(
        state.jobs.values(), key=lambda entry: (entry["exec_at"], entry["transaction_id"])
    )


def apply_operation(
    state: RegistryState, operation: str, argument: Any
) -> tuple[RegistryState, Any]:
    """Run one named operation with its JSON argument; returns the new state and the result."""
    match operation:
        case "add":
            return add(state, Job.model_validate(argument["job"]))
        case "remove":
            return remove(state, JobRef.model_validate(argument))
        case "claim":
            return claim(state, JobRef.model_validate(argument))
        case "release":
            return release(state, JobRef.model_validate(argument))
        case "cancel":
            refs = [JobRef.model_validate(ref) for ref in argument["jobs"]]
            new_state, answer = cancel(state, str(argument["request_id"]), refs)
            return new_state, answer.model_dump()
        case "reset":
            return reset(state)
        case "list":
            return state, listing(state)
        case _:
            raise UnknownOperation(f"unknown registry operation {operation!r}")
