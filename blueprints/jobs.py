"""The job operations behind both route tables (public API and the old admin routes)."""

import asyncio
import json
import logging
import re
import uuid
from typing import Any

import azure.durable_functions as df
import azure.functions as func
from pydantic import ValidationError

from blueprints import dependencies
from blueprints.http_io import json_response, origin_of, query_flag, query_int, read_json_body
from scheduling.job_log import JobLogEntry, LogKind
from scheduling.job_log.entries import make_entry_id
from scheduling.job_log.redaction import redact_fields
from scheduling.job_log.resilient import append_with_retry
from scheduling.models import Job, PendingJob, ScheduleRequest
from scheduling.paging import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, InvalidCursor, page_of
from scheduling.problems import (
    FieldError,
    field_errors,
    not_found,
    problem,
    validation_problem,
)
from scheduling.prompts import UnknownPromptType, parse_payload
from scheduling.registry import REGISTRY_ENTITY, all_shards, shard_for
from scheduling.timing import ExecAtError, check_schedule_window, format_utc

ORCHESTRATOR = "schedule_orchestrator"
# The termination reason doubles as a marker: a Terminated instance with this output was
# deleted, so it reads as gone even before its purge has gone through.
DELETE_REASON = "deleted through the scheduler API"
TERMINAL = {"Completed", "Failed", "Terminated", "Canceled"}
TRANSACTION_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
log = logging.getLogger(__name__)


def _registry(shard: str) -> df.EntityId:
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


def _backend_unavailable(action: str) -> Exception:
    return problem(
        503, "backend-unavailable", "Backend unavailable", f"the durable backend did not {action}"
    )


async def _record(transaction_id: str, kind: LogKind, message: str, **fields: Any) -> None:
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


async def create_job(
    client: df.DurableOrchestrationClient, request: func.HttpRequest
) -> func.HttpResponse:
    deps = dependencies.current()
    settings = deps.settings()
    body = read_json_body(request, settings.max_request_bytes)
    try:
        schedule = ScheduleRequest.model_validate(body)
    except ValidationError as error:
        raise validation_problem("the schedule request is not valid", field_errors(error)) from None
    try:
        check_schedule_window(
            schedule.exec_at,
            deps.clock(),
            min_lead_seconds=settings.min_lead_seconds,
            max_horizon_days=settings.max_horizon_days,
        )
    except ExecAtError as error:
        raise validation_problem(
            str(error), [FieldError(loc=["exec_at"], msg=str(error), type=error.rule)]
        ) from None
    try:
        payload = parse_payload(
            schedule.prompt_type, schedule.payload, dependencies.payload_rules(deps, settings)
        )
    except UnknownPromptType as error:
        raise validation_problem(
            str(error),
            [FieldError(loc=["prompt_type"], msg=str(error), type="unknown_prompt_type")],
        ) from None
    except ValidationError as error:
        raise validation_problem(
            f"the payload is not a valid {schedule.prompt_type} payload",
            field_errors(error, prefix=["payload"]),
        ) from None

    transaction_id = str(uuid.uuid4())
    job = Job(
        transaction_id=transaction_id,
        exec_at=schedule.exec_at,
        prompt_type=schedule.prompt_type,
        payload=payload.model_dump(mode="json", by_alias=True, exclude_unset=True),
        accepted_at=deps.clock(),
        registry_shard=shard_for(transaction_id, settings.registry_shards),
        retry=schedule.retry,
    )
    job_json = job.model_dump(mode="json")
    # Register before starting: the orchestration's claim then always finds the entry,
    # as messages to one entity are processed in the order they were sent.
    try:
        await client.signal_entity(_registry(job.registry_shard), "add", {"job": job_json})
    except Exception:
        log.exception("registering %s failed", transaction_id)
        raise _backend_unavailable("accept the job; nothing was scheduled") from None
    try:
        await client.start_new(ORCHESTRATOR, transaction_id, job_json)
    except Exception:
        log.exception("starting %s failed", transaction_id)
        await _forget(client, job.registry_shard, transaction_id)
        raise _backend_unavailable("start the job; nothing was scheduled") from None
    await _record(
        transaction_id,
        "accepted",
        f"{job.prompt_type} accepted for {format_utc(job.exec_at)}",
        prompt_type=job.prompt_type,
        exec_at=format_utc(job.exec_at),
    )
    status_url = f"{origin_of(request)}/api/schedule/{transaction_id}/status"
    return json_response(
        {
            "transaction_id": transaction_id,
            "exec_at": format_utc(job.exec_at),
            "status_url": status_url,
        },
        status=202,
        headers={"Location": status_url},
    )


async def _unregister(
    client: df.DurableOrchestrationClient, shard: str, transaction_id: str
) -> None:
    await client.signal_entity(_registry(shard), "remove", {"transaction_id": transaction_id})


async def _forget(client: df.DurableOrchestrationClient, shard: str, transaction_id: str) -> None:
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
                client.read_entity_state(_registry(shard))
                for shard in all_shards(settings.registry_shards)
            )
        )
    except Exception:
        log.exception("reading the registry failed")
        raise _backend_unavailable("answer the registry read") from None
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
        raise _backend_unavailable("answer the status request") from None
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
        raise _backend_unavailable("accept the delete") from None
    await _purge(client, transaction_id)
    await _record(transaction_id, "cancelled", "deleted through the API", runtime_status_before=was)
    return json_response(
        {"transaction_id": transaction_id, "deleted": True, "runtime_status_before": was}
    )


def _shard_of(status: Any, transaction_id: str) -> str:
    """The shard recorded in the job (robust to a changed shard count), else the computed one."""
    job = _state_dict(status.input_)
    shard = job.get("registry_shard")
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
            *(client.read_entity_state(_registry(shard)) for shard in shards)
        )
        # Reset before terminating: any job that comes due meanwhile finds no entry to claim.
        await asyncio.gather(
            *(client.signal_entity(_registry(shard), "reset", {}) for shard in shards)
        )
    except Exception:
        log.exception("wipe failed")
        raise _backend_unavailable("accept the wipe") from None
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
            await _record(transaction_id, "wiped", "removed by a wipe of all jobs")
            return terminated

    terminated = await asyncio.gather(*(remove_instance(transaction_id) for transaction_id in ids))
    return json_response({"registry_entries_removed": len(ids), "terminated": sum(terminated)})
