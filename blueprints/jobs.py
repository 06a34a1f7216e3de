"""Reading and removing jobs for both route tables, and the durable helpers all routes share."""

import asyncio
import json
import logging
import re
from typing import Any

import azure.durable_functions as df
import azure.functions as func

from blueprints import dependencies
from blueprints.http_io import json_response, query_flag, query_int
from scheduling.job_log import JobLogEntry, LogKind
from scheduling.job_log.entries import make_entry_id
from scheduling.job_log.redaction import redact_fields
from scheduling.job_log.resilient import append_with_retry
from scheduling.models import PendingJob
from scheduling.paging import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, InvalidCursor, page_of
from scheduling.problems import (
    not_found,
    problem,
)
from scheduling.registry import REGISTRY_ENTITY, all_shards, shard_for
from scheduling.timing import format_utc

ORCHESTRATOR = "schedule_orchestrator"
# The termination reason doubles as a marker: a Terminated instance with this output was
# deleted, so it reads as gone even before its purge has gone through.
DELETE_REASON = "deleted through the scheduler API"
TERMINAL = {"Completed", "Failed", "Terminated", "Canceled"}
TRANSACTION_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
log = logging.getLogger(__name__)


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
        503, "backend-unavailable", "Backend unavailable", f"the durable backend did not {action}"
    )


async def record_lifecycle(transaction_id: str, kind: LogKind, message: str, **fields: Any) -> None:
    """Write a lifecycle entry; a log outage is logged, never the caller's failure."""
    deps = dependencies.current()
    now = deps.clock()
    entry = JobLogEntry(
        transaction_id=transaction_id,
        entry_id=make_entry_id(now, f"0-{kind}" if kind == "accepted" else f"9-{kind}"),
        timestamp=now,
        kind=kind,
        message=message,
        fields=fields,
    )
    error = await asyncio.to_thread(append_with_retry, deps.job_log(deps.settings()), entry)
    if error is not None:
        log.warning("job log entry %s for %s not stored: %s", kind, transaction_id, error)


async def _unregister(
    client: df.DurableOrchestrationClient, shard: str, transaction_id: str
) -> None:
    await client.signal_entity(registry_entity(shard), "remove", {"transaction_id": transaction_id})


async def forget(client: df.DurableOrchestrationClient, shard: str, transaction_id: str) -> None:
    try:
        await _unregister(client, shard, transaction_id)
    except Exception:
        # The listing drops entries whose instance does not exist, so this only costs space.
        log.exception("could not unregister %s", transaction_id)


async def list_jobs(
    client: df.DurableOrchestrationClient, request: func.HttpRequest
) -> func.HttpResponse:
    settings = dependencies.current().settings()
    limit = query_int(request, "limit", DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE)
    cursor = request.params.get("cursor") or None
    try:
        shard_states = await asyncio.gather(
            *(
                client.read_entity_state(registry_entity(shard))
                for shard in all_shards(settings.registry_shards)
            )
        )
    except Exception:
        log.exception("reading the registry failed")
        raise backend_unavailable("answer the registry read") from None
    pending = [
        PendingJob.model_validate(entry)
        for state in shard_states
        if state.entity_exists and state.entity_state
        for entry in _state_dict(state.entity_state).get("jobs", {}).values()
    ]
    try:
        page = page_of(pending, limit, cursor)
    except InvalidCursor as error:
        raise problem(400, "invalid-cursor", "Invalid cursor", str(error)) from None
    statuses = await asyncio.gather(*(client.get_status(job.transaction_id) for job in page.jobs))
    jobs = [
        {**job.model_dump(mode="json"), "runtime_status": _runtime_status(status)}
        for job, status in zip(page.jobs, statuses, strict=True)
        # An entry whose instance is gone is a registration that did not complete.
        if status and not _was_deleted(status)
    ]
    return json_response({"jobs": jobs, "next_cursor": page.next_cursor})


def _state_dict(state: Any) -> dict[str, Any]:
    decoded = json.loads(state) if isinstance(state, str) else state
    return decoded if isinstance(decoded, dict) else {}


def decoded_input(status: Any) -> dict[str, Any]:
    """The job an instance was started with (the extension keeps it as a JSON string)."""
    return _state_dict(status.input_)


def _runtime_status(status: Any) -> str | None:
    runtime = getattr(status, "runtime_status", None)
    return getattr(runtime, "value", runtime)


def _was_deleted(status: Any) -> bool:
    return _runtime_status(status) == "Terminated" and status.output == DELETE_REASON


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
    return None if not status or _was_deleted(status) else status


async def _status_of(
    client: df.DurableOrchestrationClient, transaction_id: str, history: bool = False
) -> Any:
    status = await status_or_none(client, transaction_id, history)
    if status is None:
        raise not_found(f"no job with transaction id {transaction_id}")
    return status


