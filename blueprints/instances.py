"""The job's orchestration instance from the HTTP routes: read, stop, purge; ids checked."""

import asyncio
import logging
from collections.abc import Awaitable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

import azure.durable_functions as df

from api.problems import problem
from scheduling.log_context import name_job
from scheduling.models import TRANSACTION_ID

if TYPE_CHECKING:
    from scheduling.job_record import JobRecord

ORCHESTRATOR = "schedule_orchestrator"
DELETE_REASON = "deleted through the scheduler API"
TERMINAL = frozenset({"Completed", "Failed", "Terminated", "Canceled"})
# The SDK's connection pool has 30 connections, shared by the whole worker.
MAX_CONCURRENT_CALLS = 16
log = logging.getLogger(__name__)
T = TypeVar("T")


def checked_id(transaction_id: str) -> str:
    if not TRANSACTION_ID.fullmatch(transaction_id):
        raise problem(
            400,
            "invalid-transaction-id",
            "Invalid transaction id",
            "a transaction id is the lower-case UUID that POST /api/schedule returned",
        )
    # The request's own task: what it logs from here on names the job.
    name_job(transaction_id)
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


async def status_of(
    client: df.DurableOrchestrationClient, instance_id: str, history: bool = False
) -> Any:
    """`get_status` (falsy when unknown), with a backend failure, raised or answered, a 503."""
    try:
        status = await client.get_status(
            instance_id, show_history=history, show_history_output=history, show_input=True
        )
    except Exception:
        log.exception("status of %s failed", instance_id)
        raise backend_unavailable("answer the status request") from None
    if is_error_answer(status):
        log.error("status of %s failed: %s", instance_id, getattr(status, "Message", ""))
        raise backend_unavailable("answer the status request")
    return status


async def start_orchestration(client: df.DurableOrchestrationClient, record: "JobRecord") -> None:
    """Start the orchestration of the record's generation, waiting for its time."""
    from scheduling.job_record import JobRun

    run = JobRun(
        transaction_id=record.transaction_id,
        generation=record.generation,
        exec_at=record.exec_at,
        flow=record.flow,
    )
    await client.start_new(ORCHESTRATOR, record.instance_id, run.model_dump(mode="json"))


async def orchestration_runs(client: df.DurableOrchestrationClient, record: "JobRecord") -> bool:
    """Whether the record's orchestration exists and has not ended (a start that timed out
    may have gone through; a concurrent request may have started it)."""
    try:
        status = await status_of(client, record.instance_id)
    except Exception:
        return False
    return bool(status) and runtime_status(status) not in TERMINAL


async def terminate(client: df.DurableOrchestrationClient, instance_id: str) -> None:
    """Ask the instance to stop (asynchronous: it runs until the message is processed)."""
    await client.terminate(instance_id, DELETE_REASON)


async def stop_quietly(client: df.DurableOrchestrationClient, instance_id: str) -> None:
    """Terminate a job's orchestration so nothing waits for nothing; it would end by itself
    anyway, finding its job cancelled (or of another generation) when it comes due."""
    try:
        await terminate(client, instance_id)
    except Exception:
        log.info("terminating %s failed", instance_id, exc_info=True)


async def purge(client: df.DurableOrchestrationClient, instance_id: str) -> None:
    """Delete an ended instance's history, if the backend takes it (it holds no secrets)."""
    try:
        await client.purge_instance_history(instance_id)
    except Exception:
        log.info("purge of %s deferred", instance_id, exc_info=True)
