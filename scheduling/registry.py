"""The registry of pending jobs: pure state transitions behind the `schedule_entity` shards.

Every operation is idempotent, so a redelivered signal changes nothing.
"""

import hashlib
from typing import Any

from pydantic import BaseModel, Field

from scheduling.models import Job, PendingJob

REGISTRY_ENTITY = "schedule_entity"


class RegistryState(BaseModel):
    """One shard's state: its pending jobs by transaction id."""

    jobs: dict[str, PendingJob] = Field(default_factory=dict)


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
    jobs = {**state.jobs, job.transaction_id: PendingJob.of(job)}
    return RegistryState(jobs=jobs), True


def remove(state: RegistryState, transaction_id: str) -> tuple[RegistryState, bool]:
    """Forget a job; returns whether it was there."""
    if transaction_id not in state.jobs:
        return state, False
    jobs = {key: value for key, value in state.jobs.items() if key != transaction_id}
    return RegistryState(jobs=jobs), True


def claim(state: RegistryState, transaction_id: str) -> tuple[RegistryState, bool]:
    """Mark a job as firing; False when it was deleted or wiped, so it must not fire.

    A job claimed once stays claimable, so a replayed claim gives the same answer.
    """
    pending = state.jobs.get(transaction_id)
    if pending is None:
        return state, False
    if pending.firing:
        return state, True
    jobs = {**state.jobs, transaction_id: pending.model_copy(update={"firing": True})}
    return RegistryState(jobs=jobs), True


def reset(state: RegistryState) -> tuple[RegistryState, int]:
    """Forget every job; returns how many there were."""
    return RegistryState(), len(state.jobs)


def listing(state: RegistryState) -> list[PendingJob]:
    """The shard's jobs in firing order."""
    return sorted(state.jobs.values(), key=lambda job: (job.exec_at, job.transaction_id))


def apply_operation(
    state: RegistryState, operation: str, argument: Any
) -> tuple[RegistryState, Any]:
    """Run one named operation with its JSON argument; returns the new state and the result."""
    match operation:
        case "add":
            new_state, added = add(state, Job.model_validate(argument["job"]))
            return new_state, added
        case "remove":
            return remove(state, str(argument["transaction_id"]))
        case "claim":
            return claim(state, str(argument["transaction_id"]))
        case "reset":
            return reset(state)
        case "list":
            return state, [job.model_dump(mode="json") for job in listing(state)]
        case _:
            raise UnknownOperation(f"unknown registry operation {operation!r}")
