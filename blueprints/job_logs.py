"""The job log from the HTTP routes: lifecycle entries written, one job's log read.

Every job log call on a request path is bounded (LOG_READ_SECONDS, LIFECYCLE_WRITE_SECONDS):
a hung log store costs a request seconds, never a minute. A lifecycle entry that could not
be written is not lost: it is made again from the job's record whenever the log is read.
"""

import asyncio
import logging

import azure.durable_functions as df
import azure.functions as func

from api.problems import not_found, problem
from api.queries import DEFAULT_LOG_PAGE, MAX_LOG_PAGE
from blueprints import dependencies
from blueprints.http_io import json_response, query_int
from blueprints.instances import backend_unavailable, checked_id
from blueprints.unreadable import read_job
from scheduling.job_record import JobRecord
from storage.job_log import JobLogEntry
from storage.job_log.entries import decode_cursor, encode_cursor
from storage.job_log.lifecycle import derived_entries, with_derived
from storage.job_log.resilient import append_with_retry
from storage.job_store import StoredJob
from storage.paging import InvalidCursor

LOG_READ_SECONDS = 5.0
LIFECYCLE_WRITE_SECONDS = 2.0
log = logging.getLogger(__name__)


async def read_job_log(
    client: df.DurableOrchestrationClient, request: func.HttpRequest, transaction_id: str
) -> func.HttpResponse:
    """Entries in time order; a deleted job keeps its log, an id never issued is a 404."""
    checked_id(transaction_id)
    limit = query_int(request, "limit", DEFAULT_LOG_PAGE, 1, MAX_LOG_PAGE)
    entries, next_cursor = await log_page(transaction_id, limit, request.params.get("cursor"))
    return json_response(
        {
            "entries": [entry.model_dump(mode="json") for entry in entries],
            "next_cursor": next_cursor,
        }
    )


async def log_page(
    transaction_id: str, limit: int, cursor: str | None
) -> tuple[list[JobLogEntry], str | None]:
    """One page of the job's log (lifecycle entries the store lacks made from its record),
    and the cursor of the next page; a 404 for an id that has neither log nor record."""
    deps = dependencies.current()
    settings = deps.settings()
    cursor = cursor or None
    try:
        after = decode_cursor(transaction_id, cursor) if cursor else None
    except InvalidCursor as error:
        raise problem(400, "invalid-cursor", "Invalid cursor", str(error)) from None
    try:
        log_store, job_store = deps.job_log(settings), deps.job_store(settings)
        page, found = await asyncio.wait_for(
            asyncio.gather(
                asyncio.to_thread(log_store.read, transaction_id, limit, cursor),
                asyncio.to_thread(read_job, job_store, transaction_id),
            ),
            LOG_READ_SECONDS,
        )
    except Exception:
        log.exception("reading the log of %s failed", transaction_id)
        raise backend_unavailable("answer the job log read") from None
    # A record that cannot be read adds nothing to its log, and still says the job exists.
    derived = derived_entries(found.record) if isinstance(found, StoredJob) else []
    entries, more = with_derived(page.entries, derived, after, page.next_cursor is not None, limit)
    if not entries and cursor is None and found is None:
        raise not_found(f"no job with transaction id {transaction_id}")
    next_cursor = encode_cursor(transaction_id, entries[-1].entry_id) if more and entries else None
    return entries, next_cursor


async def record_lifecycle(entry: JobLogEntry, *, required: bool = False) -> None:
    """Write a lifecycle entry: one try, bounded. A failure is logged (the entry is derived
    from the record on read), or, when `required` (the record is about to go), a 503."""
    deps = dependencies.current()
    error: str | None
    try:
        store = deps.job_log(deps.settings())
        error = await asyncio.wait_for(
            asyncio.to_thread(append_with_retry, store, entry, attempts=1),
            LIFECYCLE_WRITE_SECONDS,
        )
    except Exception as unexpected:  # TimeoutError included: the store hangs
        error = type(unexpected).__name__
    if error is None:
        return
    log.warning("job log entry %s of %s not stored: %s", entry.kind, entry.transaction_id, error)
    if required:
        raise backend_unavailable(f"record the {entry.kind} entry in the job log; try again")


async def record_removal(record: JobRecord, removal: JobLogEntry) -> None:
    """Before a job's record goes, its log says what the record said (the entries derived
    from it, which the log may lack: a batch leaves a job's `accepted` entry to be derived,
    a write may have failed) and where it went: the record is their only other trace. Each
    is required (a 503 keeps the record); each is idempotent (a deterministic id)."""
    for entry in (*derived_entries(record), removal):
        await record_lifecycle(entry, required=True)