async def job_status(
    client: df.DurableOrchestrationClient, request: func.HttpRequest, transaction_id: str
) -> func.HttpResponse:
    settings = dependencies.current().settings()
    history = query_flag(request, "history")
    status = await _status_of(client, checked_id(transaction_id), history)
    body: dict[str, Any] = {
        "transaction_id": transaction_id,
        "runtime_status": _runtime_status(status),
        "created_time": _iso(status.created_time),
        "last_updated_time": _iso(status.last_updated_time),
        "input": _redacted(status.input_, settings.redacted_headers),
        "output": _redacted(status.output, settings.redacted_headers),
        "custom_status": status.custom_status,
    }
    if history:
        # The extension answers `historyEvents`; the SDK keeps unknown keys as attributes.
        events = status.history or getattr(status, "historyEvents", None) or []
        body["history"] = _redacted(events, settings.redacted_headers)
    return json_response(body)


def _iso(moment: Any) -> str | None:
    return format_utc(moment) if moment is not None else None


def _decoded_json_text(value: Any) -> Any:
    """Unwrap JSON text, however often it was encoded (history inputs are, twice)."""
    while isinstance(value, str):
        try:
            decoded = json.loads(value)
        except ValueError:
            return value
        if not isinstance(decoded, (str, list, dict)):
            return value
        value = decoded
    return value


def _redacted(value: Any, extra_headers: list[str]) -> Any:
    """A status value with JSON strings decoded and secret headers hidden."""
    value = _decoded_json_text(value)
    if isinstance(value, list):
        return [_redacted(item, extra_headers) for item in value]
    if isinstance(value, dict):
        decoded = {
            key: _redacted(item, extra_headers) if isinstance(item, (str, list, dict)) else item
            for key, item in value.items()
        }
        return redact_fields(decoded, extra_headers)
    return value


async def delete_job(
    client: df.DurableOrchestrationClient, request: func.HttpRequest, transaction_id: str
) -> func.HttpResponse:
    status = await _status_of(client, checked_id(transaction_id))
    was = _runtime_status(status)
    shard = _shard_of(status, transaction_id)
    try:
        # Unregister first: a claim that reaches the shard after this never fires the job.
        await _unregister(client, shard, transaction_id)
        if was not in TERMINAL:
            await client.terminate(transaction_id, DELETE_REASON)
    except Exception:
        log.exception("deleting %s failed", transaction_id)
        raise backend_unavailable("accept the delete") from None
    await _purge(client, transaction_id)
    await record_lifecycle(
        transaction_id, "cancelled", "deleted through the API", runtime_status_before=was
    )
    return json_response(
        {"transaction_id": transaction_id, "deleted": True, "runtime_status_before": was}
    )


def _shard_of(status: Any, transaction_id: str) -> str:
    """The shard recorded in the job (robust to a changed shard count), else the computed one."""
    shard = decoded_input(status).get("registry_shard")
    if isinstance(shard, str):
        return shard
    return shard_for(transaction_id, dependencies.current().settings().registry_shards)


async def _purge(client: df.DurableOrchestrationClient, transaction_id: str) -> None:
    # Backends differ on purging an instance whose termination is still queued; when it
    # fails, the instance reads as deleted anyway (see DELETE_REASON) and is purged later.
    try:
        await client.purge_instance_history(transaction_id)
    except Exception as error:
        log.info("purge of %s deferred: %s", transaction_id, error)


async def wipe_jobs(
    client: df.DurableOrchestrationClient, request: func.HttpRequest
) -> func.HttpResponse:
    settings = dependencies.current().settings()
    shards = all_shards(settings.registry_shards)
    try:
        states = await asyncio.gather(
            *(client.read_entity_state(registry_entity(shard)) for shard in shards)
        )
        # Reset before terminating: any job that comes due meanwhile finds no entry to claim.
        await asyncio.gather(
            *(client.signal_entity(registry_entity(shard), "reset", {}) for shard in shards)
        )
    except Exception:
        log.exception("wipe failed")
        raise backend_unavailable("accept the wipe") from None
    ids = [
        transaction_id
        for state in states
        if state.entity_exists and state.entity_state
        for transaction_id in _state_dict(state.entity_state).get("jobs", {})
    ]
    # Bounded: the SDK's connection pool has 30 connections, and the worker shares it.
    gate = asyncio.Semaphore(16)

    async def remove_instance(transaction_id: str) -> bool:
        async with gate:
            terminated = False
            try:
                status = await client.get_status(transaction_id)
                if status and _runtime_status(status) not in TERMINAL:
                    await client.terminate(transaction_id, DELETE_REASON)
                    terminated = True
            except Exception:
                log.exception("terminating %s during wipe failed", transaction_id)
            await _purge(client, transaction_id)
            await record_lifecycle(transaction_id, "wiped", "removed by a wipe of all jobs")
            return terminated

    terminated = await asyncio.gather(*(remove_instance(transaction_id) for transaction_id in ids))
    return json_response({"registry_entries_removed": len(ids), "terminated": sum(terminated)})
