"""The registry of pending jobs: pure state transitions behind the `schedule_entity` shards.

The registry is where "fire" and "delete" meet: an attempt fires only after it *claims* its
entry, and a delete only *cancels* an entry that is not being fired. One shard processes
one operation at a time, so exactly one of the two wins, and the cancel's answer (kept
under its request id, since a client cannot read a signal's result) says which.
Every operation is idempotent, so a redelivered message changes nothing.
"""

import hashlib
from typing import Any, Literal

from pydantic import BaseModel, Field

from scheduling.models import Job, PendingJob

REGISTRY_ENTITY = "schedule_entity"
# Cancellation answers kept per shard; the oldest go first. A client reads its answer
# within seconds, so a short memory is enough.
KEPT_CANCELLATIONS = 64

CancelVerdict = Literal["cancelled", "firing", "absent"]


class Cancellation(BaseModel):
    """What one cancel request did to each job it named."""

    verdicts: dict[str, CancelVerdict]


class RegistryState(BaseModel):
    """One shard's state: its jobs by transaction id, and recent cancellation answers.

    Entries stay plain JSON objects (PendingJob's shape, checked when added): every operation
    rewrites the whole shard, so re-validating thousands of entries each time would dominate.
    """

    jobs: dict[str, dict[str, Any]] = Field(default_factory=dict)
    cancellations: dict[str, Cancellation] = Field(default_factory=dict)


class UnknownOperation(ValueError):
    pass


def shard_for(transaction_id: str, shard_count: int) -> str:
    """The shard (entity key) a job lives in: stable across processes, unlike `hash()`."""
    digest = hashlib.sha256(transaction_id.encode()).digest()
    return f"shard-{int.from_bytes(digest[:8], 'big') % shard_count}"


def all_shards(shard_count: int) -> list[str]:
    return [f"shard-{index}" for index in range(shard_count)]


def add(state: RegistryState, job: Job) -> tuple[RegistryState, bool]:
    """Register a job; returns whether it was new."""
    if job.transaction_id in state.jobs:
        return state, False
    jobs = {**state.jobs, job.transaction_id: PendingJob.of(job).model_dump(mode="json")}
    return state.model_copy(update={"jobs": jobs}), True


def remove(state: RegistryState, transaction_id: str) -> tuple[RegistryState, bool]:
    """Forget a job whatever it is doing (its orchestration has finished); whether it was there."""
    if transaction_id not in state.jobs:
        return state, False
    jobs = {key: value for key, value in state.jobs.items() if key != transaction_id}
    return state.model_copy(update={"jobs": jobs}), True


def claim(state: RegistryState, transaction_id: str) -> tuple[RegistryState, bool]:
    """Mark a job as firing before an attempt; False when it was cancelled: do not fire."""
    pending = state.jobs.get(transaction_id)
    if pending is None:
        return state, False
    if pending.get("firing"):
        return state, True
    jobs = {**state.jobs, transaction_id: {**pending, "firing": True}}
    return state.model_copy(update={"jobs": jobs}), True


def release(state: RegistryState, transaction_id: str) -> tuple[RegistryState, bool]:
    """Between two attempts a job is pending again, so a delete may cancel it."""
    pending = state.jobs.get(transaction_id)
    if pending is None or not pending.get("firing"):
        return state, False
    jobs = {**state.jobs, transaction_id: {**pending, "firing": False}}
    return state.model_copy(update={"jobs": jobs}), True


def cancel(
    state: RegistryState, request_id: str, transaction_ids: list[str]
) -> tuple[RegistryState, Cancellation]:
    """Drop each named job that is not firing, and remember what happened to each."""
    if request_id in state.cancellations:
        return state, state.cancellations[request_id]
    verdicts: dict[str, CancelVerdict] = {}
    jobs = dict(state.jobs)
    for transaction_id in transaction_ids:
        pending = jobs.get(transaction_id)
        if pending is None:
            verdicts[transaction_id] = "absent"
        elif pending.get("firing"):
            verdicts[transaction_id] = "firing"
        else:
            verdicts[transaction_id] = "cancelled"
            del jobs[transaction_id]
    answer = Cancellation(verdicts=verdicts)
    kept = list(state.cancellations.items())[-(KEPT_CANCELLATIONS - 1) :]
    cancellations = {**dict(kept), request_id: answer}
    return RegistryState(jobs=jobs, cancellations=cancellations), answer


def reset(state: RegistryState) -> tuple[RegistryState, int]:
    """Forget every job that is not firing (firing ones finish); returns how many went."""
    jobs = {key: entry for key, entry in state.jobs.items() if entry.get("firing")}
    return state.model_copy(update={"jobs": jobs}), len(state.jobs) - len(jobs)


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
            return remove(state, str(argument["transaction_id"]))
        case "claim":
            return claim(state, str(argument["transaction_id"]))
        case "release":
            return release(state, str(argument["transaction_id"]))
        case "cancel":
            new_state, answer = cancel(
                state,
                str(argument["request_id"]),
                [str(tid) for tid in argument["transaction_ids"]],
            )
            return new_state, answer.model_dump()
        case "reset":
            return reset(state)
        case "list":
            return state, listing(state)
        case _:
            raise UnknownOperation(f"unknown registry operation {operation!r}")
