"""Deleting one job and wiping them all: each a compare-and-swap on the job's record.

A delete of a pending or retrying job writes `cancelled` over the version it read; an
attempt claims the job by writing `firing` the same way. Whichever writes first wins, so an
acknowledged delete never fires, and a running attempt is never cut off without an outcome
(the delete answers 409 instead).
"""

import asyncio
import logging
import time
from datetime import datetime
from typing import Literal

import azure.durable_functions as df
import azure.functions as func

from blueprints import dependencies
from blueprints.http_io import json_response
from blueprints.instances import backend_unavailable, bounded, checked_id, purge, terminate
from blueprints.job_logs import record_lifecycle
from scheduling.job_record import JobState, cancel
from scheduling.job_store import DueRange, StaleRecord, TableJobStore
from scheduling.problems import ProblemError, not_found, problem

# Each lost swap means another writer (an attempt's claim) changed the record meanwhile.
MAX_SWAPS = 5
# One wipe request does at most this much; `complete: false` says to send it again.
WIPE_PAGE_SIZE = 100
WIPE_MAX_JOBS = 2000
WIPE_MAX_SECONDS = 20.0
log = logging.getLogger(__name__)

Removal = Literal["cancelled", "deleted", "firing", "absent"]


async def delete_job(
    client: df.DurableOrchestrationClient, request: func.HttpRequest, transaction_id: str
) -> func.HttpResponse:
    checked_id(transaction_id)
    deps = dependencies.current()
    store = deps.job_store(deps.settings())
    try:
        removal, state_before = await asyncio.to_thread(
            _remove, store, transaction_id, ended_too=True
        )
    except ProblemError:
        raise
    except Exception:
        log.exception("deleting %s failed", transaction_id)
        raise backend_unavailable("accept the delete") from None
    if removal == "absent":
        raise not_found(f"no job with transaction id {transaction_id}")
    if removal == "firing":
        raise problem(
            409,
            "job-firing",
            "The job is firing",
            "an attempt of this job is running now: delete it again once the attempt has "
            "its outcome (a job waiting to retry can be deleted)",
        )
    if removal == "cancelled":
        await _stop_quietly(client, transaction_id)
        await record_lifecycle(
            transaction_id, "cancelled", "deleted through the API", state_before=state_before
        )
    else:
        await purge(client, transaction_id)
        await record_lifecycle(transaction_id, "deleted", "record deleted through the API")
    return json_response(
        {"transaction_id": transaction_id, "deleted": True, "state_before": state_before}
    )


def _remove(
    store: TableJobStore, transaction_id: str, *, ended_too: bool
) -> tuple[Removal, JobState | None]:
    """Cancel a live job, or (`ended_too`) delete an ended job's record; what happened, and
    the state before. A cancelled job reads as absent to a second delete: it is deleted."""
    now = dependencies.current().clock()
    for _ in range(MAX_SWAPS):
        stored = store.get(transaction_id)
        if stored is None:
            return "absent", None
        record = stored.record
        verdict, cancelled = cancel(record, now)
        try:
            if verdict == "cancelled" and cancelled is not None:
                store.replace(stored, cancelled)
                _unindex_quietly(store, transaction_id, record.exec_at)
                return "cancelled", record.state
            if verdict == "ended" and ended_too:
                store.delete(stored)
                return "deleted", record.state
        except StaleRecord:
            continue  # an attempt claimed it (or finished) meanwhile: decide again
        return ("firing" if verdict == "firing" else "absent"), record.state
    raise TimeoutError(f"the record of {transaction_id} kept changing")


def _unindex_quietly(store: TableJobStore, transaction_id: str, exec_at: datetime) -> None:
    try:
        store.unindex(transaction_id, exec_at)
    except Exception:
        # A leftover index row is skipped by every reader and dropped by the next listing.
        log.warning("could not drop the index row of %s", transaction_id, exc_info=True)


async def _stop_quietly(client: df.DurableOrchestrationClient, transaction_id: str) -> None:
    """Terminate the job's orchestration so nothing waits for nothing; it would end by
    itself anyway, finding the job cancelled when it comes due."""
    try:
        await terminate(client, transaction_id)
    except Exception:
        log.info("terminating %s after its delete failed", transaction_id, exc_info=True)


async def wipe_jobs(
    client: df.DurableOrchestrationClient, request: func.HttpRequest
) -> func.HttpResponse:
    """Cancel live jobs page by page, each by the same swap as a delete; safe to repeat.

    One request does a bounded amount of work: `complete: false` says there may be more.
    """
    deps = dependencies.current()
    store = deps.job_store(deps.settings())
    started = time.monotonic()
    cancelled: list[str] = []
    firing = 0
    seen = 0
    token = None
    try:
        while True:
            entries, token = await asyncio.to_thread(
                store.due_page, DueRange(), WIPE_PAGE_SIZE, token
            )
            removals = await bounded(
                asyncio.to_thread(_remove, store, entry.transaction_id, ended_too=False)
                for entry in entries
            )
            for entry, (removal, _) in zip(entries, removals, strict=True):
                if removal == "cancelled":
                    cancelled.append(entry.transaction_id)
                firing += removal == "firing"
            seen += len(entries)
            out_of_budget = seen >= WIPE_MAX_JOBS or time.monotonic() - started > WIPE_MAX_SECONDS
            if token is None or out_of_budget:
                break
    except Exception:
        log.exception("wiping failed after %d cancellations", len(cancelled))
        token = token or {"failed": "true"}
    await bounded(_stop_and_log(client, transaction_id) for transaction_id in cancelled)
    return json_response({"cancelled": len(cancelled), "firing": firing, "complete": token is None})


async def _stop_and_log(client: df.DurableOrchestrationClient, transaction_id: str) -> None:
    await _stop_quietly(client, transaction_id)
    await record_lifecycle(transaction_id, "wiped", "cancelled by a wipe of all jobs")
