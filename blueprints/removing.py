"""Deleting one job and wiping them all, without ever racing a job that is firing.

A delete is acknowledged only once the job's registry shard has cancelled it. An attempt
already running is never cut off: the delete answers 409 and that attempt becomes the
last, so the job still ends with exactly one visible outcome.
"""

import asyncio
import logging

import azure.durable_functions as df
import azure.functions as func

from blueprints import dependencies, registry_client
from blueprints.http_io import json_response
from blueprints.instances import (
    TERMINAL,
    backend_unavailable,
    bounded,
    existing_status,
    job_of,
    purge,
    runtime_status,
    shard_of,
    status_of,
    terminate,
)
from blueprints.job_logs import record_lifecycle
from scheduling.models import PendingJob
from scheduling.problems import ProblemError, not_found, problem
from scheduling.registry import JobRef, all_shards

log = logging.getLogger(__name__)


async def delete_job(
    client: df.DurableOrchestrationClient, request: func.HttpRequest, transaction_id: str
) -> func.HttpResponse:
    status = await existing_status(client, transaction_id)
    was = runtime_status(status)
    try:
        if was not in TERMINAL:
            # None once cancelled; the final status if it finished in the meantime.
            was = await _cancel(client, status, transaction_id) or was
        if was in TERMINAL:
            await _forget_finished(client, status, transaction_id)
    except ProblemError:
        raise
    except Exception:
        log.exception("deleting %s failed", transaction_id)
        raise backend_unavailable("accept the delete") from None
    if was in TERMINAL:
        await record_lifecycle(transaction_id, "deleted", "record deleted through the API")
    else:
        await record_lifecycle(
            transaction_id, "cancelled", "deleted through the API", runtime_status_before=was
        )
    return json_response(
        {"transaction_id": transaction_id, "deleted": True, "runtime_status_before": was}
    )


async def _cancel(
    client: df.DurableOrchestrationClient, status: object, transaction_id: str
) -> str | None:
    """Cancel a running job in its shard, then stop it; its final status if it just finished."""
    job = job_of(status)
    ref = registry_client.ref_of(job) if job else JobRef(transaction_id=transaction_id)
    verdicts = await registry_client.cancel(client, shard_of(status, transaction_id), [ref])
    verdict = None if verdicts is None else verdicts.get(transaction_id)
    if verdict is None:
        raise backend_unavailable("confirm the delete in time; try again")
    if verdict == "firing":
        raise problem(
            409,
            "job-firing",
            "The job is firing",
            "an attempt of this job is running now: it will finish with a visible outcome "
            "and no further attempt will start; delete the job after that",
        )
    if verdict == "absent":
        # No entry: it may have just finished. Then it is a finished job, with its outcome.
        now = await status_of(client, transaction_id)
        if not now:
            raise not_found(f"no job with transaction id {transaction_id}")
        if runtime_status(now) in TERMINAL:
            return str(runtime_status(now))
    # Cancelled, or never registered and now tombstoned: it can never fire. Without a
    # known generation no tombstone was laid, so only a confirmed stop settles it.
    stopped = await terminate(client, transaction_id, wait=True)
    if stopped:
        await purge(client, transaction_id)
    elif job is None:
        raise backend_unavailable("confirm the delete in time; try again")
    return None


async def _forget_finished(
    client: df.DurableOrchestrationClient, status: object, transaction_id: str
) -> None:
    job = job_of(status)
    if job is not None:
        await registry_client.unregister(client, job.registry_shard, registry_client.ref_of(job))
    await purge(client, transaction_id, required=True)


async def wipe_jobs(
    client: df.DurableOrchestrationClient, request: func.HttpRequest
) -> func.HttpResponse:
    """Cancel every pending job, shard by shard; running attempts become the last ones."""
    shards = all_shards(dependencies.current().settings().registry_shards)
    results = await asyncio.gather(
        *(_wipe_shard(client, shard) for shard in shards), return_exceptions=True
    )
    cancelled: list[str] = []
    firing = 0
    incomplete: list[str] = []
    for shard, result in zip(shards, results, strict=True):
        if isinstance(result, BaseException):
            log.error("wiping %s failed: %r", shard, result)
            incomplete.append(shard)
            continue
        cancelled += result[0]
        firing += result[1]

    async def stop(transaction_id: str) -> bool:
        """Terminate a cancelled job's instance; False for an orphan entry (no instance)."""
        try:
            status = await status_of(client, transaction_id)
            if not status or runtime_status(status) in TERMINAL:
                return False
            # Not waited for: each reads as deleted (404) from now, and is purged when read.
            await terminate(client, transaction_id, wait=False)
        except Exception:
            # Cancelled in its shard all the same: it ends as cancelled when it comes due.
            log.exception("terminating %s during wipe failed", transaction_id)
        await record_lifecycle(transaction_id, "wiped", "removed by a wipe of all jobs")
        return True

    stopped = await bounded(stop(transaction_id) for transaction_id in cancelled)
    return json_response(
        {"cancelled": sum(stopped), "firing": firing, "incomplete_shards": incomplete}
    )


async def _wipe_shard(client: df.DurableOrchestrationClient, shard: str) -> tuple[list[str], int]:
    jobs = await registry_client.shard_jobs(client, shard)
    jobs = [job for job in jobs if not await _is_stale(client, shard, job)]
    if not jobs:
        return [], 0
    refs = [registry_client.ref_of(job) for job in jobs]
    verdicts = await registry_client.cancel(client, shard, refs)
    if verdicts is None:
        raise TimeoutError(f"{shard} did not answer the wipe in time")
    cancelled = [tid for tid, verdict in verdicts.items() if verdict == "cancelled"]
    return cancelled, sum(1 for verdict in verdicts.values() if verdict == "firing")


async def _is_stale(client: df.DurableOrchestrationClient, shard: str, job: PendingJob) -> bool:
    """A firing entry whose orchestration ended without removing it: removed now."""
    if not job.firing:
        return False
    status = await status_of(client, job.transaction_id)
    if status and runtime_status(status) not in TERMINAL:
        return False
    await registry_client.unregister(client, shard, registry_client.ref_of(job))
    return True
