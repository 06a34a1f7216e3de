"""The job log from the HTTP routes: lifecycle entries written, one job's log read."""

import asyncio
import logging
from typing import Any

import azure.durable_functions as df
import azure.functions as func

from blueprints import dependencies
from blueprints.http_io import json_response, query_int
from blueprints.instances import backend_unavailable, checked_id
from scheduling.job_log import JobLogEntry, LogKind
from scheduling.job_log.entries import event_entry_id
from scheduling.job_log.resilient import append_with_retry
from scheduling.paging import InvalidCursor
from scheduling.problems import not_found, problem

DEFAULT_LOG_PAGE = 100
log = logging.getLogger(__name__)
MAX_LOG_PAGE = 1000


async def read_job_log(
    client: df.DurableOrchestrationClient, request: func.HttpRequest, transaction_id: str
) -> func.HttpResponse:
    """Entries in time order; a deleted job keeps its log, an id never issued is a 404."""
    checked_id(transaction_id)
    deps = dependencies.current()
    limit = query_int(request, "limit", DEFAULT_LOG_PAGE, 1, MAX_LOG_PAGE)
    cursor = request.params.get("cursor") or None
    try:
        store = deps.job_log(deps.settings())
        page = await asyncio.to_thread(store.read, transaction_id, limit, cursor)
    except InvalidCursor as error:
        raise problem(400, "invalid-cursor", "Invalid cursor", str(error)) from None
    except Exception:
        log.exception("reading the log of %s failed", transaction_id)
        raise backend_unavailable("answer the job log read") from None
    if not page.entries and cursor is None and await _unknown(transaction_id):
        raise not_found(f"no job with transaction id {transaction_id}")
    return json_response(page.model_dump(mode="json"))


async def _unknown(transaction_id: str) -> bool:
    deps = dependencies.current()
    try:
        found = await asyncio.to_thread(deps.job_store(deps.settings()).get, transaction_id)
    except Exception:
        log.exception("reading %s failed", transaction_id)
        raise backend_unavailable("answer the job read") from None
    return found is None


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
