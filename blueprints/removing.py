"""Deleting one job and wiping them all, without ever racing a job that is firing.

A delete is acknowledged only once the job's registry shard has cancelled its entry; a
job whose attempt has already claimed it is left to finish (409), so it still ends with
exactly one visible outcome.
"""

import asyncio
import logging

import azure.durable_functions as df
import azure.functions as func

from blueprints import dependencies
from blueprints.durable_state import (
    TERMINAL,
    backend_unavailable,
    bounded,
    cancel_in_registry,
    existing_status,
    purge,
    record_lifecycle,
    runtime_status,
    shard_jobs,
    shard_of,
    terminate_and_purge,
    unregister,
)
from blueprints.http_io import json_response
from scheduling.problems import ProblemError, problem
from scheduling.registry import all_shards

log = logging.getLogger(__name__)


async def delete_job(
    client: df.DurableOrchestrationClient, request: func.HttpRequest, transaction_id: str
) -> func.HttpResponse:
    status = await existing_status(client, transaction_id)
    was = runtime_status(status)
    shard = shard_of(status, transaction_id)
    try:
        if was in TERMINAL:
            await unregister(client, shard, transaction_id)
            await purge(client, transaction_id)
        else:
            verdicts = await cancel_in_registry(client, shard, [transaction_id])
            verdict = verdicts.get(transaction_id) if verdicts is not None else None
            if verdict is None:
                raise backend_unavailable("confirm the delete in time; try again")
            if verdict == "firing":
                raise problem(
                    409,
                    "job-firing",
                    "The job is firing",
                    "an attempt of this job is running now; it will finish with a visible "
                    "outcome, and can be deleted after that",
                )
            # "cancelled", or "absent" (no entry to claim): either way it can never fire.
            await terminate_and_purge(client, transaction_id)
    except ProblemError:
        raise
    except Exception:
        log.exception("deleting %s failed", transaction_id)
        raise backend_unavailable("accept the delete") from None
    await record_lifecycle(
        transaction_id, "cancelled", "deleted through the API", runtime_status_before=was
    )
    return json_response(
        {"transaction_id": transaction_id, "deleted": True, "runtime_status_before": was}
    )


async def wipe_jobs(
    client: df.DurableOrchestrationClient, request: func.HttpRequest
) -> func.HttpResponse:
    """Cancel every pending job, shard by shard; firing ones finish. Counts, and what failed."""
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

    async def remove(transaction_id: str) -> None:
        try:
            await terminate_and_purge(client, transaction_id, wait=False)
        except Exception:
            # Cancelled in the registry, so it cannot fire; its record stays until deleted.
            log.exception("removing %s during wipe failed", transaction_id)
        await record_lifecycle(transaction_id, "wiped", "removed by a wipe of all jobs")

    await bounded(remove(transaction_id) for transaction_id in cancelled)
    return json_response(
        {"cancelled": len(cancelled), "firing": firing, "incomplete_shards": incomplete}
    )


async def _wipe_shard(client: df.DurableOrchestrationClient, shard: str) -> tuple[list[str], int]:
    jobs = await shard_jobs(client, shard)
    if not jobs:
        return [], 0
    verdicts = await cancel_in_registry(client, shard, [job.transaction_id for job in jobs])
    if verdicts is None:
        raise TimeoutError(f"{shard} did not answer the wipe in time")
    cancelled = [tid for tid, verdict in verdicts.items() if verdict == "cancelled"]
    return cancelled, sum(1 for verdict in verdicts.values() if verdict == "firing")
