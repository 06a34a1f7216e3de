"""Reading, stopping and purging a job's orchestration instance from the HTTP routes."""

import asyncio
import logging
import re
from collections.abc import Awaitable, Iterable
from typing import Any, TypeVar

import azure.durable_functions as df

from blueprints import dependencies
from blueprints.registry_client import ANSWER_POLL_DELAYS
from scheduling.durable_json import decode_object
from scheduling.models import Job
from scheduling.problems import not_found, problem
from scheduling.registry import shard_for

ORCHESTRATOR = "schedule_orchestrator"
# The termination reason doubles as a marker: a Terminated instance with this output was
# deleted, so it reads as gone even before its purge has gone through.
DELETE_REASON = "deleted through the scheduler API"
TERMINAL = frozenset({"Completed", "Failed", "Terminated", "Canceled"})
TRANSACTION_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
# The SDK's connection pool has 30 connections, shared by the whole worker.
MAX_CONCURRENT_CALLS = 16
log = logging.getLogger(__name__)
T = TypeVar("T")


def checked_id(transaction_id: str) -> str:
    if not TRANSACTION_ID.match(transaction_id):
        raise problem(
            400,
            "invalid-transaction-id",
            "Invalid transaction id",
            "a transaction id is the lower-case UUID that POST /api/schedule returned",
        )
    return transaction_id


def backend_unavailable(action: str) -> Exception:
    return problem(
        503, "backend-unavailable", "Backend unavailable", f"the backend did not {action}"
    )


async def bounded(calls: Iterable[Awaitable[T]]) -> list[T]:
    """Await the calls, a few at a time, in order."""
    gate = asyncio.Semaphore(MAX_CONCURRENT_CALLS)

    async def one(call: Awaitable[T]) -> T:
        async with gate:
            return await call

    return await asyncio.gather(*(one(call) for call in calls))


def runtime_status(status: Any) -> str | None:
    runtime = getattr(status, "runtime_status", None)
    return getattr(runtime, "value", runtime)


def was_deleted(status: Any) -> bool:
    """Deleted, though not yet purged: terminated by a delete or wipe, or ended cancelled
    because its claim reached the shard before the termination did."""
    if runtime_status(status) == "Terminated":
        return bool(status.output == DELETE_REASON)
    output = decode_object(status.output) if runtime_status(status) == "Completed" else {}
    return output.get("cancelled") is True


def is_error_answer(status: Any) -> bool:
    """Whether `get_status` returned the extension's error body instead of a status.

    The SDK raises only for unexpected status codes: a 400 or 500 becomes a status object
    with no created time, falsy like a 404's (whose empty body becomes `message=""`); the
    error body's `Message` / `ExceptionMessage` attributes tell them apart.
    """
    return not status and (
        any(hasattr(status, name) for name in ("Message", "ExceptionMessage"))
        or bool(getattr(status, "message", ""))
    )


def job_of(status: Any) -> Job | None:
    """The job an instance was started with (kept as a JSON string), if it reads as one."""
    try:
        return Job.model_validate(decode_object(status.input_))
    except ValueError:
        return None


def shard_of(status: Any, transaction_id: str) -> str:
    """The shard recorded in the job (robust to a changed shard count), else the computed one."""
    job = job_of(status)
    if job is not None:
        return job.registry_shard
    return shard_for(transaction_id, dependencies.current().settings().registry_shards)


async def status_of(
    client: df.DurableOrchestrationClient, transaction_id: str, history: bool = False
) -> Any:
    """`get_status` (falsy when unknown), with a backend failure, raised or answered, a 503."""
    try:
        status = await client.get_status(
            transaction_id, show_history=history, show_history_output=history, show_input=True
        )
    except Exception:
        log.exception("status of %s failed", transaction_id)
        raise backend_unavailable("answer the status request") from None
    if is_error_answer(status):
        log.error("status of %s failed: %s", transaction_id, getattr(status, "Message", ""))
        raise backend_unavailable("answer the status request")
    return status


async def status_or_none(
    client: df.DurableOrchestrationClient, transaction_id: str, history: bool = False
) -> Any:
    """The instance's durable status, or None when it does not exist or was deleted."""
    status = await status_of(client, transaction_id, history)
    if not status:
        return None
    if was_deleted(status):
        await purge(client, transaction_id)  # deleted, but not purged then: finish it now
        return None
    return status


async def existing_status(
    client: df.DurableOrchestrationClient, transaction_id: str, history: bool = False
) -> Any:
    status = await status_or_none(client, checked_id(transaction_id), history)
    if status is None:
        raise not_found(f"no job with transaction id {transaction_id}")
    return status


async def terminate(
    client: df.DurableOrchestrationClient, transaction_id: str, *, wait: bool
) -> bool:
    """Stop a running instance; with `wait`, until it has stopped (bounded). Whether it has.

    Terminating is asynchronous: the instance runs until the message is processed.
    """
    await client.terminate(transaction_id, DELETE_REASON)
    if wait:
        sleep = dependencies.current().sleep
        for delay in ANSWER_POLL_DELAYS:
            if runtime_status(await status_of(client, transaction_id)) in TERMINAL:
                return True
            await sleep(delay)
    return False


async def purge(
    client: df.DurableOrchestrationClient, transaction_id: str, *, required: bool = False
) -> None:
    """Delete a finished instance's record; only ever called once it has finished.

    A purge of a running instance would leave its termination message to hit a new
    instance with the same id (an Idempotency-Key reused), so it never happens here.
    """
    try:
        await client.purge_instance_history(transaction_id)
    except Exception:
        if required:
            log.exception("purge of %s failed", transaction_id)
            raise backend_unavailable("remove the job's record; try again") from None
        log.info("purge of %s deferred", transaction_id, exc_info=True)
