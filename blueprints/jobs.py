"""Reading jobs for both route tables: the pending list and one job's status."""

import asyncio
import logging
from typing import Any

import azure.durable_functions as df
import azure.functions as func

from blueprints import dependencies
from blueprints.http_io import json_response, query_flag, query_int
from blueprints.instances import (
    TERMINAL,
    backend_unavailable,
    bounded,
    existing_status,
    is_error_answer,
    runtime_status,
    was_deleted,
)
from blueprints.registry_client import shard_jobs
from scheduling.durable_json import decode_durable_json
from scheduling.job_log.redaction import redact_fields
from scheduling.paging import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, InvalidCursor, page_of
from scheduling.problems import problem
from scheduling.registry import all_shards
from scheduling.timing import format_utc

log = logging.getLogger(__name__)


async def list_jobs(
    client: df.DurableOrchestrationClient, request: func.HttpRequest
) -> func.HttpResponse:
    """Pending jobs in exec_at order with their live runtime status; a page may be short."""
    settings = dependencies.current().settings()
    limit = query_int(request, "limit", DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE)
    cursor = request.params.get("cursor") or None
    try:
        shards = await asyncio.gather(
            *(shard_jobs(client, shard) for shard in all_shards(settings.registry_shards))
        )
    except Exception:
        log.exception("reading the registry failed")
        raise backend_unavailable("answer the registry read") from None
    try:
        page = page_of((job for jobs in shards for job in jobs), limit, cursor)
    except InvalidCursor as error:
        raise problem(400, "invalid-cursor", "Invalid cursor", str(error)) from None
    try:
        statuses = await bounded(client.get_status(job.transaction_id) for job in page.jobs)
    except Exception:
        log.exception("reading job statuses failed")
        raise backend_unavailable("answer the status reads") from None
    if any(is_error_answer(status) for status in statuses):
        raise backend_unavailable("answer the status reads")
    jobs = [
        {**job.model_dump(mode="json"), "runtime_status": runtime_status(status)}
        for job, status in zip(page.jobs, statuses, strict=True)
        # Gone or finished instances are registrations not completed or not yet removed.
        if status and not was_deleted(status) and runtime_status(status) not in TERMINAL
    ]
    return json_response({"jobs": jobs, "next_cursor": page.next_cursor})


async def job_status(
    client: df.DurableOrchestrationClient, request: func.HttpRequest, transaction_id: str
) -> func.HttpResponse:
    settings = dependencies.current().settings()
    history = query_flag(request, "history")
    status = await existing_status(client, transaction_id, history)
    body: dict[str, Any] = {
        "transaction_id": transaction_id,
        "runtime_status": runtime_status(status),
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


# Internal, and a digest of the whole request: shown, it would let a caller test guesses
# of a secret header offline.
HIDDEN_FIELDS = frozenset({"request_fingerprint"})


def _redacted(value: Any, extra_headers: list[str]) -> Any:
    """A status value with JSON text decoded at every depth and secrets hidden."""
    value = decode_durable_json(value)
    if isinstance(value, list):
        return [_redacted(item, extra_headers) for item in value]
    if isinstance(value, dict):
        decoded = {
            key: _redacted(item, extra_headers)
            for key, item in value.items()
            if key not in HIDDEN_FIELDS
        }
        return redact_fields(decoded, extra_headers)
    return value
