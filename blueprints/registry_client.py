"""Talking to the registry shards from the HTTP routes: read, register, cancel, drop."""

import logging
import uuid
from typing import Any

import azure.durable_functions as df

from blueprints import dependencies
from scheduling.durable_json import decode_object
from scheduling.models import Job, PendingJob
from scheduling.registry import REGISTRY_ENTITY, CancelVerdict, JobRef, RegistryState
from scheduling.timing import format_utc

# A delete or wipe waits for the shard's verdict this long in all, polling ever less often:
# several times maxQueuePollingInterval (10 s), so an idle app still answers in time.
ANSWER_POLL_DELAYS = (0.05, 0.1, 0.2, 0.4, 0.8, 1.6, *([2.0] * 14))
log = logging.getLogger(__name__)


def registry_entity(shard: str) -> df.EntityId:
    return df.EntityId(REGISTRY_ENTITY, shard)


def ref_of(job: Job | PendingJob) -> JobRef:
    """How registry operations name this job (its id and generation)."""
    return JobRef(
        transaction_id=job.transaction_id,
        accepted_at=format_utc(job.accepted_at),
        exec_at=format_utc(job.exec_at),
    )


async def shard_jobs(client: df.DurableOrchestrationClient, shard: str) -> list[PendingJob]:
    """The jobs one shard holds (raises if the backend does not answer); bad entries skipped."""
    state = _shard_state(await client.read_entity_state(registry_entity(shard)))
    jobs = []
    for transaction_id, entry in state.jobs.items():
        try:
            jobs.append(PendingJob.model_validate(entry))
        except ValueError:
            log.error("registry %s holds an unreadable entry for %s", shard, transaction_id)
    return jobs


def _shard_state(response: Any) -> RegistryState:
    if not response.entity_exists or not response.entity_state:
        return RegistryState()
    return RegistryState.model_validate(decode_object(response.entity_state))


async def register(client: df.DurableOrchestrationClient, job: Job) -> None:
    await client.signal_entity(
        registry_entity(job.registry_shard), "add", {"job": job.model_dump(mode="json")}
    )


async def unregister(client: df.DurableOrchestrationClient, shard: str, ref: JobRef) -> None:
    """Drop a job's entry (raises if the backend does not take the signal)."""
    await client.signal_entity(registry_entity(shard), "remove", ref.model_dump())


async def bury_quietly(client: df.DurableOrchestrationClient, shard: str, ref: JobRef) -> None:
    """Cancel a registration for good, even one still on its way, if the backend takes it."""
    try:
        await client.signal_entity(
            registry_entity(shard),
            "cancel",
            {"request_id": str(uuid.uuid4()), "jobs": [ref.model_dump()]},
        )
    except Exception:
        # An orphan entry is only listed (and wiped), never fired: nothing claims it.
        log.exception("could not cancel the registration of %s", ref.transaction_id)


async def cancel(
    client: df.DurableOrchestrationClient, shard: str, refs: list[JobRef]
) -> dict[str, CancelVerdict] | None:
    """Cancel jobs in their shard and wait for its verdicts; None when it did not answer."""
    request_id = str(uuid.uuid4())
    await client.signal_entity(
        registry_entity(shard),
        "cancel",
        {"request_id": request_id, "jobs": [ref.model_dump() for ref in refs]},
    )
    sleep = dependencies.current().sleep
    for delay in ANSWER_POLL_DELAYS:
        state = _shard_state(await client.read_entity_state(registry_entity(shard)))
        answer = state.cancellations.get(request_id)
        if answer is not None:
            return answer.verdicts
        await sleep(delay)
    return None
