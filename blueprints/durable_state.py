"""A job's durable state as every route reads and changes it: instance, registry entry, log."""

import asyncio
import logging
import re
import uuid
from collections.abc import Awaitable, Iterable
from typing import Any, TypeVar

import azure.durable_functions as df

from blueprints import dependencies
from scheduling.durable_json import decode_object
from scheduling.job_log import JobLogEntry, LogKind
from scheduling.job_log.entries import event_entry_id
from scheduling.job_log.resilient import append_with_retry
from scheduling.models import PendingJob
from scheduling.problems import not_found, problem
from scheduling.registry import REGISTRY_ENTITY, CancelVerdict, RegistryState, shard_for

ORCHESTRATOR = "schedule_orchestrator"
# The termination reason doubles as a marker: a Terminated instance with this output was
# deleted, so it reads as gone even before its purge has gone through.
DELETE_REASON = "deleted through the scheduler API"
TERMINAL = frozenset({"Completed", "Failed", "Terminated", "Canceled"})
TRANSACTION_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
# How long a delete or wipe waits for the registry's answer: polls x interval.
ANSWER_POLLS = 40
ANSWER_POLL_SECONDS = 0.25
# The SDK's connection pool has 30 connections, shared by the whole worker.
MAX_CONCURRENT_CALLS = 16
log = logging.getLogger(__name__)
T = TypeVar("T")


def registry_entity(shard: str) -> df.EntityId:
    return df.EntityId(REGISTRY_ENTITY, shard)


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
    return runtime_status(status) == "Terminated" and status.output == DELETE_REASON


def decoded_input(status: Any) -> dict[str, Any]:
    """The job an instance was started with (the extension keeps it as a JSON string)."""
    return decode_object(status.input_)


def shard_of(status: Any, transaction_id: str) -> str:
    """The shard recorded in the job (robust to a changed shard count), else the computed one."""
    shard = decoded_input(status).get("registry_shard")
    if isinstance(shard, str):
        return shard
    return shard_for(transaction_id, dependencies.current().settings().registry_shards)


async def status_or_none(
    client: df.DurableOrchestrationClient, transaction_id: str, history: bool = False
) -> Any:
    """The instance's durable status, or None when it does not exist or was deleted."""
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
    if not status:
        return None
    if was_deleted(status):
        await purge(client, transaction_id)  # a purge that failed at delete time
        return None
    return status


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


async def existing_status(
    client: df.DurableOrchestrationClient, transaction_id: str, history: bool = False
) -> Any:
    status = await status_or_none(client, checked_id(transaction_id), history)
    if status is None:
        raise not_found(f"no job with transaction id {transaction_id}")
    return status


async def shard_jobs(client: df.DurableOrchestrationClient, shard: str) -> list[PendingJob]:
    """The jobs one registry shard holds (raises if the backend does not answer)."""
    state = _shard_state(await client.read_entity_state(registry_entity(shard)))
    return [PendingJob.model_validate(entry) for entry in state.jobs.values()]


def _shard_state(response: Any) -> RegistryState:
    if not response.entity_exists or not response.entity_state:
        return RegistryState()
    return RegistryState.model_validate(decode_object(response.entity_state))


async def cancel_in_registry(
    client: df.DurableOrchestrationClient, shard: str, transaction_ids: list[str]
) -> dict[str, CancelVerdict] | None:
    """Cancel jobs in their shard and wait for its verdicts; None when it did not answer."""
    request_id = str(uuid.uuid4())
    await client.signal_entity(
        registry_entity(shard),
        "cancel",
        {"request_id": request_id, "transaction_ids": transaction_ids},
    )
    sleep = dependencies.current().sleep
    for _ in range(ANSWER_POLLS):
        state = _shard_state(await client.read_entity_state(registry_entity(shard)))
        answer = state.cancellations.get(request_id)
        if answer is not None:
            return answer.verdicts
        await sleep(ANSWER_POLL_SECONDS)
    return None


async def unregister(
    client: df.DurableOrchestrationClient, shard: str, transaction_id: str
) -> None:
    """Drop a registry entry (raises if the backend does not take the signal)."""
    await client.signal_entity(registry_entity(shard), "remove", {"transaction_id": transaction_id})


async def unregister_quietly(
    client: df.DurableOrchestrationClient, shard: str, transaction_id: str
) -> None:
    """Drop a registry entry if the backend takes it; an orphan is only listed, never fired."""
    try:
        await unregister(client, shard, transaction_id)
    except Exception:
        log.exception("could not unregister %s", transaction_id)


async def terminate_and_purge(
    client: df.DurableOrchestrationClient, transaction_id: str, *, wait: bool = True
) -> bool:
    """Stop the instance if it runs, wait (bounded, if asked) until it has, then purge it."""
    status = await client.get_status(transaction_id)
    if not status:
        return False
    terminated = runtime_status(status) not in TERMINAL
    if terminated:
        await client.terminate(transaction_id, DELETE_REASON)
    if terminated and wait:
        sleep = dependencies.current().sleep
        for _ in range(ANSWER_POLLS):
            if runtime_status(await client.get_status(transaction_id)) in TERMINAL:
                break
            await sleep(ANSWER_POLL_SECONDS)
    await purge(client, transaction_id)
    return terminated


async def purge(client: df.DurableOrchestrationClient, transaction_id: str) -> None:
    # Backends differ on purging an instance whose termination is still queued; when it
    # fails, the instance reads as deleted anyway (see DELETE_REASON) and the next status
    # read purges it.
    try:
        await client.purge_instance_history(transaction_id)
    except Exception as error:
        log.info("purge of %s deferred: %s", transaction_id, error)


async def record_lifecycle(transaction_id: str, kind: LogKind, message: str, **fields: Any) -> None:
    """Write a lifecycle entry: one try, on the request path; a failure is logged, not raised."""
    deps = dependencies.current()
    now = deps.clock()
    entry = JobLogEntry(
        transaction_id=transaction_id,
        entry_id=event_entry_id(kind, now),
        timestamp=now,
        kind=kind,
        message=message,
        fields=fields,
    )
    try:
        store = deps.job_log(deps.settings())
        error = await asyncio.to_thread(append_with_retry, store, entry, attempts=1)
    except Exception as unexpected:
        error = f"{type(unexpected).__name__}"
    if error is not None:
        log.warning("job log entry %s for %s not stored: %s", kind, transaction_id, error)
